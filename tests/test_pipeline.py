"""The Snakemake pipeline: DAG of every preset, config validation, lint, the SLURM profile, and an
end-to-end smoke run that is killed mid-grid, re-run, and then taken through config and code
changes (run identity: exactly the affected jobs rerun, nothing is overwritten, switching back
trains nothing).

Hermetic: every call runs in a temporary working directory (`--directory`), never in the
checkout, whose `results/` and `.snakemake/` these tests never read or write.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.records import catalogue
from conftest import ROOT, official_or_skip, preset_config, python_env

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
MANIFEST_TARGET = "results/tables/run_manifest.json"


def suite_env(suite: Path = ROOT) -> dict:
    env = python_env()
    env["PYTHONPATH"] = str(suite) + os.pathsep + env["PYTHONPATH"]  # jobs run this copy's code
    return env


def snakemake(*args, workdir, suite: Path = ROOT, timeout=600, check=False):
    proc = subprocess.run([*SNAKEMAKE, "-s", str(suite / "Snakefile"), "--directory", str(workdir),
                           *args], cwd=workdir, capture_output=True, text=True,
                          env=suite_env(suite), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    proc.text = proc.stdout + proc.stderr  # Snakemake writes its plan to both
    return proc


def preset(name):
    return str(ROOT / "config" / name)


def planned_jobs(output: str) -> dict:
    counts = {}
    for line in output.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def planned_training(output: str) -> list:
    """(role, algo, task) of every planned training job, from the jobs' identity lines."""
    return re.findall(r"^Job \d+: (\w+): (\S+) on (\S+), seeds", output, flags=re.M)


@pytest.mark.parametrize("name,train,external", [
    # benchmark blocks + audit blocks + M_q sweep (its M_q = 50 points are audit or benchmark
    # runs: only the other values train) + T sweep
    # ... + the capacity sweep (2 widths, neither the paper's) + the batch-size cost sweep (3 x 3;
    # qsm's at 256 is the T sweep's point at T = 5)
    ("config.yaml", 3 * 6 + 3 * 2 * 2 + 2 * 2 + 2 * 2 + 2 * 5 + 8, {"random_policy": 6}),
    # ... + the capacity sweep: its point at smoke's own widths is the audit run
    ("smoke.yaml", 4 * 2 + 3 * 1 + 1 * 2 + 1 + 2 * 2 + 2, {"random_policy": 2}),
    # 10 seeds in one block; sweeps: M_q 6 x 3 tasks, capacity 3 x 8, T 4 x 8, noise 4 x 8
    ("paper.yaml", 3 * 6 + 3 * 2 + 6 * 3 + 3 * 8 + 4 * 8 + 4 * 8 + 2 * 6 + 8, {"random_policy": 6}),
    ("fidelity.yaml", 1, {"official_baseline": 1, "fidelity": 1}),  # qsm and qsm_official, 3 seeds
    ("fidelity.yaml fidelity_50k.yaml", 1, {"official_baseline": 1, "fidelity": 1}),
    # one seed per job: cheetah_run and cartpole_swingup 3 x 5 each, five more tasks 3 x 3 each,
    # toy audit 3 x 2 x 5 and its four new toys 3 x 4 x 3, M_q sweep (1, 5, 20) x 2 x 3, the
    # sampler_steps and score_target_form points 2 x 3 each; the official learner on cheetah_run
    # and cartpole_swingup only (external_tasks), random on all seven; trained again
    # (retrain=true), since the preset reads its runs from the study's archive
    ("study.yaml retrain=true", 3 * 5 * 2 + 3 * 5 * 3 + 3 * 2 * 5 + 3 * 4 * 3 + 3 * 2 * 3 + 2 * 2 * 3,
     {"official_baseline": 10, "random_policy": 5 * 2 + 3 * 5, "fidelity": 1}),
    ("study.yaml", 0, {"official_baseline": None, "random_policy": None, "fidelity": 1}),
])
def test_dry_run_plans_one_job_per_algo_task_block(tmp_path, name, train, external):
    # as in a checkout: a preset given with --configfile extends config/config.yaml
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    files = [preset(w) for w in name.split() if w.endswith(".yaml")]
    overrides = [w for w in name.split() if "=" in w]
    proc = snakemake("-n", "--configfile", *files, *(["--config", *overrides] if overrides else []),
                     workdir=tmp_path, check=True)
    assert "config/config.yaml is extended by additional config" in proc.text
    jobs = planned_jobs(proc.stdout + proc.stderr)
    assert jobs.get("train", 0) == train, jobs
    assert {k: jobs.get(k) for k in external} == external, jobs
    for rule in ("run_manifest", "aggregate", "stats", "audit", "step_profile", "tsweep_profile",
                 "batch_profile", "run_cost", "diagnostics"):
        assert jobs[rule] == 1, rule
    if name.startswith("fidelity"):  # the same protocol for both; the overlay changes the budget
        steps = "50000 steps (10000 random)" if "50k" in name else "12000 steps (4000 random)"
        assert [role for role, _, _ in planned_training(proc.text)] == ["benchmark"] * 2
        assert proc.text.count(steps) == 2, proc.text[-3000:]


