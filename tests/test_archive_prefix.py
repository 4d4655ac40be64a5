"""Prefix reproducibility: the current code retrains the first learning steps of archived runs and
must write the same numbers, bit for bit on a CPU that rounds as the training machine's did.

For one archived QSM run and one archived SAC run of the study's archive (results/archive/study),
and one archived TD3 run of a DMC task added after cheetah_run (one of the paper's five others),
the trainer reruns the run's own command (its config.json records it) with --stop-after just past
the first learning steps, and every metrics.csv row and every evaluation of that prefix is
compared with the archive. Where the archive records for the run the numerics fingerprint
(qsm.runtime.numerics) of this machine, the comparison is of the text the CSV files hold, bit for
bit; where no archived run of the agent was trained on such a CPU, every number must agree to a
relative RTOL (another CPU's kernels round differently; a change to the maths moves the numbers
by far more) and the test warns that it compared to rounding only. A failure means the current
code computes other numbers than the code that trained the archive: if that change is intended,
the archive is stale (docs/study.md, "When the code's numerics change").
"""
from __future__ import annotations

import csv
import json
import shlex
import math
import subprocess
import sys
import warnings

import pytest
import yaml

from conftest import ROOT, python_env
from qsm.contract.identity import BUDGET_KEYS
from qsm.declare.train_cli import build_parser
from qsm.runtime.numerics import fingerprint

ARCHIVE = ROOT / "results" / "archive" / "study"
LEARNING_ROWS = 2  # metrics rows past the start of learning that the prefix covers
# Across CPUs that round differently the rows drift apart as updates accumulate: measured on an
# AVX-512 Xeon against the study archive's first runs, at most 8e-5 relative (QSM's actor loss at
# the second row, after 280 updates; SAC at most 1.4e-6). A changed coefficient, sign or target
# moves them by far more.
RTOL = 1e-3


#: The study's first benchmark task; the runs of the others were trained by a later commit.
FIRST_TASK = "cheetah_run"
#: The paper's six tasks, the study's aggregated ones: a "new task" is one of them but the first.
NEW_TASKS = set(yaml.safe_load((ROOT / "config" / "study.yaml").read_text())["stats"]["tasks"]) \
    - {FIRST_TASK}


def archived_run(algo, new_task=False):
    """The archived run of `algo` to check: of the shortest prefix (fewest random steps), one
    trained on a CPU with this machine's numerics where there is one; its record, directory and
    whether the numerics match. `new_task`: a benchmark run of a task other than FIRST_TASK."""
    runs = json.loads((ARCHIVE / "MANIFEST.json").read_text())["runs"] if ARCHIVE.is_dir() else []
    runs = [r for r in runs if r["algo"] == algo and r["status"] == "complete"
            and (not new_task or ("benchmark" in r["roles"] and r["task"] in NEW_TASKS))]
    if not runs:
        which = (f"benchmark {algo} run of one of {', '.join(sorted(NEW_TASKS))}" if new_task
                 else algo)
        pytest.fail(f"{ARCHIVE} holds no complete {which} run to check the current code against")
    here = fingerprint()

    def key(r):
        budget = json.loads((ARCHIVE / r["path"] / "config.json").read_text())["budget"]
        return (budget["start_steps"], r.get("numerics") != here, r["task"], r["run_id"], r["seed"])
    record = min(runs, key=key)
    return record, ARCHIVE / record["path"], record.get("numerics") == here


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


def same(archived: str, now: str, exact: bool) -> bool:
    """The CSV text bit for bit, or (another CPU) the numbers to RTOL; text that is no number
    (an empty cell) must be equal."""
    if exact or archived == now:
        return archived == now
    try:
        a, b = float(archived), float(now)
    except ValueError:
        return False
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=0.0) or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("algo, new_task", [("qsm", False), ("sac", False), ("td3", True)],
                         ids=["qsm", "sac", "td3-new-task"])
def test_current_code_reproduces_the_first_learning_steps_of_an_archived_run(algo, new_task,
                                                                             tmp_path):
    record, archived, exact = archived_run(algo, new_task)
    config = json.loads((archived / "config.json").read_text())
    budget = config["budget"]
    stop = budget["start_steps"] + LEARNING_ROWS * budget["log_every"]
    command = rerun_command(config["provenance"]["command"], tmp_path, stop)
    proc = subprocess.run(command, env=python_env(), capture_output=True, text=True, cwd=ROOT,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = tmp_path / f"seed{record['seed']}"
    assert json.loads((fresh / "status.json").read_text())["status"] == "running"

    how = "bit for bit" if exact else f"to a relative {RTOL:g} (trained on another kind of CPU)"
    stale = (f"the current code no longer reproduces archived run {record['run_id']} "
             f"({algo} on {record['task']}, seed {record['seed']}, trained at "
             f"{str(record['git_commit'])[:8]}) in {archived} {how}: if its numerics changed on "
             f"purpose, the archive is stale (docs/study.md, 'When the code's numerics change')")
    old_metrics = [r for r in rows(archived / "metrics.csv") if int(r["step"]) <= stop]
    new_metrics = rows(fresh / "metrics.csv")
    assert len(old_metrics) == LEARNING_ROWS and len(new_metrics) == LEARNING_ROWS
    for old, new in zip(old_metrics, new_metrics):
        assert new["step"] == old["step"]
        for column, value in old.items():
            assert same(value, new[column], exact), \
                f"{stale}; metrics.csv step {old['step']} {column}: archived {value}, now {new[column]}"
    evaluations = ("step", "return", "return_std", "episodes")  # wall_time_s is not a result
    old_evals = [r for r in rows(archived / "eval.csv") if int(r["step"]) <= stop]
    new_evals = rows(fresh / "eval.csv")
    assert len(old_evals) >= 2 and len(new_evals) == len(old_evals)
    for old, new in zip(old_evals, new_evals):
        assert new["step"] == old["step"] and new["episodes"] == old["episodes"]
        for column in evaluations:
            assert same(old[column], new[column], exact), \
                f"{stale}; eval.csv step {old['step']} {column}: archived {old[column]}, now {new[column]}"
    if not exact:
        warnings.warn(f"{algo}: compared with archived run {record['run_id']} to rounding only: no "
                      f"archived {algo} run records this machine's numerics ({fingerprint()})")
