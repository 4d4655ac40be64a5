"""Tests of analysis.training.diagnostics (and the score-target column of the audit's summary) on
synthetic run directories whose metrics.csv files have known end-of-training values."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import audit
from analysis.records.provenance import sidecar_path
from analysis.training import diagnostics
from analysis.training.metrics import end_of_training, window_size
from contract import run_config, seed_dir, write_manifest
from qsm.contract.rundir import TIMING_PHASES, SeedRunWriter
from qsm.harness.metrics import COLUMNS, METRICS, metric_steps

REPO = Path(__file__).resolve().parents[1]
P, N, ACT_DIM = 2, 60, 2  # probe states, samples per state, action size (small: fast audit)
# 20 metrics rows (steps 200, 300, ..., 2100): the end-of-training window is the last 2 rows
BUDGET = {"steps": 2100, "start_steps": 100, "log_every": 100}
STEPS = metric_steps(BUDGET["steps"], BUDGET["start_steps"], BUDGET["log_every"])
LOGGED = {  # the columns each learner computes; the others are empty cells
    "qsm": ("critic_loss", "actor_loss", "q_mean", "q_std", "target_q_mean", "dq_da_rms",
            "score_target_rms", "eps_pred_rms", "bound_share"),
    "sac": ("critic_loss", "actor_loss", "q_mean", "q_std", "target_q_mean", "alpha", "entropy"),
}
DIVERGED_AT = 1500  # qsm seed 3: rows up to here, the last one with inf and nan cells
TASKS = ["cheetah_run", "toy_bimodal", "walker_run"]  # walker_run: in the config, no runs


def value(seed, column, step) -> float:
    """A logged value: multiples of 0.5, so every mean below is exact in binary."""
    return 10.0 * seed + list(METRICS).index(column) + step / 100.0


def expected_end(seed, column) -> float:
    """Mean over the window of the last 2 of the 20 rows (steps 2000 and 2100)."""
    return 10.0 * seed + list(METRICS).index(column) + 20.5


def write_metrics(d: Path, algo, seed, steps, last_row=None) -> None:
    with open(d / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for step in steps:
            row = {c: repr(value(seed, c, step)) for c in LOGGED[algo]}
            if step == steps[-1] and last_row:
                row.update(last_row)
            w.writerow([step] + [row.get(c, "") for c in METRICS])


def write_run(root, algo, task, seed, status="complete", metrics=True, budget=None,
              contract_version=None) -> Path:
    """One seed directory following the run-directory contract."""
    d = seed_dir(root, algo, task, seed)
    w = SeedRunWriter(d)
    cfg = run_config(algo, task, seed, act_dim=ACT_DIM)
    cfg["budget"] = {**cfg["budget"], **(BUDGET if budget is None else budget)}
    if contract_version is not None:
        cfg["contract_version"] = contract_version
    w.write_config(cfg)
    last = DIVERGED_AT if status == "diverged" else cfg["budget"]["steps"]
    for step in (0, last):
        w.add_eval(step, [float(seed), float(seed) + 1], wall_time_s=1.0)
    w.write_timing([{"phase": p, "calls": 1, "total_s": 1.0, "env_steps": last, "block_size": 1,
                     "device": "cpu"} for p in TIMING_PHASES])
    rng = np.random.default_rng(seed)
    actions = np.clip(rng.normal(0.0, 0.3, size=(P, N, ACT_DIM)), -1, 1)
    w.write_probe_actions(rng.uniform(-1, 1, size=(P, 3)), actions, actions)
    (d / "policy.pt").write_bytes(b"weights")
    if status == "diverged":
        write_metrics(d, algo, seed, [s for s in STEPS if s <= DIVERGED_AT],
                      last_row={"critic_loss": "inf", "q_mean": "nan"})
    elif metrics and algo in LOGGED:
        write_metrics(d, algo, seed, STEPS)
    elif not metrics:
        (d / "metrics.csv").unlink(missing_ok=True)
    w.write_status(status, last, "non-finite critic loss" if status == "diverged" else "")
    return d


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runs and the manifest that lists them."""
    root = tmp_path_factory.mktemp("runs")
    listed = []
    for seed in (0, 1, 2):
        write_run(root, "qsm", "cheetah_run", seed)
        listed.append(("qsm", "cheetah_run", seed, "benchmark"))
    for seed in (0, 1):
        write_run(root, "sac", "cheetah_run", seed)
        listed.append(("sac", "cheetah_run", seed, "benchmark"))
    write_run(root, "qsm", "cheetah_run", 3, status="diverged")
    write_run(root, "sac", "cheetah_run", 2, status="running")
    # a program that learns nothing: metrics.csv with its header only
    write_run(root, "random", "cheetah_run", 0, budget={"start_steps": 2100})
    # td3 seed 0: listed, never trained (no directory)
    listed += [("qsm", "cheetah_run", 3, "benchmark"), ("sac", "cheetah_run", 2, "benchmark"),
               ("random", "cheetah_run", 0, "benchmark"), ("td3", "cheetah_run", 0, "benchmark")]
    # without metrics.csv: a run of the current contract, and one written before it had the file
    write_run(root, "qsm", "toy_bimodal", 0, metrics=False)
    write_run(root, "qsm", "toy_bimodal", 1, metrics=False, contract_version=2)
    listed += [("qsm", "toy_bimodal", 0, "audit"), ("qsm", "toy_bimodal", 1, "audit")]
    return write_manifest(root / "manifest.json", root, listed, config_hash="d1a6c0ffee00")