def test_slurm_profile_parses_and_asks_one_gpu_per_training_job(tmp_path):
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    proc = snakemake("-n", "--configfile", preset("paper.yaml"), "--workflow-profile",
                     str(ROOT / "profiles/slurm"), workdir=tmp_path, check=True)
    out = proc.stdout + proc.stderr
    assert planned_jobs(out)["train"] == 150  # the grid, the audit and the sweeps (dry-run test)
    assert "seeds 0 1 2 3 4 5 6 7 8 9" in out
    assert yaml.safe_load((ROOT / "profiles/local/config.yaml").read_text())["cores"] == "all"


@pytest.mark.parametrize("gpu", [0, 1])
def test_training_commands_take_a_gpu_slot_when_their_jobs_ask_for_a_gpu(tmp_path, gpu):
    """With resources.train.gpu 1, a local run wraps every training command (the suite's trainer
    and the official learners) in qsm.runtime.gpu_slots, which gives each job a device of its own;
    with 0, the commands are those of a CPU run."""
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    (tmp_path / "gpu.yaml").write_text(yaml.safe_dump(
        {"device": "cuda" if gpu else "cpu",
         "resources": {"train": {"threads": 1, "gpu": gpu, "mem_mb": 4000, "runtime": 60}}}))
    proc = snakemake("-n", "-p", "--configfile", preset("fidelity.yaml"), str(tmp_path / "gpu.yaml"),
                     workdir=tmp_path, check=True)
    commands = [line for line in proc.text.splitlines()
                if "python -m qsm.train" in line or "official_baseline.py" in line]
    assert len(commands) == 2, proc.stdout[-3000:]
    wrapper = "MUJOCO_GL=disable python -m qsm.runtime.gpu_slots run -- python "
    assert all((wrapper in c) == bool(gpu) and (c.count("gpu_slots") == gpu) for c in commands), \
        commands


def test_a_numbered_cuda_device_is_refused_when_jobs_get_a_gpu_each(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["device"] = "cuda:1"
    cfg["resources"]["train"]["gpu"] = 1
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake("-n", "--configfile", str(tmp_path / "bad.yaml"), workdir=tmp_path)
    assert proc.returncode != 0
    assert "config key device: 'cuda:1' with resources.train.gpu 1" in proc.text, proc.text[-3000:]


@pytest.mark.parametrize("override,message", [
    ("seed_block=0", "seed_block"),
    ("algos=[qsm,foo]", "unknown algorithm 'foo'"),
    ("tasks=[cheetah_runn]", "unknown task 'cheetah_runn'"),
    ("device=tpu", "device"),
])
def test_bad_config_fails_at_once_naming_the_key(tmp_path, override, message):
    proc = snakemake("-n", "--configfile", preset("config.yaml"), "--config", override,
                     workdir=tmp_path)
    assert proc.returncode != 0
    assert message in proc.text, proc.text[-3000:]


@pytest.mark.parametrize("change,message", [
    ({"task_seeds": {"walker_runn": [0]}},
     "config key task_seeds.walker_runn: 'walker_runn' is not a task of this configuration"),
    ({"external_tasks": {"official": ["cheetah_run"]}},
     "config key external_tasks.official: 'official' is not in external_baselines"),
    ({"external_tasks": {"random": ["toy_bimodal"]}},
     "config key external_tasks.random: 'toy_bimodal' is not a benchmark task"),
])
def test_bad_task_lists_fail_the_dry_run_naming_the_key(tmp_path, change, message):
    cfg = {**yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), **change}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake("-n", "--configfile", str(tmp_path / "bad.yaml"), workdir=tmp_path)
    assert proc.returncode != 0
    assert message in proc.text, proc.text[-3000:]


