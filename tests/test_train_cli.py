"""The training command: contract on disk, determinism, bad inputs, divergence handling."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import python_env
from qsm.contract import rundir

TINY = ["--steps", "60", "--start-steps", "20", "--eval-every", "30", "--eval-episodes", "2",
        "--batch-size", "16", "--probe-states", "3", "--probe-samples", "50", "--threads", "1"]
SMALL_NETS = {"qsm": ["--set", "actor_hidden=[32,32]", "--set", "critic_hidden=[32,32]"],
              "sac": ["--set", "hidden=[32,32]"], "td3": ["--set", "hidden=[32,32]"]}


def train(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "qsm.train", *args], capture_output=True,
                          text=True, env=python_env(), timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@pytest.mark.parametrize("algo", ["qsm", "sac", "td3"])
def test_writes_contract_for_every_seed(tmp_path, algo):
    train("--algo", algo, "--task", "toy_bimodal", "--seeds", "0", "1", "--out", str(tmp_path),
          *TINY, *SMALL_NETS[algo])
    for seed in (0, 1):
        run = rundir.load_run(tmp_path / f"seed{seed}")
        assert run.status["status"] == "complete" and run.seed == seed and run.algo == algo
        assert list(run.eval["step"]) == [0, 30, 60]
        assert set(rundir.TIMING_PHASES) <= set(run.timing["phase"])
        states, actions = run.probe_actions()
        assert states.shape == (3, 2) and actions.shape == (3, 50, 1)
        prov = run.config["provenance"]
        assert prov["device"] == "cpu" and "torch" in prov["packages"] and "qsm.train" in prov["command"]
        assert run.config["block"] == {"seeds": [0, 1], "size": 2}
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"


def test_dmc_task_contract_and_rerun_is_idempotent(tmp_path):
    args = ["--algo", "td3", "--task", "cheetah_run", "--seeds", "3", "--out", str(tmp_path),
            "--steps", "40", "--start-steps", "20", "--eval-every", "40", "--eval-episodes", "1",
            "--batch-size", "8", "--probe-states", "2", "--probe-samples", "10", "--threads", "1",
            *SMALL_NETS["td3"]]
    train(*args)
    run = rundir.load_run(tmp_path / "seed3")
    assert run.config["env"] == {"obs_dim": 17, "act_dim": 6, "max_return": 1000.0}
    assert run.config["code_version"] and len(run.run_id) == 12
    # the versions of the packages that computed it are part of its identity
    from qsm.contract.identity import TRAINER_PACKAGES, package_versions
    assert run.config["versions"] == package_versions(TRAINER_PACKAGES)
    stamp = (tmp_path / "seed3" / "eval.csv").stat().st_mtime_ns
    proc = train(*args)
    assert "already hold complete runs" in proc.stderr and "nothing to do" in proc.stderr
    assert (tmp_path / "seed3" / "eval.csv").stat().st_mtime_ns == stamp
    # a larger block trains only the seed that is not complete yet
    more = list(args)
    more[more.index("--seeds") + 1:more.index("--seeds") + 2] = ["3", "4"]
    proc = train(*more)
    assert "training seeds [4]" in proc.stderr
    assert (tmp_path / "seed3" / "eval.csv").stat().st_mtime_ns == stamp
    assert rundir.load_run(tmp_path / "seed4").run_id == run.run_id
    # the caller's expected identity is checked: a mismatch is refused before anything runs
    proc = train(*args, "--run-id", "000000000000", check=False)
    assert proc.returncode == 2 and "disagree on the identity" in proc.stderr


def test_same_command_twice_gives_identical_results_on_cpu(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        train("--algo", "qsm", "--task", "toy_bimodal", "--seeds", "4", "--out", str(out), *TINY,
              *SMALL_NETS["qsm"])
        outs.append(out / "seed4")
    ev = [pd.read_csv(o / "eval.csv") for o in outs]
    np.testing.assert_array_equal(ev[0]["return"].to_numpy(), ev[1]["return"].to_numpy())
    pa = [np.load(o / "probe_actions.npz")["behaviour"] for o in outs]
    np.testing.assert_array_equal(pa[0], pa[1])


def test_seed_result_does_not_depend_on_its_block(tmp_path):
    train("--algo", "sac", "--task", "toy_bimodal", "--seeds", "2", "--out", str(tmp_path / "one"),
          *TINY, *SMALL_NETS["sac"])
    train("--algo", "sac", "--task", "toy_bimodal", "--seeds", "5", "2", "--out",
          str(tmp_path / "two"), *TINY, *SMALL_NETS["sac"])
    a = pd.read_csv(tmp_path / "one" / "seed2" / "eval.csv")["return"].to_numpy()
    b = pd.read_csv(tmp_path / "two" / "seed2" / "eval.csv")["return"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_diverged_seed_is_recorded_and_others_continue(tmp_path):
    train("--algo", "td3", "--task", "toy_bimodal", "--seeds", "0", "1", "--out", str(tmp_path),
          *TINY, *SMALL_NETS["td3"], "--debug-poison", "25:1")
    ok = rundir.load_run(tmp_path / "seed0")
    bad = rundir.load_run(tmp_path / "seed1")
    assert ok.status["status"] == "complete" and list(ok.eval["step"]) == [0, 30, 60]
    assert bad.status["status"] == "diverged" and "non-finite" in bad.status["reason"]
    assert list(bad.eval["step"]) == [0]


BAD_INPUTS = [
    (["--algo", "nope", "--task", "cheetah_run"], "unknown algorithm"),
    (["--algo", "sac", "--task", "cheetah_runn"], "unknown task"),
    (["--algo", "sac", "--task", "cheetah_run", "--steps", "-5"], "--steps must be positive"),
    (["--algo", "sac", "--task", "cheetah_run", "--set", "hidden"], "malformed --set"),
    (["--algo", "sac", "--task", "cheetah_run", "--set", "bogus=1"], "unknown hyperparameter"),
    (["--algo", "qsm", "--task", "cheetah_run", "--set", "T=two"], "T='two' is invalid: T must be an integer"),
    (["--algo", "sac", "--task", "cheetah_run", "--start-steps", "-1"], "--start-steps"),
    (["--algo", "sac", "--task", "cheetah_run", "--device", "tpu"], "--device"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS)
def test_bad_input_gives_one_line_error(tmp_path, args, message):
    full = ["--seeds", "0", "--steps", "10", "--out", str(tmp_path)] + args
    proc = train(*full, check=False)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir()), "nothing may be written on bad input"


def test_validator_names_the_bad_file(tmp_path):
    train("--algo", "td3", "--task", "toy_bimodal", "--seeds", "0", "--out", str(tmp_path), *TINY,
          *SMALL_NETS["td3"])
    d = tmp_path / "seed0"
    (d / "eval.csv").write_text("step,return\n0,")
    with pytest.raises(rundir.ContractError, match="eval.csv"):
        rundir.load_run(d)
    (d / "config.json").write_text("{ not json")
    with pytest.raises(rundir.ContractError, match="config.json.*not valid JSON"):
        rundir.load_run(d)
    cfg = {"contract_version": 1}
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(rundir.ContractError, match="missing keys"):
        rundir.load_run(d)