@pytest.fixture(scope="module")
def cli_out(runs, tmp_path_factory):
    """The command line exactly as the Snakemake rule calls it."""
    out = tmp_path_factory.mktemp("diagnostics")
    cmd = [sys.executable, "-m", "analysis.training.diagnostics", "--manifest", str(runs),
           "--tables", str(out / "tables"), "--figures", str(out / "figures"), "--tasks", *TASKS]
    from conftest import python_env
    res = subprocess.run(cmd, cwd=REPO, env=python_env(), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    table = pd.read_csv(out / "tables" / diagnostics.TABLE_NAME, keep_default_na=False,
                        na_values={c: [""] for c in diagnostics.TABLE_COLUMNS if c != "note"})
    return out, table, res.stderr


def row(table, algo, task, seed):
    hit = table[(table["algo"] == algo) & (table["task"] == task) & (table["seed"] == seed)]
    assert len(hit) == 1, (algo, task, seed)
    return hit.iloc[0]


def test_end_of_training_window_is_the_last_tenth_of_the_rows():
    assert [window_size(n) for n in (0, 1, 9, 10, 19, 20, 200, 205)] == [0, 1, 1, 1, 1, 2, 20, 20]
    rows = pd.DataFrame({c: np.nan for c in COLUMNS}, index=range(20))
    rows["step"] = np.arange(20) * 10.0
    rows["critic_loss"] = np.arange(20.0)
    out = end_of_training(rows)
    assert out["critic_loss"] == 18.5 and out["window_rows"] == 2 and out["n_rows"] == 20
    assert (out["window_first_step"], out["last_step"]) == (180, 190)
    assert math.isnan(out["alpha"]) and out["n_nonfinite"] == 0  # never logged: not non-finite
    assert end_of_training(None)["n_rows"] == 0


def test_table_has_one_row_per_listed_run_with_its_columns(cli_out):
    _, table, _ = cli_out
    assert list(table.columns) == diagnostics.TABLE_COLUMNS
    assert len(table) == 11
    assert set(table["role"]) == {"benchmark", "audit"}


def test_end_of_training_values_are_exact(cli_out):
    _, table, _ = cli_out
    for algo, seeds in (("qsm", (0, 1, 2)), ("sac", (0, 1))):
        for seed in seeds:
            r = row(table, algo, "cheetah_run", seed)
            assert r["status"] == "complete" and r["note"] == ""
            assert (r["n_rows"], r["window_rows"]) == (20, 2)
            assert (r["window_first_step"], r["last_step"]) == (2000, 2100)
            assert (r["budget_steps"], r["log_every"], r["n_nonfinite"]) == (2100, 100, 0)
            for column in METRICS:
                if column in LOGGED[algo]:
                    assert r[column] == expected_end(seed, column), (algo, seed, column)
                else:  # a column this learner does not compute: an empty cell
                    assert math.isnan(r[column]), (algo, seed, column)


def test_diverged_run_leaves_its_non_finite_values_out_and_says_so(cli_out):
    _, table, _ = cli_out
    r = row(table, "qsm", "cheetah_run", 3)
    assert r["status"] == "diverged"
    assert (r["n_rows"], r["window_rows"], r["last_step"]) == (14, 1, DIVERGED_AT)
    assert math.isnan(r["critic_loss"]) and math.isnan(r["q_mean"])  # inf and nan in the window
    assert r["score_target_rms"] == value(3, "score_target_rms", DIVERGED_AT)
    assert r["n_nonfinite"] == 2
    assert "diverged at step 1500" in r["note"] and "2 non-finite value(s)" in r["note"]


def test_runs_without_metrics_are_reported_not_crashed_on(cli_out):
    _, table, stderr = cli_out
    for seed in (0, 1):  # no metrics.csv: the contract's validator names the file
        r = row(table, "qsm", "toy_bimodal", seed)
        assert "metrics.csv" in r["note"], r["note"]
        assert all(math.isnan(r[c]) for c in METRICS) and pd.isna(r["n_rows"])
    assert "contract_version 2" in row(table, "qsm", "toy_bimodal", 1)["note"]
    r = row(table, "td3", "cheetah_run", 0)
    assert (r["status"], r["note"]) == ("missing", "no run directory")
    r = row(table, "sac", "cheetah_run", 2)
    assert r["status"] == "running" and r["note"].startswith("not read: still running")
    assert all(math.isnan(r[c]) for c in METRICS)
    r = row(table, "random", "cheetah_run", 0)
    assert r["status"] == "complete" and r["n_rows"] == 0 and "no rows" in r["note"]
    assert "no metrics: qsm/toy_bimodal/seed0" in stderr


def test_table_carries_its_provenance(cli_out):
    out, table, _ = cli_out
    side = json.loads(sidecar_path(out / "tables" / diagnostics.TABLE_NAME).read_text())
    assert side["output"] == diagnostics.TABLE_NAME and side["config_hash"] == "d1a6c0ffee00"
    assert side["analysis"]["module"] == "analysis.training.diagnostics"
    assert side["n_runs"] == 11 and side["n_used"] == 6  # the runs with metrics rows
    assert side["by_status"] == table["status"].value_counts().to_dict()
    used = {(r["algo"], r["seed"]) for r in side["runs"] if r["used"]}
    assert used == {("qsm", 0), ("qsm", 1), ("qsm", 2), ("qsm", 3), ("sac", 0), ("sac", 1)}


def test_one_figure_per_task_is_written(cli_out):
    out, _, _ = cli_out
    for task in TASKS:  # toy_bimodal: no metrics; walker_run: no runs; both still drawn
        for ext in ("png", "pdf"):
            f = out / "figures" / f"training_diagnostics_{task}.{ext}"
            assert f.stat().st_size > 1000, f


def test_audit_summary_carries_the_score_target_beside_the_bound_mass(runs):
    columns = audit.SUMMARY_COLUMNS
    at = columns.index("mass_any_bound_ci_high")
    assert columns[at + 1: at + 4] == ["score_target_rms", "score_target_rms_ci_low",
                                       "score_target_rms_ci_high"]
    entries = audit.load_entries(runs)
    summary = audit.modes_summary(entries, audit.measure_entries(entries, kl_samples=50),
                                  reps=50)
    assert list(summary.columns) == columns
    qsm = summary[(summary["algo"] == "qsm") & (summary["task"] == "cheetah_run")]
    assert len(qsm) == 2  # policy and behaviour: the run's scale, the same for both
    # the complete seeds 0-2 (the diverged seed 3 is not audited)
    truth = np.mean([expected_end(s, "score_target_rms") for s in (0, 1, 2)])
    for _, r in qsm.iterrows():
        assert r["score_target_rms"] == pytest.approx(truth)
        assert r["score_target_rms_ci_low"] <= truth <= r["score_target_rms_ci_high"]
    for algo in ("sac", "random"):  # no score target: empty
        assert summary.loc[summary["algo"] == algo, "score_target_rms"].isna().all()