@pytest.mark.parametrize("hparams,message", [
    ({"qsm": {"all": {"T": 0}}},
     "config key hparams.qsm.all.T: qsm: T=0 is invalid: T must be an integer >= 1"),
    ({"sac": {"cheetah_run": {"gamma": 1.5}}},
     "config key hparams.sac.cheetah_run.gamma: sac: gamma=1.5 is invalid: gamma must be a number "
     "in (0, 1)"),
    ({"td3": {"walker_runn": {"tau": 0.1}}},
     "config key hparams.td3.walker_runn: 'walker_runn' is neither 'all' nor a task"),
    ({"dql": {"all": {"beta_min": 20.0}}},
     "config key hparams.dql.all.beta_min: dql: beta_min=20.0 and beta_max=10.0 are invalid "
     "together: beta_min must be <= beta_max"),
    ({"qsm": {"all": {"actor_hidden": []}}}, "config key hparams.qsm.all.actor_hidden"),
    ({"foo": {"all": {"T": 3}}}, "config key hparams.foo: unknown algorithm 'foo'"),
])
def test_bad_hyperparameter_in_config_fails_the_dry_run_naming_the_key(tmp_path, hparams, message):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["hparams"] = hparams
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake("-n", "--configfile", str(tmp_path / "bad.yaml"), workdir=tmp_path)
    assert proc.returncode != 0
    assert message in proc.text, proc.text[-3000:]
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("sweep,message", [
    ({"algos": ["sac"]}, "config key sweeps[1].hparam: 'sac' has no hyperparameter 'actor_hidden'"),
    ({"algos": ["foo"]}, "config key sweeps[1].algos: unknown algorithm 'foo'"),
    ({"hparam": "width"}, "config key sweeps[1].hparam: 'qsm' has no hyperparameter 'width'"),
    ({"tasks": ["cheetah_runn"]}, "config key sweeps[1].tasks: unknown task 'cheetah_runn'"),
    ({"values": [[64, 64], [0, 64]]}, "config key sweeps[1].values: qsm: actor_hidden"),
    ({"values": [[64, 64], [64, 64]]}, "config key sweeps[1].values: [[64, 64], [64, 64]] repeats"),
    ({"hparam": "M_q", "values": [5, -1]}, "config key sweeps[1].values: qsm: M_q=-1"),
    ({"hparam": "batch_size", "values": [64, 0]}, "config key sweeps[1].values: batch_size=0"),
    ({"name": "audit"}, "config key sweeps[1].name: 'audit' is taken"),
    ({"name": "mq_sweep"}, "config key sweeps[1].name: 'mq_sweep' is taken (used twice)"),
    ({"name": "Capacity"}, "Capacity"),  # the schema: lower-case names (they name files)
    ({"hparams": {"T": 0}}, "config key sweeps[1].values: qsm: T=0 is invalid"),
    ({"hparams": {"actor_hidden": [8]}}, "config key sweeps[1].hparams: 'actor_hidden' is the swept"),
    ({"hparams": {"alpha": 1.0}}, "config key sweeps[1].hparams: 'qsm' has no hyperparameter 'alpha'"),
])
def test_bad_sweep_fails_the_dry_run_naming_the_key(tmp_path, sweep, message):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["sweeps"][1].update(sweep)
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake("-n", "--configfile", str(tmp_path / "bad.yaml"), workdir=tmp_path)
    assert proc.returncode != 0
    assert message in proc.text, proc.text[-3000:]


