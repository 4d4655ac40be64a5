"""The external-program path of adding a baseline: workflow/scripts/random_policy.py writes the
run-directory contract on its own, and the analysis picks its runs up like any other."""
import ast
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, python_env
from contract import RUN_ID, seed_dir, write_manifest
from qsm.contract import rundir

SCRIPT = ROOT / "workflow" / "scripts" / "random_policy.py"
BUDGET = ["--steps", "2000", "--eval-every", "1000", "--eval-episodes", "1",
          "--probe-states", "3", "--probe-samples", "20", "--run-id", RUN_ID,
          "--code-version", "test"]


def run_script(*args, check=True):
    # cwd outside the checkout and no PYTHONPATH help needed: the script finds qsm by itself
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=python_env(), timeout=300, cwd="/")
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run tree runs/random/cheetah_run/{run_id}/seed{0,1}, as the Snakemake rule lays it out."""
    root = tmp_path_factory.mktemp("runs")
    run_script("--task", "cheetah_run", "--seeds", "0", "1", *BUDGET,
               "--out", str(root / "random" / "cheetah_run" / RUN_ID))
    return root


def test_script_imports_only_numpy_json_csv_and_the_protocol():
    """Of the suite: the tasks, the probe states and the evaluation schedule
    (qsm.harness.evaluation, numpy only), the protocol every program shares."""
    tree = ast.parse(SCRIPT.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    suite = {m for m in imported if m.split(".")[0] in ("qsm", "analysis", "baselines")}
    assert suite == {"qsm.harness.envs", "qsm.harness.probes", "qsm.harness.evaluation"}, suite
    assert not {m for m in imported if m.split(".")[0] in ("torch", "pandas")}


def test_contract_is_valid_for_every_seed(runs):
    for seed in (0, 1):
        d = seed_dir(runs, "random", "cheetah_run", seed)
        run = rundir.load_run(d)
        assert run.status["status"] == "complete" and run.status["step"] == 2000
        assert run.algo == "random" and run.task == "cheetah_run" and run.seed == seed
        assert run.run_id == RUN_ID and run.config["code_version"] == "test"
        assert run.config["hparams"] == {} and run.config["budget"]["steps"] == 2000
        assert run.config["env"] == {"obs_dim": 17, "act_dim": 6, "max_return": 1000.0}
        # the learners' evaluation grid, so the floor line spans the whole x axis
        assert list(run.eval["step"]) == [0, 1000, 2000]
        assert (run.eval["episodes"] == 1).all() and np.isfinite(run.eval["return"]).all()
        calls = run.timing.set_index("phase")["calls"]
        assert calls["critic_update"] == calls["actor_update"] == 0
        assert calls["env_step"] == calls["act"] == 3 * 1000  # 3 evaluations x 1000-step episodes
        states, policy = run.probe_actions("policy")
        _, behaviour = run.probe_actions("behaviour")
        assert states.shape == (3, 17) and policy.shape == behaviour.shape == (3, 20, 6)
        assert np.abs(policy).max() <= 1 and not np.array_equal(policy, behaviour)
        assert not list(d.glob("*.tmp")) and not list(d.glob(".*")), "temporary files left"


def test_seed_does_not_depend_on_its_block_and_reruns_reproduce(runs, tmp_path):
    run_script("--task", "cheetah_run", "--seeds", "1", *BUDGET, "--out", str(tmp_path))
    alone = rundir.load_run(tmp_path / "seed1")
    in_block = rundir.load_run(seed_dir(runs, "random", "cheetah_run", 1))
    np.testing.assert_array_equal(alone.eval["return"], in_block.eval["return"])
    np.testing.assert_array_equal(alone.probe_actions("policy")[1], in_block.probe_actions("policy")[1])
    other = rundir.load_run(seed_dir(runs, "random", "cheetah_run", 0))
    assert not np.array_equal(other.eval["return"], in_block.eval["return"])


def test_bad_task_writes_nothing(tmp_path):
    proc = run_script("--task", "cheetah_runn", "--seeds", "0", *BUDGET, "--out",
                      str(tmp_path / "x"), check=False)
    assert proc.returncode != 0 and "unknown task" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_aggregate_picks_up_the_random_algo(runs, tmp_path):
    manifest = write_manifest(tmp_path / "manifest.json", runs,
                              [("random", "cheetah_run", s, "benchmark") for s in (0, 1, 2)])
    scores_csv, status_csv = tmp_path / "scores.csv", tmp_path / "run_status.csv"
    proc = subprocess.run([sys.executable, "-m", "analysis.benchmark.aggregate",
                           "--manifest", str(manifest),
                           "--out", str(scores_csv), "--status-out", str(status_csv)],
                          capture_output=True, text=True, env=python_env(), timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    scores = pd.read_csv(scores_csv)
    status = pd.read_csv(status_csv).set_index("seed")
    assert set(scores["algo"]) == {"random"}
    assert len(scores) == 2 * 3 and set(scores["step"]) == {0, 1000, 2000}
    np.testing.assert_allclose(scores["normalized"], scores["return"] / 1000.0)
    assert status.loc[0, "status"] == status.loc[1, "status"] == "complete"
    assert status.loc[2, "status"] == "missing"
    assert (status.loc[[0, 1], "budget_steps"] == 2000).all()
