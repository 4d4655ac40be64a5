"""The Snakemake pipeline: DAG of every preset, config validation, lint, the SLURM profile, and an
end-to-end smoke run that is killed mid-grid and re-run to completion."""
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from conftest import ROOT, python_env

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args, cwd=ROOT, timeout=600, check=False):
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          env=python_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


def planned_jobs(output: str) -> dict:
    counts = {}
    for line in output.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.mark.parametrize("preset,train,tsweep,external", [
    ("config/config.yaml", 3 * 6 + 3 * 2 * 2, 2 * 5, 6),  # 6 tasks x 1 block; 2 toy tasks x 2 blocks
    ("config/smoke.yaml", 4 * 2 + 3 * 1, 2 * 2, 2),
    ("config/paper.yaml", 3 * 6 + 3 * 2, 2 * 6, 6),      # 10 seeds packed in one block per job
])
def test_dry_run_plans_one_job_per_algo_task_block(preset, train, tsweep, external):
    proc = snakemake("-n", "--configfile", preset, check=True)
    jobs = planned_jobs(proc.stdout + proc.stderr)
    assert jobs["train"] == train and jobs["train_tsweep"] == tsweep, jobs
    assert jobs["random_policy"] == external, jobs
    for rule in ("aggregate", "stats", "audit", "step_profile", "tsweep_profile"):
        assert jobs[rule] == 1, rule


def test_slurm_profile_parses_and_asks_one_gpu_per_training_job():
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    proc = snakemake("-n", "--configfile", "config/paper.yaml", "--workflow-profile",
                     "profiles/slurm", check=True)
    out = proc.stdout + proc.stderr
    assert planned_jobs(out)["train"] == 24
    train_blocks = [b for b in out.split("rule train:")[1:]]
    assert train_blocks and all("gpu=1" in b.split("Shell command")[0] for b in train_blocks)
    assert "--seeds 0 1 2 3 4 5 6 7 8 9" in out
    assert yaml.safe_load((ROOT / "profiles/local/config.yaml").read_text())["cores"] == "all"


@pytest.mark.parametrize("override,message", [
    ("seed_block=0", "seed_block"),
    ("algos=[qsm,foo]", "unknown algorithm 'foo'"),
    ("tasks=[cheetah_runn]", "unknown task 'cheetah_runn'"),
    ("device=tpu", "device"),
])
def test_bad_config_fails_at_once_naming_the_key(override, message):
    proc = snakemake("-n", "--config", override)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_lint_reports_nothing():
    proc = snakemake("--lint")
    assert "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


EXPECTED_TABLES = ["scores.csv", "run_status.csv", "aggregate.csv", "probability_of_improvement.csv",
                   "iqm_curve.csv", "modes.csv", "modes_summary.csv", "kl.csv", "toy_optima.csv",
                   "step_profile.csv", "tsweep_profile.csv"]
EXPECTED_FIGURES = ["aggregate_metrics", "performance_profile", "probability_of_improvement",
                    "iqm_sample_efficiency", "learning_curves", "mode_counts", "kl_divergence",
                    "action_histograms", "toy_optima", "step_profile", "tsweep_profile"]


@pytest.mark.slow
def test_smoke_pipeline_killed_mid_grid_then_rerun(tmp_path):
    base = ["-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile",
            str(ROOT / "config/smoke.yaml"), "--cores", "2"]
    # 1. start the grid and SIGKILL Snakemake with all its jobs once some training is done
    proc = subprocess.Popen([*SNAKEMAKE, *base], cwd=ROOT, env=python_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    runs = tmp_path / "results" / "runs"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len(list(runs.glob("*/*/block*.done"))) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the smoke grid finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(runs.glob("*/*/block*.done")))
    assert 2 <= done_before < 13
    # 2. re-run: unlock (a killed Snakemake leaves its lock), then finish the grid
    snakemake(*base, "--unlock", check=True)
    snakemake(*base, "--rerun-incomplete", check=True, timeout=900)
    tables, figures = tmp_path / "results" / "tables", tmp_path / "results" / "figures"
    for name in EXPECTED_TABLES:
        assert (tables / name).stat().st_size > 0, name
        pd.read_csv(tables / name)
    for name in EXPECTED_FIGURES:
        for ext in ("png", "pdf"):
            assert (figures / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext}"
    scores = pd.read_csv(tables / "scores.csv")
    # both worked examples of "adding a baseline" appear with no edit to the analysis code
    assert set(scores["algo"]) == {"qsm", "sac", "td3", "dql", "random"}
    assert set(scores["task"]) == {"cheetah_run", "reacher_hard", "toy_bimodal"}
    status = pd.read_csv(tables / "run_status.csv")
    assert len(status) == 4 * 2 * 2 + 3 * 2 + 2 * 2 and (status["status"] == "complete").all(), status
    agg = pd.read_csv(tables / "aggregate.csv")
    assert {"iqm", "mean", "median", "optimality_gap"} <= set(agg["metric"])
    assert {"dql", "random"} <= set(agg["algo"])
    assert {"qsm", "dql"} == set(pd.read_csv(tables / "tsweep_profile.csv")["algo"])
    assert (tables / "final_scores.md").read_text().startswith("# Final scores")
    assert not list((tmp_path / "results" / "checkpoints").rglob("*.pt")), "checkpoints left behind"
    # 3. nothing left to do, and the HTML report builds
    again = snakemake(*base, "-n", check=True)
    assert "Nothing to be done" in again.stdout + again.stderr
    snakemake(*base, "--report", str(tmp_path / "report.html"), check=True)
    assert (tmp_path / "report.html").stat().st_size > 10_000