def test_task_seeds_external_tasks_and_fixed_sweep_hyperparameters(tmp_path):
    """task_seeds gives one task other seeds (every algorithm and external baseline on it);
    external_tasks keeps an external baseline to some tasks; a sweep's hparams hold other
    hyperparameters fixed at every point, as a --set of the training command."""
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    cfg["task_seeds"] = {"toy_bimodal": [3], cfg["tasks"][0]: [0, 1, 2]}
    cfg["external_tasks"] = {"random": [cfg["tasks"][0]]}
    cfg["sweeps"] = [{"name": "steps_at_mild_scale", "algos": ["qsm"], "hparam": "T",
                      "values": [3], "hparams": {"M_q": 1}, "tasks": ["toy_bimodal"], "seeds": [0]}]
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(MANIFEST_TARGET, "--configfile", preset("smoke.yaml"), str(tmp_path / "cfg.yaml"),
                     "--cores", "1", workdir=tmp_path, check=True)
    runs = json.loads((tmp_path / MANIFEST_TARGET).read_text())["runs"]
    seeds = {}
    for r in runs:
        if r["role"] in ("benchmark", "audit"):
            seeds.setdefault((r["algo"], r["task"]), set()).add(r["seed"])
    assert seeds[("qsm", "toy_bimodal")] == {3}
    assert seeds[("random", cfg["tasks"][0])] == {0, 1, 2}
    assert {t for a, t in seeds if a == "random"} == {cfg["tasks"][0]}
    dry = snakemake("-n", "--configfile", preset("smoke.yaml"), str(tmp_path / "cfg.yaml"),
                    workdir=tmp_path, check=True).text
    assert re.search(r"steps_at_mild_scale: qsm on toy_bimodal, seeds 0: .*overrides .*M_q=1.0 T=3$",
                     dry, flags=re.M), dry[-3000:]


def test_sweep_runs_differ_only_in_their_value_and_reuse_the_default_runs(tmp_path):
    """A sweep's runs are ordinary runs: the M_q = 50 point is the audit run (same run id),
    the other values have their own run ids, and the manifest lists them under the sweep's
    name, with the sweep itself; the capacity point at smoke's own widths is the audit run."""
    snakemake(MANIFEST_TARGET, "--configfile", preset("smoke.yaml"), "--cores", "1",
              workdir=tmp_path, check=True)
    manifest = json.loads((tmp_path / MANIFEST_TARGET).read_text())
    runs = manifest["runs"]
    assert manifest["sweeps"] == {
        "mq_sweep": {"hparam": "M_q", "algos": ["qsm"], "values": [1, 50], "hparams": {},
                     "default": 50.0},
        "capacity": {"hparam": "actor_hidden", "algos": ["qsm"],
                     "values": [[32, 32], [64, 64]], "hparams": {}, "default": [512, 512]}}
    capacity = {r["run_id"] for r in runs if r["role"] == "capacity"}
    audit = {r["run_id"] for r in runs if r["role"] == "audit" and r["algo"] == "qsm"}
    assert len(capacity) == 2 and len(capacity & audit) == 1
    sweep = [r for r in runs if r["role"] == "mq_sweep"]
    assert {(r["task"], r["seed"]) for r in sweep} == {(t, s) for t in ("toy_bimodal", "cheetah_run")
                                                       for s in (0, 1)} and len(sweep) == 8
    others = {(r["algo"], r["task"], r["seed"]): r["run_id"] for r in runs
              if r["role"] in ("audit", "benchmark")}
    reused = [r for r in sweep if others[(r["algo"], r["task"], r["seed"])] == r["run_id"]]
    assert len(reused) == 4 and len({r["run_id"] for r in sweep}) == 4  # 2 tasks x 2 values


def test_lint_reports_nothing(tmp_path):
    proc = snakemake("--lint", "--configfile", preset("config.yaml"), workdir=tmp_path)
    assert "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# Tables that list runs by algorithm: an algorithm dropped from the configuration leaves them
