"""Table-driven bad inputs: each gets one clear message naming the file or key, a non-zero exit,
no traceback, and nothing valid overwritten."""
import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, python_env
from contract import seed_dir, write_manifest


def run(args, cwd=ROOT):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env=python_env(), timeout=300)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """One complete, valid run directory, made once."""
    out = tmp_path_factory.mktemp("good")
    proc = run(["-m", "qsm.train", "--algo", "td3", "--task", "toy_bimodal", "--seeds", "0",
                "--steps", "40", "--start-steps", "20", "--eval-every", "20", "--eval-episodes",
                "1", "--batch-size", "8", "--probe-states", "2", "--probe-samples", "20",
                "--threads", "1", "--set", "hidden=[16,16]", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    return out / "seed0"


def digest(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


# -- corrupted run directories: python -m qsm.contract.rundir must name the file -------------

def _write(name, text):
    return lambda d: (d / name).write_text(text)


def _npz(**arrays):
    def f(d):
        with open(d / "probe_actions.npz", "wb") as fh:
            np.savez(fh, **arrays)
    return f


def _json_edit(name, **changes):
    def f(d):
        obj = json.loads((d / name).read_text())
        obj.update(changes)
        (d / name).write_text(json.dumps(obj))
    return f


def _truncate(name, keep):
    def f(d):
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[:keep])
    return f


def _edit_metrics(change):
    """Rewrite metrics.csv through change(header, rows) -> (header, rows), cells as strings."""
    def f(d):
        lines = (d / "metrics.csv").read_text().splitlines()
        header, rows = change(lines[0].split(","), [line.split(",") for line in lines[1:]])
        (d / "metrics.csv").write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return f


RUN_DIR_CASES = [
    ("missing config", lambda d: (d / "config.json").unlink(), "config.json: is missing"),
    ("missing eval", lambda d: (d / "eval.csv").unlink(), "eval.csv: is missing"),
    ("missing timing", lambda d: (d / "timing.csv").unlink(), "timing.csv: is missing"),
    ("missing probes", lambda d: (d / "probe_actions.npz").unlink(), "probe_actions.npz: is missing"),
    ("missing status", lambda d: (d / "status.json").unlink(), "status.json: is missing"),
    ("mangled config json", _write("config.json", "{ algo: td3"), "config.json: is not valid JSON"),
    ("truncated config", _truncate("config.json", 40), "config.json: is not valid JSON"),
    ("config missing keys", _write("config.json", '{"contract_version": 1, "algo": "x"}'), "config.json: is missing keys"),
    ("wrong contract version", _json_edit("config.json", contract_version=7), "config.json: has contract_version 7"),
    ("unknown status", _json_edit("status.json", status="done"), "status.json: status must be one of"),
    ("empty eval", _write("eval.csv", ""), "eval.csv: cannot be parsed"),
    ("eval missing column", _write("eval.csv", "step,ret\n0,1\n"), "eval.csv: is missing columns"),
    ("eval header only", _write("eval.csv", "step,return,return_std,episodes,wall_time_s\n"), "eval.csv: has no rows"),
    ("eval steps decrease", _write("eval.csv", "step,return,return_std,episodes,wall_time_s\n20,1,0,1,0\n0,1,0,1,0\n"), "eval.csv: steps are not increasing"),
    ("eval nan return", _write("eval.csv", "step,return,return_std,episodes,wall_time_s\n0,nan,0,1,0\n"), "eval.csv: has non-finite returns"),
    ("timing missing phase", _write("timing.csv", "phase,calls,total_s,env_steps,block_size,device\nact,1,0.1,1,1,cpu\n"), "timing.csv: is missing phases"),
    ("probes not npz", _write("probe_actions.npz", "garbage"), "probe_actions.npz: cannot be read"),
    ("truncated probes", _truncate("probe_actions.npz", 100), "probe_actions.npz: cannot be read"),
    ("probes missing array", _npz(states=np.zeros((2, 2), np.float32)), "probe_actions.npz: has no array"),
    ("probes wrong shape", _npz(states=np.zeros((2, 2), np.float32), behaviour=np.zeros((2, 5, 3), np.float32),
                                policy=np.zeros((2, 5, 3), np.float32)), "probe_actions.npz: policy: has shape (2, 5, 3)"),
    ("policy out of bounds", _npz(states=np.zeros((2, 2), np.float32), behaviour=np.zeros((2, 5, 1), np.float32),
                                  policy=np.full((2, 5, 1), -2, np.float32)), "policy: actions must be finite and in [-1, 1]"),
    ("old contract version", _json_edit("config.json", contract_version=2), "has contract_version 2: written before metrics.csv"),
    ("missing metrics", lambda d: (d / "metrics.csv").unlink(), "metrics.csv: is missing"),
    ("missing policy", lambda d: (d / "policy.pt").unlink(), "policy.pt: is missing"),
    ("metrics missing column", _edit_metrics(lambda h, rows: ([c for c in h if c != "q_std"], [r[:4] + r[5:] for r in rows])),
     "metrics.csv: is missing columns ['q_std']"),
    ("metrics non-finite", _edit_metrics(lambda h, rows: (h, [r[:1] + ["nan"] + r[2:] for r in rows])),
     "metrics.csv: column 'critic_loss' has non-finite values"),
    ("metrics inf", _edit_metrics(lambda h, rows: (h, rows[:-1] + [rows[-1][:3] + ["inf"] + rows[-1][4:]])),
     "metrics.csv: column 'q_mean' has non-finite values"),
    ("metrics not a number", _edit_metrics(lambda h, rows: (h, [r[:2] + ["x"] + r[3:] for r in rows])),
     "metrics.csv: column 'actor_loss' holds a value that is not a number"),
    ("metrics row lost", _edit_metrics(lambda h, rows: (h, rows[:-1])),
     "metrics.csv: has 19 rows, expected 20"),
    ("metrics row doubled", _edit_metrics(lambda h, rows: (h, rows[:5] + rows[4:])),
     "metrics.csv: steps must be given and strictly increase"),
    ("probes out of bounds", _npz(states=np.zeros((2, 2), np.float32), behaviour=np.full((2, 5, 1), 3, np.float32),
                                  policy=np.zeros((2, 5, 1), np.float32)), "actions must be finite and in [-1, 1]"),
]


@pytest.mark.parametrize("name,corrupt,message", RUN_DIR_CASES, ids=[c[0] for c in RUN_DIR_CASES])
def test_corrupted_run_directory(tmp_path, good_run, name, corrupt, message):
    d = tmp_path / "seed0"
    shutil.copytree(good_run, d)
    corrupt(d)
    before = digest(d)
    proc = run(["-m", "qsm.contract.rundir", str(d)])
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert str(d) in lines[0]
    assert "Traceback" not in proc.stderr
    assert digest(d) == before, "validation must not modify the run"


def test_valid_run_directory_passes(good_run):
    proc = run(["-m", "qsm.contract.rundir", str(good_run)])
    assert proc.returncode == 0 and "ok:" in proc.stdout


def test_aggregate_reports_corrupted_runs_without_crashing(tmp_path, good_run):
    run_id = json.loads((good_run / "config.json").read_text())["run_id"]
    root = tmp_path / "runs"
    for k, (_, corrupt, _) in enumerate(RUN_DIR_CASES[:6] + [(None, lambda d: None, None)]):
        d = seed_dir(root, "td3", "toy_bimodal", k, run_id)
        shutil.copytree(good_run, d)
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "seed": k}))
        corrupt(d)
    manifest = write_manifest(tmp_path / "manifest.json", root,
                              [("td3", "toy_bimodal", k, "audit", run_id) for k in range(7)])
    out = tmp_path / "tables"
    proc = run(["-m", "analysis.benchmark.aggregate", "--manifest", str(manifest), "--out",
                str(out / "scores.csv"), "--status-out", str(out / "status.csv")])
    assert proc.returncode == 0, proc.stderr
    import pandas as pd
    status = pd.read_csv(out / "status.csv")
    assert (status["status"] == "invalid").sum() == 6 and (status["status"] == "complete").sum() == 1


