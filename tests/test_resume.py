"""Fault tests: SIGKILL a training run at random points, resume, and compare bit for bit."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch
import pandas as pd
import pytest

from conftest import python_env, sigkill_after_checkpoint
from qsm.contract import rundir

ARGS = ["--task", "cheetah_run", "--seeds", "0", "1", "--steps", "300", "--start-steps", "50",
        "--eval-every", "150", "--eval-episodes", "1", "--batch-size", "32", "--probe-states", "2",
        "--probe-samples", "20", "--threads", "1", "--checkpoint-every", "25"]
NETS = {"qsm": ["--set", "actor_hidden=[32,32]", "--set", "critic_hidden=[32,32]", "--set", "T=3"],
        "sac": ["--set", "hidden=[32,32]"]}


def command(algo, out):
    return [sys.executable, "-m", "qsm.train", "--algo", algo, *ARGS, *NETS[algo], "--out", str(out)]


def results(out):
    """Per seed: the evaluation curve and the metrics rows (every column; a row lost or doubled
    by a resume shows), then the probe samples and the saved policy's weights."""
    ev = [pd.concat([pd.read_csv(out / f"seed{s}" / "eval.csv")[["step", "return"]],
                     pd.read_csv(out / f"seed{s}" / "metrics.csv")], axis=1) for s in (0, 1)]
    probes = [np.load(out / f"seed{s}" / "probe_actions.npz")["behaviour"] for s in (0, 1)]
    import torch
    policies = [torch.load(out / f"seed{s}" / "policy.pt", weights_only=False)["modules"]
                for s in (0, 1)]
    return ev, probes, policies


def checkpoint_step(path):
    import torch
    try:
        return torch.load(path, weights_only=False)["step"]
    except Exception:
        return None


@pytest.mark.parametrize("algo", ["qsm", "sac"])
def test_sigkill_at_random_points_then_resume_is_bitwise_identical(tmp_path, algo):
    ref_out = tmp_path / "uninterrupted"
    subprocess.run(command(algo, ref_out), check=True, env=python_env(), capture_output=True,
                   timeout=600)
    out = tmp_path / "killed"
    ckpt = out / ".checkpoints" / "seeds-0-1.pt"
    rng = np.random.default_rng(0 if algo == "qsm" else 1)
    kills = []
    for attempt in range(3):
        # kill after a fresh checkpoint and a random extra delay
        if not sigkill_after_checkpoint(command(algo, out), ckpt, float(rng.uniform(0.0, 0.4)),
                                        timeout=120):
            break  # finished before the kill point: nothing left to interrupt
        kills.append(checkpoint_step(ckpt))
        status = rundir._read_json(out / "seed0" / "status.json")["status"]
        assert status == "running"  # a killed run never looks complete
    assert len(kills) >= 2, f"the run finished before it could be killed twice: {kills}"
    final = subprocess.run(command(algo, out), env=python_env(), capture_output=True, text=True,
                           timeout=600)
    assert final.returncode == 0, final.stderr
    if kills[-1] is not None:
        assert "resumed from" in final.stderr
    ref_ev, ref_probes, ref_policies = results(ref_out)
    ev, probes, policies = results(out)
    for a, b in zip(ref_ev, ev):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    for a, b in zip(ref_probes, probes):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ref_policies, policies):
        for module in a:
            for key in a[module]:
                assert torch.equal(a[module][key], b[module][key]), f"{module}.{key}"
    assert not ckpt.exists(), "checkpoint must be removed once the run is complete"
    print(f"{algo}: killed at checkpoint steps {kills}; resumed result identical")


def test_checkpoint_of_other_config_is_refused(tmp_path):
    out = tmp_path / "r"
    proc = subprocess.Popen(command("sac", out), env=python_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = out / ".checkpoints" / "seeds-0-1.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert ckpt.exists()
    other = command("sac", out)
    other[other.index("--batch-size") + 1] = "16"
    res = subprocess.run(other, env=python_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "another configuration or code version" in res.stderr
    assert "Traceback" not in res.stderr
    # a checkpoint written by other training code (another code version) is refused too
    import torch
    state = torch.load(ckpt, weights_only=False)
    for sig in state["signature"]:
        sig["code_version"] = "000000000000"
    torch.save(state, ckpt)
    res = subprocess.run(command("sac", out), env=python_env(), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "another configuration or code version" in res.stderr