RUN_TABLES = ["scores.csv", "run_status.csv", "aggregate.csv", "probability_of_improvement.csv",
              "iqm_curve.csv", "modes.csv", "modes_summary.csv", "bound_mass.csv", "kl.csv",
              "toy_optima.csv", "mq_sweep.csv", "capacity.csv", "step_profile.csv",
              "tsweep_profile.csv", "batch_profile.csv", "run_cost.csv", "cost_summary.csv",
              "diagnostics.csv"]
SMOKE_TRAIN_FLAGS = 20 + 2   # the train rule's jobs and random_policy's


def tree_digest(root: Path, pattern="**/*") -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.glob(pattern)) if p.is_file()}


def write_config(path: Path, **changes) -> str:
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    for dotted, value in changes.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def copy_suite(dest: Path) -> Path:
    """A copy of the suite that a test may edit (the checkout is never touched)."""
    dest.mkdir(parents=True)
    for part in ("Snakefile", "environment.yml", "environment-official.yml", "qsm", "baselines",
                 "analysis", "workflow", "config"):
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / part)
    # the published reference curves the rule references reads
    shutil.copytree(ROOT / "results" / "archive" / "references",
                    dest / "results" / "archive" / "references")
    return dest


@pytest.mark.slow
def test_smoke_pipeline_killed_then_rerun_then_changed(tmp_path):
    suite = copy_suite(tmp_path / "suite")
    work = tmp_path / "work"
    work.mkdir()
    smoke = ["--configfile", str(suite / "config" / "smoke.yaml"), "--cores", "2"]
    runs, tables = work / "results" / "runs", work / "results" / "tables"

    def sm(*args, **kw):
        return snakemake(*args, workdir=work, suite=suite, **kw)

    # 1. start the grid and SIGKILL Snakemake with all its jobs once some training is done
    proc = subprocess.Popen([*SNAKEMAKE, "-s", str(suite / "Snakefile"), "--directory", str(work),
                             *smoke], cwd=work, env=suite_env(suite), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len(list(runs.glob("*/*/*/block_*.done"))) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the smoke grid finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(runs.glob("*/*/*/block_*.done")))
    assert 2 <= done_before < SMOKE_TRAIN_FLAGS

    # 2. re-run: unlock (a killed Snakemake leaves its lock), then finish the grid
    sm(*smoke, "--unlock", check=True)
    sm(*smoke, "--rerun-incomplete", check=True, timeout=900)
    # exactly the catalogue's outputs (analysis/records/catalogue.py), each readable
    expected = set(catalogue.expected_files(preset_config("smoke.yaml")))
    written = {p.relative_to(work).as_posix() for d in (tables, work / "results" / "figures")
               for p in d.iterdir()}
    assert written == expected, (sorted(written - expected), sorted(expected - written))
    for name in expected:
        path = work / name
        if name.endswith(".csv"):
            pd.read_csv(path)
        elif name.endswith((".png", ".pdf")):
            assert path.stat().st_size > 1000, name
        else:
            assert path.stat().st_size > 0, name
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
    batch = pd.read_csv(tables / "batch_profile.csv")
    assert set(batch["algo"]) == {"sac"} and set(batch["batch_size"]) == {16, 64}
    assert (tables / "final_scores.md").read_text().startswith("# Final scores")
    # every run, of every role, finished and timed once (a run under two roles counts once)
    cost = pd.read_csv(tables / "run_cost.csv")
    assert cost["hours"].gt(0).all() and not cost.duplicated(["algo", "task", "seed", "run_id"]).any()
    cost_summary = pd.read_csv(tables / "cost_summary.csv")
    assert (cost_summary["finished"] == cost_summary["runs"]).all(), cost_summary
    assert not list((work / "results" / "checkpoints").rglob("*.pt")), "checkpoints left behind"
    # the findings, written from those tables, name the command, the budgets and the numbers
    from analysis.findings import interval, with_ci
    findings_md = (work / "results" / "findings.md").read_text()
    assert "`snakemake --cores all --configfile config/smoke.yaml`" in findings_md
    assert "## The audit (cheetah_run, reacher_hard at 300 steps; toy_bimodal at 200 steps)" \
        in findings_md
    assert "## Fidelity" not in findings_md  # smoke has no `fidelity:` section
    qsm_iqm = agg[(agg["metric"] == "iqm") & (agg["algo"] == "qsm")].iloc[0]
    # every aggregate metric of rliable, with the runs and tasks behind them
    cells = [interval(agg[(agg["metric"] == m) & (agg["algo"] == "qsm")].iloc[0])
             for m in ("iqm", "mean", "median", "optimality_gap")]
    assert (f"| qsm | {' | '.join(cells)} | {int(qsm_iqm['n_runs'])} | "
            f"{int(qsm_iqm['n_tasks'])} |") in findings_md
    mq = pd.read_csv(tables / "mq_sweep.csv")  # a sweep's row, with QSM's score-target scale
    row = mq[(mq["task"] == "toy_bimodal") & (mq["M_q"] == 50)
             & (mq["distribution"] == "policy")].iloc[0]
    assert row["score_target_rms"] > 0
    cells = [with_ci(row, c) for c in ("final_normalized", "interior_modes", "mass_any_bound",
                                       "optima_covered", "score_target_rms")]
    assert f"| toy_bimodal | 50 | policy | {int(row['n_seeds'])} | {' | '.join(cells)} |" \
        in findings_md
    assert "Nothing to be done" in sm(*smoke, "-n", check=True).text
    sm(*smoke, "--report", str(tmp_path / "report.html"), check=True)
    report_html = (tmp_path / "report.html").read_text()
    assert len(report_html) > 10_000
    # the front page (workflow/report/workflow.rst), rendered with this config's values
    for text in ("QSM reproducibility suite", "300 environment steps per run",
                 "do not reproduce the"):
        assert text in report_html, text
    first_tables = tree_digest(tables, "*.csv")
    first_runs = tree_digest(runs, "*/*/*/seed*/eval.csv")

    # 3. a budget change trains exactly the affected jobs (the audit's), beside the old runs
    longer = write_config(tmp_path / "longer.yaml", **{"audit.budget.steps": 250})
    changed = ["--configfile", longer, "--cores", "2"]
    plan = sm(*changed, "-n", check=True).text
    assert sorted(planned_training(plan)) == sorted(
        [("audit", a, "toy_bimodal") for a in ("qsm", "sac", "td3")]
        + [("mq_sweep", "qsm", "toy_bimodal"), ("capacity", "qsm", "toy_bimodal")])  # M_q 1; 32x32
    sm(*changed, check=True, timeout=900)
    assert first_runs.items() <= tree_digest(runs, "*/*/*/seed*/eval.csv").items()  # nothing lost
    status = pd.read_csv(tables / "run_status.csv", keep_default_na=False)
    old = status[status["status"] == "not in config"]
    assert len(old) == 5 * 2 and set(old["task"]) == {"toy_bimodal"}
    assert (status.loc[status["status"] != "not in config", "status"] == "complete").all()
    assert set(pd.read_csv(tables / "scores.csv").query("task == 'toy_bimodal'")["step"]) >= {250}

    # 4. switching back trains nothing and reproduces the first tables byte for byte
    plan = sm(*smoke, "-n", check=True).text
    assert planned_training(plan) == [] and "train" not in planned_jobs(plan)
    sm(*smoke, check=True)
    now = tree_digest(tables, "*.csv")
    assert {k: v for k, v in now.items() if k != "run_status.csv"} == \
        {k: v for k, v in first_tables.items() if k != "run_status.csv"}

    # 5. an algorithm removed from the config is gone from every table, listed as not in config
    no_td3 = write_config(tmp_path / "no_td3.yaml", algos=["qsm", "sac", "dql"],
                          **{"audit.algos": ["qsm", "sac"]})
    plan = sm("--configfile", no_td3, "-n", check=True).text
    assert planned_training(plan) == [] and "train" not in planned_jobs(plan)
    sm("--configfile", no_td3, "--cores", "2", check=True)
    for name in RUN_TABLES:
        df = pd.read_csv(tables / name, keep_default_na=False)
        if name == "run_status.csv":
            td3 = df[df["algo"] == "td3"]
            assert len(td3) == 2 * 2 + 2 * 2 and (td3["status"] == "not in config").all()  # 2 audit budgets
        else:
            assert not df.isin(["td3"]).any().any(), f"td3 still in {name}"

    # 6. editing an agent's source plans exactly that agent's jobs; editing analysis code plans
    #    only the analysis
    sac = suite / "baselines" / "sac.py"
    sac.write_text(sac.read_text().replace("alpha = self.log_alpha.exp()",
                                           "alpha = self.log_alpha.exp() * 1.0"))
    plan = sm(*smoke, "-n", check=True).text
    assert sorted(planned_training(plan)) == [("audit", "sac", "toy_bimodal"),
                                              ("batch_sweep", "sac", "cheetah_run"),
                                              ("batch_sweep", "sac", "cheetah_run"),
                                              ("benchmark", "sac", "cheetah_run"),
                                              ("benchmark", "sac", "reacher_hard")]
    assert "random_policy" not in planned_jobs(plan)
    sac.write_text((ROOT / "baselines" / "sac.py").read_text())
    agg = suite / "analysis" / "benchmark" / "aggregate.py"
    agg.write_text(agg.read_text() + "\nUNUSED = 1\n")
    jobs = planned_jobs(sm(*smoke, "-n", check=True).text)
    assert "train" not in jobs and "random_policy" not in jobs and jobs.get("aggregate") == 1, jobs


