"""The official JAX learners trained under the suite's protocol (workflow/scripts/official_baseline.py)."""
from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, official_or_skip, python_env, sigkill_after_checkpoint
from qsm.contract import rundir
from qsm.harness import official
from qsm.harness.metrics import METRICS, metric_steps

SCRIPT = ROOT / "workflow" / "scripts" / "official_baseline.py"


def load_script():
    spec = importlib.util.spec_from_file_location("official_baseline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_config_values(path):
    """`config.X = value` assignments of an official config file, read as literals (the files
    import ml_collections, which the suite does not need); `config_dict.placeholder(...)`, an
    unset value, reads as None."""
    values = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute)
                and isinstance(node.targets[0].value, ast.Name) and node.targets[0].value.id == "config"):
            call = node.value
            placeholder = (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                           and call.func.attr == "placeholder")
            values[node.targets[0].attr] = None if placeholder else ast.literal_eval(call)
    return values


@pytest.mark.parametrize("algo,files,model_cls", [
    ("qsm", ["score_matching_config.py"], "ScoreMatchingLearner"),
    ("sac", ["td_config.py", "sac_config.py"], "SACLearner"),
    ("td3", ["td_config.py", "td3_config.py"], "TD3Learner")])
def test_hyperparameters_are_the_official_configs(algo, files, model_cls):
    configs = official_or_skip(extra=False) / "examples" / "states" / "configs"
    values = {}
    for name in files:  # sac_config and td3_config start from td_config.get_config()
        values.update(official_config_values(configs / name))
    assert values.pop("model_cls") == model_cls
    assert load_script().OFFICIAL_CONFIGS[algo] == values


