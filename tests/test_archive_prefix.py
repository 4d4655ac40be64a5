"""Prefix reproducibility: the current code retrains the first learning steps of archived runs and
must write the same numbers, bit for bit (CPU, one thread).

For one archived QSM run and one archived SAC run of the study's archive (results/archive/study),
the trainer reruns the run's own command (its config.json records it) with --stop-after just past
the first learning steps, and every metrics.csv row and every evaluation of that prefix is
compared, as the text the CSV files hold, with the archive. A failure means the current code
computes other numbers than the code that trained the archive: if that change is intended, the
archive is stale (docs/study.md, "When the code's numerics change").
"""
from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT, python_env
from qsm.identity import BUDGET_KEYS
from qsm.train_cli import build_parser

ARCHIVE = ROOT / "results" / "archive" / "study"
LEARNING_ROWS = 2  # metrics rows past the start of learning that the prefix covers
def archived_run(algo):
    """The first archived run of `algo` (by task, run id, seed): its record and directory."""
    runs = json.loads((ARCHIVE / "MANIFEST.json").read_text())["runs"] if ARCHIVE.is_dir() else []
    runs = sorted((r for r in runs if r["algo"] == algo and r["status"] == "complete"),
                  key=lambda r: (r["task"], r["run_id"], r["seed"]))
    if not runs:
        pytest.fail(f"{ARCHIVE} holds no complete {algo} run to check the current code against")
    return runs[0], ARCHIVE / runs[0]["path"]


def rerun_command(recorded: str, out, stop_after: int) -> list:
    """What the recorded trainer command computes (agent, task, seeds, budget, overrides), with
    this machine's output directory, one CPU thread and --stop-after."""
    words = shlex.split(recorded)
    a = build_parser().parse_args(words[words.index("qsm.train") + 1:])
    budget = [f"--{key.replace('_', '-')}={getattr(a, key)}" for key in BUDGET_KEYS]
    return [sys.executable, "-m", "qsm.train", "--algo", a.algo, "--task", a.task, "--seeds",
            *map(str, a.seeds), *budget, *(f"--set={o}" for o in a.overrides), "--out", str(out),
            "--device", "cpu", "--threads", "1", "--stop-after", str(stop_after)]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("algo", ["qsm", "sac"])
def test_current_code_reproduces_the_first_learning_steps_of_an_archived_run(algo, tmp_path):
    record, archived = archived_run(algo)
    config = json.loads((archived / "config.json").read_text())
    budget = config["budget"]
    stop = budget["start_steps"] + LEARNING_ROWS * budget["log_every"]
    command = rerun_command(config["provenance"]["command"], tmp_path, stop)
    proc = subprocess.run(command, env=python_env(), capture_output=True, text=True, cwd=ROOT,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = tmp_path / f"seed{record['seed']}"
    assert json.loads((fresh / "status.json").read_text())["status"] == "running"

    stale = (f"the current code no longer reproduces archived run {record['run_id']} "
             f"({algo} on {record['task']}, seed {record['seed']}, trained at "
             f"{str(record['git_commit'])[:8]}) in {archived}: if its numerics changed on "
             f"purpose, the archive is stale (docs/study.md, 'When the code's numerics change')")
    old_metrics = [r for r in rows(archived / "metrics.csv") if int(r["step"]) <= stop]
    new_metrics = rows(fresh / "metrics.csv")
    assert len(old_metrics) == LEARNING_ROWS and len(new_metrics) == LEARNING_ROWS
    for old, new in zip(old_metrics, new_metrics):
        for column, value in old.items():
            assert new[column] == value, f"{stale}; metrics.csv step {old['step']} {column}: " \
                                         f"archived {value}, now {new[column]}"
    evaluations = ("step", "return", "return_std", "episodes")  # wall_time_s is not a result
    old_evals = [r for r in rows(archived / "eval.csv") if int(r["step"]) <= stop]
    new_evals = rows(fresh / "eval.csv")
    assert len(old_evals) >= 2 and len(new_evals) == len(old_evals)
    for old, new in zip(old_evals, new_evals):
        for column in evaluations:
            assert new[column] == old[column], f"{stale}; eval.csv step {old['step']} " \
                                               f"{column}: archived {old[column]}, now {new[column]}"
