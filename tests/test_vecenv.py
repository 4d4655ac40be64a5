"""Environment blocks: worker processes give exactly what in-process stepping gives."""
import numpy as np
import pandas as pd
import pytest

from qsm.contract import rundir
from qsm.harness.vecenv import EnvBlock, EnvWorkerError
from test_train_cli import SMALL_NETS, train


def rollout(envs, steps=60):
    """Reset, random steps with auto-reset, a reseed, and a state round trip; every output."""
    rng = np.random.default_rng(0)
    out = [envs.reset()]
    for k in range(steps):
        obs, rew, term, trunc = envs.step(rng.uniform(-1, 1, (len(envs), envs.act_dim)))
        out += [obs, rew, term, trunc]
        if k == 20:
            out.append(envs.reset([1]))
        if k == 30:  # a subset of environments only, as evaluation does
            out += list(envs.step(rng.uniform(-1, 1, (2, envs.act_dim)), [0, 2]))
    states = envs.get_states()
    after = envs.step(np.zeros((len(envs), envs.act_dim)))
    envs.set_states(states)
    out += [after[0], envs.step(np.zeros((len(envs), envs.act_dim)))[0]]
    envs.reseed({0: 11, 2: 12})
    out.append(envs.reset())
    return out


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_step_bit_identically_to_in_process(workers):
    seeds = [5, 6, 7]
    local = rollout(EnvBlock("cheetah_run", seeds, 0))
    remote_block = EnvBlock("cheetah_run", seeds, workers)
    try:
        remote = rollout(remote_block)
    finally:
        remote_block.close()
    assert len(local) == len(remote)
    for a, b in zip(local, remote):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # the state round trip really restored the state
    assert np.array_equal(local[-3], local[-2])


def test_worker_errors_carry_their_traceback_and_close_the_block():
    envs = EnvBlock("toy_bimodal", [0, 1], workers=2)
    procs = list(envs._procs)
    with pytest.raises(EnvWorkerError, match="Traceback"):
        envs.set_states([b"not a pickle", b"either"])  # raises inside the workers
    # the other worker's reply may be unread: the block refuses further calls, workers are gone
    with pytest.raises(EnvWorkerError, match="closed"):
        envs.reset()
    assert all(p.poll() is not None for p in procs)


def test_block_as_context_manager_stops_its_workers():
    with EnvBlock("toy_bimodal", [0, 1, 2], workers=2) as envs:
        procs = list(envs._procs)
        assert envs.reset().shape == (3, envs.obs_dim)
    assert all(p.poll() is not None for p in procs)


def test_more_workers_than_envs_and_bad_count():
    envs = EnvBlock("toy_bimodal", [0], workers=4)
    assert envs.workers == 1 and envs.reset().shape == (1, envs.obs_dim)
    envs.close()
    with pytest.raises(ValueError, match="workers"):
        EnvBlock("toy_bimodal", [0], workers=-1)


def test_training_with_env_workers_is_bit_identical(tmp_path):
    args = ["--algo", "td3", "--task", "cheetah_run", "--seeds", "0", "1", "--steps", "80",
            "--start-steps", "30", "--eval-every", "40", "--eval-episodes", "2", "--batch-size", "16",
            "--probe-states", "2", "--probe-samples", "10", "--threads", "1", *SMALL_NETS["td3"]]
    train(*args, "--out", str(tmp_path / "local"))
    train(*args, "--out", str(tmp_path / "workers"), "--env-workers", "2")
    for seed in (0, 1):
        a, b = (rundir.load_run(tmp_path / d / f"seed{seed}") for d in ("local", "workers"))
        pd.testing.assert_frame_equal(a.eval.drop(columns="wall_time_s"), b.eval.drop(columns="wall_time_s"))
        assert np.array_equal(a.probe_actions()[1], b.probe_actions()[1])
    assert train(*args, "--out", str(tmp_path / "bad"), "--env-workers", "-1", check=False).returncode == 2