def run_script(args, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=python_env(), timeout=timeout)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "runs"
    base = ["--task", "cheetah_run", "--seeds", "0", "--steps", "10", "--out", str(out)]
    for extra, message in ((["--official-path", str(tmp_path / "nowhere")], "is not a score_matching_rl checkout"),
                           (["--steps", "0"], "--steps must be positive"),
                           (["--task", "cheetah_sprint"], "cheetah_sprint")):
        proc = run_script(base + extra, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert not out.exists()


def test_unknown_hyperparameter_names_the_valid_ones(tmp_path):
    official_or_skip()
    proc = run_script(["--task", "cheetah_run", "--seeds", "0", "--steps", "10", "--out", str(tmp_path / "r"),
                       "--set", "Mq=120"], timeout=300)
    assert proc.returncode == 2 and "unknown hyperparameter(s) Mq" in proc.stderr and "M_q" in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
@pytest.mark.parametrize("algo,hidden", [("qsm", ["actor_hidden_dims=[32,32]", "critic_hidden_dims=[32,32]"]),
                                         ("sac", ["hidden_dims=[32,32]"]), ("td3", ["hidden_dims=[32,32]"])])
def test_tiny_run_writes_a_valid_contract(tmp_path, algo, hidden):
    official_or_skip(sac=algo == "sac")
    out = tmp_path / f"{algo}_official" / "cheetah_run"
    sets = [arg for h in hidden for arg in ("--set", h)]
    proc = run_script(["--algo", algo, "--task", "cheetah_run", "--seeds", "0", "1", "--steps", "300",
                       "--start-steps", "200", "--eval-every", "300", "--eval-episodes", "1",
                       "--batch-size", "32", "--probe-states", "2", "--probe-samples", "10",
                       "--threads", "1", *sets, "--run-id", "r-123", "--code-version", "v-abc",
                       "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    for seed in (0, 1):
        run = rundir.load_run(out / f"seed{seed}")
        assert run.algo == f"{algo}_official" and run.seed == seed and run.status["status"] == "complete"
        assert list(run.eval["step"]) == [0, 300]
        config = json.loads((out / f"seed{seed}" / "config.json").read_text())
        assert config["run_id"] == "r-123" and config["code_version"] == "v-abc"
        assert config["official"]["learner"].endswith(official.LEARNERS[algo][1])
        calls = run.timing.set_index("phase")["calls"]
        assert calls["act"] == calls["env_step"] == 300
        assert calls["critic_update"] == calls["actor_update"] == 100
        states, policy = run.probe_actions("policy")
        _, behaviour = run.probe_actions("behaviour")
        assert states.shape[0] == 2 and policy.shape == behaviour.shape == (2, 10, 6)
        if algo == "qsm":
            assert config["hparams"]["M_q"] == 50 and config["hparams"]["actor_hidden_dims"] == [32, 32]
        if algo == "td3":  # a deterministic policy, explored with N(0, 0.1^2)
            assert np.allclose(policy, policy[:, :1]) and not np.allclose(behaviour, policy)
        # metrics.csv: the columns the official learner's update info gives, the others empty
        given = {c for c in METRICS if run.metrics[c].notna().any()}
        assert given == OFFICIAL_METRICS[algo], (algo, given)
        assert run.metrics["step"].tolist() == metric_steps(300, 200, config["budget"]["log_every"])
        assert (out / f"seed{seed}" / "policy.pt").is_file()


OFFICIAL_METRICS = {
    "qsm": {"critic_loss", "actor_loss", "q_mean", "q_std", "target_q_mean", "dq_da_rms",
            "score_target_rms", "eps_pred_rms"},
    "sac": {"critic_loss", "actor_loss", "q_mean", "alpha", "entropy"},
    "td3": {"critic_loss", "actor_loss", "q_mean", "actor_q"},
}


RESUME_ARGS = ["--algo", "qsm", "--task", "cheetah_run", "--seeds", "0", "1", "--steps", "240",
               "--start-steps", "60", "--eval-every", "120", "--eval-episodes", "1", "--batch-size", "32",
               "--probe-states", "2", "--probe-samples", "10", "--threads", "1",
               "--set", "actor_hidden_dims=[32,32]", "--set", "critic_hidden_dims=[32,32]",
               "--run-id", "r-1", "--code-version", "v-1"]


def official_results(out):
    evals = [{**rundir.load_run(out / f"seed{s}").eval[["step", "return", "return_std"]].to_dict("list"),
              **rundir.load_run(out / f"seed{s}").metrics.fillna("empty").to_dict("list")}
             for s in (0, 1)]  # (not the wall-clock column; every metrics row)
    probes = [dict(np.load(out / f"seed{s}" / "probe_actions.npz")) for s in (0, 1)]
    timing = [rundir.load_run(out / f"seed{s}").timing.set_index("phase")["calls"] for s in (0, 1)]
    return evals, probes, timing


@pytest.mark.slow
def test_killed_run_resumes_from_its_checkpoint_bit_for_bit(tmp_path):
    """SIGKILL after a checkpoint (at a random extra delay), rerun: the evaluation returns, probe
    actions and call counts equal those of an uninterrupted run; the checkpoint is then removed."""
    official_or_skip()
    reference = tmp_path / "uninterrupted"
    proc = run_script([*RESUME_ARGS, "--out", str(reference)])
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "killed"
    command = [sys.executable, str(SCRIPT), *RESUME_ARGS, "--checkpoint-every", "40", "--out", str(out)]
    ckpt = out / ".checkpoints" / "seeds-0-1.pt"
    killed_at = []
    for delay in np.random.default_rng(0).uniform(0.0, 0.5, size=2):
        if not sigkill_after_checkpoint(command, ckpt, float(delay)):
            break
        killed_at.append(torch.load(ckpt, weights_only=False)["step"])
        assert rundir._read_json(out / "seed0" / "status.json")["status"] == "running"
    assert killed_at, "the run finished before it could be killed"
    final = subprocess.run(command, env=python_env(), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert f"resumed from {ckpt} at step {killed_at[-1]}" in final.stderr
    ref_evals, ref_probes, ref_timing = official_results(reference)
    evals, probes, timing = official_results(out)
    assert evals == ref_evals
    for a, b in zip(ref_probes, probes):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    for a, b in zip(ref_timing, timing):
        assert a.to_dict() == b.to_dict()
    assert not ckpt.exists(), "the checkpoint must go once the run is complete"

    # a checkpoint of another identity is refused with one line, never resumed
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"signature": [{"run_id": "other"}], "step": 40}, ckpt)
    other = subprocess.run([*command[:-2], "--out", str(tmp_path / "other"), "--checkpoint-dir",
                            str(ckpt.parent)], env=python_env(), capture_output=True, text=True,
                           timeout=300)
    assert other.returncode == 2, other.stderr
    assert "belongs to another configuration or code version" in other.stderr
    assert "Traceback" not in other.stderr