@pytest.mark.slow
def test_fidelity_preset_end_to_end_on_tiny_budgets(tmp_path):
    """config/fidelity.yaml, as in a checkout (extending config/config.yaml), at tiny budgets:
    qsm and the official learner train, and the fidelity rule reads the audit and the scores
    of both into its table, verdict and figure."""
    from analysis.training import fidelity
    checkout = official_or_skip()
    cfg = yaml.safe_load((ROOT / "config" / "fidelity.yaml").read_text())
    cfg.update(seeds=[0, 1], seed_block=2, checkpoint_every=100,
               probes={"states": 2, "samples": 50}, stats={**cfg["stats"], "reps": 100})
    cfg["budget"].update(steps=240, start_steps=160, eval_every=120, eval_episodes=1,
                         batch_size=32)
    cfg["official"]["path"] = str(checkout)
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    (tmp_path / "fidelity.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake("--cores", "2", "--configfile", str(tmp_path / "fidelity.yaml"),
                     workdir=tmp_path, timeout=1200)
    assert proc.returncode == 0, proc.text[-4000:]
    table = pd.read_csv(tmp_path / "results" / "tables" / "fidelity.csv")
    verdict = table.loc[table["quantity"] == "verdict", "inside_band"].iloc[0]
    assert verdict in fidelity.VERDICTS
    assert set(table.loc[table["quantity"] == "iqm", "algo"]) == {"qsm", "qsm_official"}
    audit = table[table["quantity"].str.startswith("audit ")]
    assert set(audit["algo"]) == {"qsm", "qsm_official"}
    assert len(audit) == 2 * 2 * len(fidelity.AUDIT_MEASURES)
    assert f"**Verdict: {verdict}.**" in (tmp_path / "results" / "tables" / "fidelity.md").read_text()
    assert (tmp_path / "results" / "figures" / "fidelity.png").stat().st_size > 0
    # two seeds each: the findings carry the verdict and the seed-count planner, whose answer is
    # the one its own table (seed_plan.csv) gives at the preset's margin
    from analysis.estimators import bootstrap
    findings_md = (tmp_path / "results" / "findings.md").read_text()
    assert f"**Verdict: {verdict}**" in findings_md
    plan = pd.read_csv(tmp_path / "results" / "tables" / "seed_plan.csv")
    fidelity_plan = plan[plan["plan"] == "fidelity"]
    assert list(fidelity_plan["n_seeds"]) == list(bootstrap.PLANNER_SEEDS)
    assert set(fidelity_plan["observed_seeds"]) == {"2 / 2"}  # one task, two seeds a side
    band = table.loc[table["quantity"] == "iqm_difference", "band_high"].iloc[0]
    assert ((fidelity_plan["margin"] - band).abs() < 1e-12).all()
    needed = bootstrap.seeds_needed(fidelity_plan)
    assert (f"**about {needed} seeds per task and implementation**" if needed else
            f"**more than {max(bootstrap.PLANNER_SEEDS)} seeds**") in findings_md
    assert f"| {plan['n_seeds'].iloc[0]} | " in findings_md.split("Seed-count planner")[1]
    runs = json.loads((tmp_path / "results" / "tables" / "run_manifest.json").read_text())["runs"]
    assert {(r["algo"], r["role"]) for r in runs} == {("qsm", "benchmark"), ("qsm_official", "benchmark")}