# -- training command --------------------------------------------------------------------------

TRAIN_CASES = [
    (["--algo", "nope"], "unknown algorithm 'nope'"),
    (["--task", "walker_runn"], "unknown task 'walker_runn'"),
    (["--steps", "0"], "--steps must be positive"),
    (["--seeds", "1", "1"], "--seeds must be distinct"),
    (["--eval-every", "0"], "--eval-every must be positive"),
    (["--set", "=3"], "malformed --set"),
    (["--set", "hidden=[1,"], "malformed --set"),
    (["--set", "gamma=fast"], "sac: gamma='fast' is invalid: gamma must be a number in (0, 1)"),
    (["--checkpoint-every", "-2"], "--checkpoint-every must be >= 0"),
    (["--stop-after", "10"], "--stop-after must lie between 0 and --steps 10"),
]


@pytest.mark.parametrize("change,message", TRAIN_CASES, ids=[c[1] for c in TRAIN_CASES])
def test_bad_training_command(tmp_path, change, message):
    args = {"--algo": "sac", "--task": "cheetah_run", "--seeds": ["0"], "--steps": "10"}
    extra = []
    i = 0
    while i < len(change):
        key = change[i]
        vals = []
        i += 1
        while i < len(change) and not change[i].startswith("--"):
            vals.append(change[i])
            i += 1
        if key in args:
            args[key] = vals if key == "--seeds" else vals[0]
        else:
            extra += [key, *vals]
    argv = []
    for k, v in args.items():
        argv += [k, *(v if isinstance(v, list) else [v])]
    proc = run(["-m", "qsm.train", *argv, *extra, "--out", str(tmp_path / "out")])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_complete_run_is_not_overwritten_by_a_different_config(tmp_path, good_run):
    d = tmp_path / "out"
    shutil.copytree(good_run, d / "seed0")
    before = digest(d / "seed0")
    proc = run(["-m", "qsm.train", "--algo", "td3", "--task", "toy_bimodal", "--seeds", "0",
                "--steps", "80", "--out", str(d)])
    assert proc.returncode == 2 and "another configuration or code version" in proc.stderr
    assert digest(d / "seed0") == before