def test_study_preset_reads_its_runs_from_the_archive_and_trains_nothing(tmp_path):
    """The study's re-analysis, as a user runs it in a checkout: every archived run is read from
    results/archive/study under the identity it recorded, nothing is trained, the tables'
    provenance names the archive and the commit that trained it, and the findings written from
    the tables are the committed docs/findings.md, byte for byte, and the README states the
    core-hours of the cost table."""
    archived = json.loads((ROOT / "results/archive/study/MANIFEST.json").read_text())["runs"]
    (tmp_path / "config").mkdir()  # as in a checkout: the preset extends config/config.yaml
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    target = "results/tables/diagnostics.csv"
    proc = snakemake("--cores", "2", "--configfile", preset("study.yaml"),
                     workdir=tmp_path, check=True, timeout=1200)
    assert not re.search(r"^rule (train|official_baseline|random_policy):", proc.text, re.M)
    assert f"{len({(r['algo'], r['task'], r['seed'], r['run_id']) for r in archived})} of the" \
           in proc.text
    manifest = json.loads((tmp_path / MANIFEST_TARGET).read_text())
    by_key = {(e["algo"], e["task"], e["seed"], e["run_id"]): e for e in manifest["runs"]}
    for record in archived:
        entry = by_key[(record["algo"], record["task"], record["seed"], record["run_id"])]
        assert entry["code_version"] == record["code_version"]
        assert (tmp_path / entry["path"]).resolve() == (ROOT / "results/archive/study"
                                                        / record["path"]).resolve()
    assert manifest["archive"] == {"path": "results/archive/study",
                                   "commits": sorted({r["git_commit"] for r in archived
                                                      if r["git_commit"]})}
    sidecar = json.loads((tmp_path / (target + ".provenance.json")).read_text())
    assert sidecar["archive"] == manifest["archive"]
    assert "from results/archive/study (trained at " in sidecar["footer"]
    table = pd.read_csv(tmp_path / target)  # the runs of the benchmark and audit roles
    read = {r["run_id"] for r in archived if {"benchmark", "audit"} & set(r["roles"])}
    assert set(table.loc[table["status"] == "complete", "run_id"]) == read
    written = (tmp_path / "docs" / "findings.md").read_text()
    assert written == (ROOT / "docs" / "findings.md").read_text(), (
        "docs/findings.md is not what the study's tables give: regenerate it with "
        "`snakemake --cores all --configfile config/study.yaml` and commit it")
    # The README's statement of the study's cost is the cost table's, not a copied number.
    cost = pd.read_csv(tmp_path / "results" / "tables" / "cost_summary.csv")
    stated = re.search(r"\*\*([\d.]+) core-hours\*\* over (\d+) of its (\d+) runs",
                       (ROOT / "README.md").read_text())
    assert stated, "README.md should state the study's cost: **H core-hours** over N of its T runs"
    assert stated.groups() == (f"{cost['hours_measured'].sum():.1f}", str(cost["finished"].sum()),
                               str(cost["runs"].sum())), (
        "README.md's core-hours of the study are not results/tables/cost_summary.csv's: update it")