# -- pipeline configuration ----------------------------------------------------------------------

CONFIG_CASES = [
    ("seeds=[]", "seeds"),
    ("budget={'steps': -1}", "budget"),
    ("checkpoint_every=-5", "checkpoint_every"),
    ("algos=[sac,td3]", "stats.reference"),
    ("audit={'tasks': ['toy_nope'], 'algos': ['qsm'], 'seeds': [0], 'budget': {}, "
     "'histogram_states': 1}", "audit"),
    ("bogus_key=1", "bogus_key"),
]


def dry_run(tmp_path, *args):
    """snakemake -n on the default preset, in a temporary working directory."""
    return run(["-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                "-n", "--configfile", str(ROOT / "config" / "config.yaml"), *args], cwd=tmp_path)


@pytest.mark.parametrize("override,key", CONFIG_CASES, ids=[c[1] for c in CONFIG_CASES])
def test_bad_pipeline_config_names_the_key(tmp_path, override, key):
    proc = dry_run(tmp_path, "--config", override)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr


def test_env_workers_must_leave_a_thread_for_torch(tmp_path):
    extra = tmp_path / "workers.yaml"
    extra.write_text("resources:\n  train: {threads: 2, env_workers: 2, gpu: 0, mem_mb: 1000, "
                     "runtime: 5}\n")
    proc = dry_run(tmp_path, str(extra))
    assert proc.returncode != 0
    assert "resources.train.env_workers" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
