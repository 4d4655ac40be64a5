"""The pipeline's plan (workflow/plan.py), called directly, without a Snakemake process: the job
list of a configuration, run identities, the configuration's checks, the archive lookup, the run
manifest and the training command lines. Seconds."""
from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from analysis.records.manifest import ENTRY_KEYS, OPTIONAL_ENTRY_KEYS, load_manifest
from conftest import ROOT, python_env
from qsm.contract.identity import configuration_id, run_identity
from qsm.declare.catalog import agent_catalog
from workflow.plan import (MANIFEST, OFFICIAL_CLONE, ConfigError, Plan, UnknownJob, describe,
                           seed_blocks)

RANDOM = str(ROOT / "workflow" / "scripts" / "random_policy.py")
REGISTERED = ", ".join(sorted(agent_catalog()))
BUDGET = {"steps": 300, "start_steps": 200, "eval_every": 150, "eval_episodes": 1,
          "batch_size": 32, "replay_capacity": 1000}


def small_config(**changes) -> dict:
    """A small configuration as Snakemake holds it (every key the schema would default, given)."""
    cfg = {
        "algos": ["qsm", "sac"], "external_baselines": ["random"],
        "tasks": ["cheetah_run", "reacher_hard"], "seeds": [0, 1, 2], "seed_block": 2,
        "device": "cpu", "budget": dict(BUDGET),
        "hparams": {"qsm": {"all": {"actor_hidden": [64, 64]}}},
        "probes": {"states": 2, "samples": 50}, "checkpoint_every": 100,
        "resources": {"train": {"threads": 2, "gpu": 0, "mem_mb": 2000, "runtime": 10}},
        "audit": {"tasks": ["toy_bimodal"], "algos": ["qsm", "sac"], "seeds": [0, 1],
                  "budget": {**BUDGET, "steps": 200, "start_steps": 100},
                  "histogram_states": 1},
        "sweeps": [
            # M_q = 50 is QSM's default: that point is the audit run
            {"name": "mq_sweep", "algos": ["qsm"], "hparam": "M_q", "values": [1, 50],
             "tasks": ["toy_bimodal"], "seeds": [0, 1]},
            # T at a fixed M_q
            {"name": "steps_at_mild_scale", "algos": ["qsm"], "hparam": "T", "values": [3, 7],
             "hparams": {"M_q": 1}, "tasks": ["toy_bimodal"], "seeds": [0]},
            # a budget field
            {"name": "batches", "algos": ["sac"], "hparam": "batch_size", "values": [16, 64],
             "tasks": ["cheetah_run"], "seeds": [0]},
        ],
        "stats": {"reps": 100, "seed": 0, "reference": "qsm"},
        "profile": {"tsweep": {"algos": ["qsm"], "task": "cheetah_run", "Ts": [1, 5],
                               "seeds": [0], "steps": 30, "start_steps": 20},
                    "batch_sweep": {"algos": ["sac"], "task": "cheetah_run", "sizes": [16, 64],
                                    "seeds": [0], "steps": 30, "start_steps": 20}},
    }
    for dotted, value in changes.items():
        node, (*parents, leaf) = cfg, dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return cfg


def make_plan(cfg=None, repo=ROOT, **changes) -> Plan:
    plan = Plan(cfg if cfg is not None else small_config(**changes), repo)
    plan.external_programs["random"] = RANDOM  # what external.smk registers
    return plan


@pytest.fixture(scope="module")
def plan():
    return make_plan()


def jobs_of(plan, role, algo=None, task=None):
    return [j for j in plan.all_jobs() if j.role == role and algo in (None, j.algo)
            and task in (None, j.task)]


# -- the job list ------------------------------------------------------------------------------


def test_jobs_per_role(plan):
    roles = Counter(j.role for j in plan.all_jobs())
    assert roles == {
        # agents: 2 algos x 2 tasks x blocks (0 1)(2); random: 2 tasks x 2 blocks
        "benchmark": 2 * 2 * 2 + 2 * 2,
        "audit": 2 * 1,                       # 2 algos x toy_bimodal x one block (0 1)
        "mq_sweep": 2, "steps_at_mild_scale": 2, "batches": 2,
        "tsweep": 2, "batch_sweep": 2}
    assert plan.all_jobs() is plan.all_jobs()  # listed once


def test_seed_blocks_task_seeds_and_external_tasks():
    assert seed_blocks([0, 1, 2, 3, 4], 2) == [(0, 1), (2, 3), (4,)]
    plan = make_plan(task_seeds={"reacher_hard": [5, 6, 7], "toy_bimodal": [3]},
                     external_tasks={"random": ["reacher_hard"]})
    blocks = {(j.role, j.algo, j.task): set() for j in plan.all_jobs()}
    for j in plan.all_jobs():
        blocks[(j.role, j.algo, j.task)].add(j.seeds)
    assert blocks[("benchmark", "qsm", "cheetah_run")] == {(0, 1), (2,)}
    assert blocks[("benchmark", "sac", "reacher_hard")] == {(5, 6), (7,)}
    assert blocks[("audit", "qsm", "toy_bimodal")] == {(3,)}
    # task_seeds applies to external baselines too; external_tasks keeps them to some tasks
    assert {t for (r, a, t) in blocks if a == "random"} == {"reacher_hard"}
    assert blocks[("benchmark", "random", "reacher_hard")] == {(5, 6), (7,)}
    # a sweep's seeds are its own
    assert blocks[("mq_sweep", "qsm", "toy_bimodal")] == {(0, 1)}


def test_sweeps_fixed_hyperparameters_and_budget_fields(plan):
    mild = jobs_of(plan, "steps_at_mild_scale")
    assert [j.overrides for j in mild] == [{"actor_hidden": [64, 64], "M_q": 1.0, "T": 3},
                                           {"actor_hidden": [64, 64], "M_q": 1.0, "T": 7}]
    assert describe(mild[0]).endswith("overrides actor_hidden=[64, 64] M_q=1.0 T=3")
    assert plan.train_args(mild[0]).endswith(
        "--set actor_hidden=[64,64] --set M_q=1.0 --set T=3")
    assert len({j.run_id for j in mild}) == 2
    batches = jobs_of(plan, "batches")
    assert [j.budget["batch_size"] for j in batches] == [16, 64]
    assert all(j.budget["steps"] == BUDGET["steps"] for j in batches)  # cheetah_run: budget
    assert [j.overrides for j in jobs_of(plan, "mq_sweep")] == [
        {"actor_hidden": [64, 64], "M_q": 1.0}, {"actor_hidden": [64, 64], "M_q": 50.0}]
    # the cost sweeps: only T or the batch size changes, at one evaluation episode
    assert [j.overrides for j in jobs_of(plan, "tsweep")] == [{"T": 1}, {"T": 5}]
    assert [j.budget["batch_size"] for j in jobs_of(plan, "batch_sweep")] == [16, 64]
    assert all(j.budget["eval_episodes"] == 1 for j in jobs_of(plan, "tsweep"))


def test_a_sweep_point_equal_to_an_audit_run_is_that_run(plan):
    audit = jobs_of(plan, "audit", "qsm", "toy_bimodal")[0]
    other, at_default = jobs_of(plan, "mq_sweep")  # M_q = 1, 50
    assert at_default.run_id == audit.run_id and at_default.flag == audit.flag
    assert other.run_id != audit.run_id
    # listed under both roles in the manifest, one flag file in the flags of both roles
    runs = plan.run_manifest()["runs"]
    assert {r["role"] for r in runs if r["run_id"] == audit.run_id} == {"audit", "mq_sweep"}
    assert plan.flags("audit", "mq_sweep").count(audit.flag) == 1
    assert plan.run_manifest()["sweeps"]["mq_sweep"] == {
        "hparam": "M_q", "algos": ["qsm"], "values": [1, 50], "hparams": {}, "default": 50.0}
    assert plan.run_manifest()["sweeps"]["batches"]["default"] is None  # a budget field


# -- run identities ----------------------------------------------------------------------------


def run_ids(plan) -> dict:
    return {(j.role, j.algo, j.task, j.seeds, json.dumps(j.overrides), j.budget["batch_size"]):
            j.run_id for j in plan.all_jobs()}


def test_identities_are_stable(plan):
    again = make_plan()
    assert run_ids(again) == run_ids(plan)
    job = jobs_of(plan, "benchmark", "sac", "cheetah_run")[0]
    assert job.identity == run_identity("sac", "cheetah_run", job.identity["hparams"],
                                        job.budget, job.identity["code_version"],
                                        job.identity["versions"])
    # seeds are not part of a run's identity: the blocks of one configuration share it
    assert len({j.run_id for j in jobs_of(plan, "benchmark", "sac", "cheetah_run")}) == 1


def test_identities_follow_hyperparameters_and_budget(plan):
    before = run_ids(plan)
    tuned = make_plan(hparams={"qsm": {"all": {"actor_hidden": [64, 64]}},
                               "sac": {"cheetah_run": {"gamma": 0.9}}})
    changed = {k[:3] for k, v in run_ids(tuned).items() if before.get(k) != v}
    # a sweep's runs take the configuration's other hyperparameters of their task
    assert changed == {("benchmark", "sac", "cheetah_run"), ("batches", "sac", "cheetah_run")}
    longer = make_plan(**{"budget.steps": 400})
    changed = {k[:3] for k, v in run_ids(longer).items() if before.get(k) != v}
    # every job at the benchmark budget, the sweep on a benchmark task and the external
    # baseline; not the audit, nor the cost sweeps (their budgets are their own)
    assert {role for role, _, _ in changed} == {"benchmark", "batches"}
    assert ("benchmark", "random", "cheetah_run") in changed
    probes = make_plan(**{"probes.samples": 60})
    assert not set(run_ids(probes).values()) & {
        v for k, v in before.items() if k[0] not in ("tsweep", "batch_sweep")}


def test_job_for_and_describe(plan):
    job = jobs_of(plan, "benchmark", "qsm", "reacher_hard")[1]
    assert plan.job_for("qsm", "reacher_hard", job.run_id, "2") is job
    assert plan.job_for("qsm", "reacher_hard", job.run_id, (2,)) is job
    with pytest.raises(UnknownJob, match=f"no job of this configuration trains "
                                         f"qsm/reacher_hard/{job.run_id} seeds 0_1_2"):
        plan.job_for("qsm", "reacher_hard", job.run_id, "0_1_2")
    assert describe(job) == (f"benchmark: qsm on reacher_hard, seeds 2: run {job.run_id} = code "
                             f"{job.identity['code_version']}, 300 steps (200 random), "
                             f"overrides actor_hidden=[64, 64]")


# -- command lines -----------------------------------------------------------------------------


def test_training_and_external_command_arguments():
    plan = make_plan(checkpoint_every=50, keep_checkpoints=True, tensorboard="tb",
                     **{"resources.train.env_workers": 1})
    job = jobs_of(plan, "benchmark", "sac", "cheetah_run")[0]
    ckpt = (f"--checkpoint-every 50 --checkpoint-dir "
            f"results/checkpoints/sac/cheetah_run/{job.run_id} ")
    assert plan.train_args(job) == (
        f"--algo sac --task cheetah_run --seeds 0 1 --run-id {job.run_id} --steps 300 "
        f"--start-steps 200 --eval-every 150 --eval-episodes 1 --batch-size 32 "
        f"--replay-capacity 1000 --probe-states 2 --probe-samples 50 --log-every 1 "
        f"--tensorboard tb --device cpu --env-workers 1 {ckpt}--keep-checkpoint ")
    assert plan.torch_threads(2) == 1 and plan.torch_threads(1) == 1
    random = jobs_of(plan, "benchmark", "random", "cheetah_run")[0]
    protocol = (f"--task cheetah_run --seeds 0 1 --run-id {random.run_id} --code-version "
                f"{random.identity['code_version']} --steps 300 --eval-every 150 "
                f"--eval-episodes 1 --probe-states 2 --probe-samples 50 "
                f"--out results/runs/random/cheetah_run/{random.run_id}")
    assert plan.external_args(random) == protocol
    assert plan.external_args(random, learner=True) == (
        f"{protocol} --start-steps 200 --batch-size 32 --replay-capacity 1000 --log-every 1 "
        f"--tensorboard tb --checkpoint-every 50 --checkpoint-dir "
        f"results/checkpoints/random/cheetah_run/{random.run_id} --keep-checkpoint ")


def test_official_checkout(tmp_path):
    assert make_plan().official_checkout() == OFFICIAL_CLONE
    (tmp_path / "official").mkdir()
    plan = make_plan(repo=tmp_path, official={"path": "official"})
    assert plan.official_checkout() == str(tmp_path / "official")
    assert plan.official["commit"] == make_plan().official["commit"]  # defaults kept


# -- the configuration's checks ----------------------------------------------------------------


def mild_sweep(**changes):
    return [{**small_config()["sweeps"][1], **changes}]


BAD = [
    ({"stats": {"reps": 10, "seed": 0, "reference": "qsm", "tasks": ["walker_run"]}},
     "stats.tasks", "'walker_run' is not a benchmark task (tasks: cheetah_run, reacher_hard)"),
    ({"algos": ["qsm", "foo"]}, "algos",
     f"unknown algorithm 'foo'; registered: {REGISTERED} (external programs go under "
     f"external_baselines)"),
    ({"audit.algos": ["bar"]}, "audit.algos",
     f"unknown algorithm 'bar'; registered: {REGISTERED} (external programs go under "
     f"external_baselines)"),
    ({"profile.tsweep.algos": ["baz"]}, "profile.tsweep.algos", "unknown algorithm 'baz'; ..."),
    ({"profile.batch_sweep.algos": ["baz"]}, "profile.batch_sweep.algos",
     "unknown algorithm 'baz'; ..."),
    ({"external_baselines": ["qsm"]}, "external_baselines",
     "'qsm' is a registered agent; list it under algos instead"),
    ({"tasks": ["cheetah_runn"]}, "tasks",
     "unknown task 'cheetah_runn'. Did you mean: cheetah_run? ..."),
    ({"audit.tasks": ["toy_nope"]}, "audit.tasks", "unknown task 'toy_nope'..."),
    ({"profile.tsweep.task": "walker_runn"}, "profile.tsweep.task",
     "unknown task 'walker_runn'..."),
    ({"audit.tasks": ["toy_bimodal", "cheetah_run"]}, "audit.tasks",
     "['cheetah_run'] are also benchmark tasks (key tasks); the audit already covers every "
     "benchmark run, so list them once"),
    ({"resources.train.env_workers": 2}, "resources.train.env_workers",
     "2 workers leave none of the job's 2 threads for torch; env_workers must be below "
     "resources.train.threads"),
    ({"resources.train.gpu": 1, "device": "cuda:1"}, "device",
     "'cuda:1' with resources.train.gpu 1: each training job sees only the GPU it is given, as "
     "cuda:0; use cuda or auto (docs/gpus.md)"),
    ({"stats.reference": "td3"}, "stats.reference", "'td3' is not in algos ['qsm', 'sac']"),
    ({"hparams": {"foo": {"all": {"T": 3}}}}, "hparams.foo",
     f"unknown algorithm 'foo'; registered: {REGISTERED}"),
    ({"hparams": {"sac": {"walker_runn": {"tau": 0.1}}}}, "hparams.sac.walker_runn",
     "'walker_runn' is neither 'all' nor a task of this configuration (cheetah_run, "
     "reacher_hard, toy_bimodal)"),
    ({"hparams": {"qsm": {"all": {"T": 0}}}}, "hparams.qsm.all.T",
     "qsm: T=0 is invalid: T must be an integer >= 1"),
    ({"algos": ["qsm", "dql"], "hparams": {"dql": {"all": {"beta_min": 5.0, "beta_max": 4.0}}}},
     "hparams.dql", "for task cheetah_run: dql: beta_min=5.0 and beta_max=4.0 are invalid "
                    "together: beta_min must be <= beta_max"),
    ({"task_seeds": {"walker_runn": [0]}}, "task_seeds.walker_runn",
     "'walker_runn' is not a task of this configuration (tasks or audit.tasks: cheetah_run, "
     "reacher_hard, toy_bimodal)"),
    ({"external_tasks": {"official": ["cheetah_run"]}}, "external_tasks.official",
     "'official' is not in external_baselines ['random']"),
    ({"external_tasks": {"random": ["toy_bimodal"]}}, "external_tasks.random",
     "'toy_bimodal' is not a benchmark task (tasks: cheetah_run, reacher_hard)"),
    ({"sweeps": mild_sweep(name="audit")}, "sweeps[0].name",
     "'audit' is taken (a role of the pipeline); choose another name"),
    ({"sweeps": mild_sweep() * 2}, "sweeps[1].name",
     "'steps_at_mild_scale' is taken (used twice); choose another name"),
    ({"sweeps": mild_sweep(algos=["foo"])}, "sweeps[0].algos",
     f"unknown algorithm 'foo'; registered: {REGISTERED}"),
    ({"sweeps": mild_sweep(hparam="width")}, "sweeps[0].hparam",
     "'qsm' has no hyperparameter 'width'; its hyperparameters: ..."),
    ({"sweeps": mild_sweep(tasks=["cheetah_runn"])}, "sweeps[0].tasks",
     "unknown task 'cheetah_runn'..."),
    ({"sweeps": mild_sweep(hparams={"T": 2})}, "sweeps[0].hparams",
     "'T' is the swept hyperparameter; give its values under values"),
    ({"sweeps": mild_sweep(hparams={"alpha": 1.0})}, "sweeps[0].hparams",
     "'qsm' has no hyperparameter 'alpha'; its hyperparameters: ..."),
    ({"sweeps": mild_sweep(values=[3, 3])}, "sweeps[0].values", "[3, 3] repeats a value"),
    ({"sweeps": mild_sweep(values=[3, 0])}, "sweeps[0].values",
     "qsm: T=0 is invalid: T must be an integer >= 1"),
    ({"sweeps": mild_sweep(hparam="batch_size", values=[64, 1.5], hparams={})},
     "sweeps[0].values", "batch_size=1.5: this budget field takes an integer >= 1"),
    ({"sweeps": mild_sweep(hparam="start_steps", values=[0, -1], hparams={})},
     "sweeps[0].values", "start_steps=-1: this budget field takes an integer >= 0"),
]


@pytest.mark.parametrize("changes,key,message", BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_each_check_names_the_key(changes, key, message):
    with pytest.raises(ConfigError) as caught:
        make_plan(**copy.deepcopy(changes))
    error = caught.value
    assert error.key == key
    assert str(error) == f"config key {key}: {error.message}"
    if message.endswith("..."):  # the rest lists names or suggestions
        assert error.message.startswith(message[:-3]), error.message
    else:
        assert error.message == message


def test_an_external_baseline_needs_a_registered_program():
    plan = Plan(small_config(), ROOT)  # nothing registered
    assert len(plan.train_jobs) == 20  # the agents' jobs are listed when the plan is built
    with pytest.raises(ConfigError, match=r"^config key external_baselines: no Snakemake file "
                                          r"registers a program for 'random'; known: none "
                                          r"\(see docs/adding_a_baseline.md\)$"):
        plan.all_jobs()


# -- the archive -------------------------------------------------------------------------------


def fake_archive(repo, records):
    (repo / "arch").mkdir(parents=True)
    (repo / "arch" / "MANIFEST.json").write_text(json.dumps({"name": "arch", "runs": records}))


def record_of(job, seed, code="0ldc0de0ld00", commit="c0ffee", versions="same"):
    versions = job.identity.get("versions") if versions == "same" else versions
    ident = run_identity(job.algo, job.task, job.identity["hparams"], job.budget, code, versions)
    record = {"algo": job.algo, "task": job.task, "seed": seed, "run_id": ident["run_id"],
              "code_version": code,
              "path": f"runs/{job.algo}/{job.task}/{ident['run_id']}/seed{seed}"}
    if versions is not None:
        record["versions"] = versions
    if commit:
        record["git_commit"] = commit
    return record


def test_archive_lookup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    live = make_plan()
    sac = jobs_of(live, "benchmark", "sac", "cheetah_run")[0]
    rand = jobs_of(live, "benchmark", "random", "reacher_hard")[0]
    other = jobs_of(live, "benchmark", "qsm", "cheetah_run")[0]
    wrong = {**record_of(other, 0), "run_id": "000000000000"}  # another configuration's run
    fake_archive(tmp_path, [record_of(sac, 0), record_of(sac, 1, code="0ldc0de0ld01", commit="b0b"),
                            record_of(rand, 0, commit=None, versions=None), wrong])
    plan = make_plan(repo=tmp_path, archive="arch")
    assert plan.archive == "arch" and plan.archive_dir() == "arch"
    assert plan.flags("benchmark", "audit") == []  # nothing is trained
    job = plan.job_for("sac", "cheetah_run", sac.run_id, "0_1")
    assert plan.archived_run(job, 0)["code_version"] == "0ldc0de0ld00"
    assert plan.archived_run(jobs_of(plan, "benchmark", "qsm", "cheetah_run")[0], 0) is None
    manifest = plan.run_manifest()
    by_key = {(r["algo"], r["task"], r["seed"], r["role"]): r for r in manifest["runs"]}
    first = by_key[("sac", "cheetah_run", 0, "benchmark")]
    assert first["code_version"] == "0ldc0de0ld00" and first["run_id"] != sac.run_id
    # seeds trained by different code keep their run ids and share their configuration
    second = by_key[("sac", "cheetah_run", 1, "benchmark")]
    assert second["run_id"] not in (first["run_id"], sac.run_id)
    assert first["config_id"] == second["config_id"] == configuration_id(sac.identity)
    assert first["path"] == f"arch/runs/sac/cheetah_run/{first['run_id']}/seed0"
    assert by_key[("random", "reacher_hard", 0, "benchmark")]["path"].startswith("arch/")
    unarchived = by_key[("qsm", "cheetah_run", 0, "benchmark")]
    assert unarchived["path"] == f"results/runs/qsm/cheetah_run/{other.run_id}/seed0"
    assert manifest["archive"] == {"path": "arch", "commits": ["b0b", "c0ffee"]}
    total = len({r["path"] for r in manifest["runs"]})  # a sweep point may be an audit run
    assert plan.archive_summary(manifest) == (
        f"archive arch: 3 of the {total} runs this configuration asks for are archived; the "
        f"other {total - 3} are reported missing (to train them: --config retrain=true)")
    # retrain=true: the archive is not read
    again = make_plan(repo=tmp_path, archive="arch", retrain=True)
    assert again.archive is None and "archive" not in again.run_manifest()
    assert again.archive_summary(again.run_manifest()) is None
    assert again.run_manifest()["runs"] == live.run_manifest()["runs"]


def test_archive_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = make_plan(repo=tmp_path, archive="nowhere")
    with pytest.raises(ConfigError, match=r"^config key archive: nowhere holds no MANIFEST.json "
                                          r"\(python -m analysis.records.archive add writes one\); "
                                          r"to train instead, add --config retrain=true$"):
        plan.run_manifest()
    sac = jobs_of(plan, "benchmark", "sac", "cheetah_run")[0]
    fake_archive(tmp_path, [record_of(sac, 0), record_of(sac, 0, code="0ldc0de0ld01")])
    with pytest.raises(ConfigError, match=r"^config key archive: arch: sac on cheetah_run seed 0 "
                                          r"of one configuration is archived 2 times"):
        make_plan(repo=tmp_path, archive="arch").run_manifest()


# -- the run manifest --------------------------------------------------------------------------


def test_manifest_keys_and_writer(plan, tmp_path):
    manifest = plan.run_manifest()
    assert list(manifest) == ["config_hash", "runs_root", "runs", "sweeps"]
    assert manifest["runs_root"] == "results/runs"
    assert MANIFEST == "results/tables/run_manifest.json"
    assert all(list(r) == [*ENTRY_KEYS, *OPTIONAL_ENTRY_KEYS] for r in manifest["runs"])
    # one entry per seed of every job, in job order
    assert len(manifest["runs"]) == sum(len(j.seeds) for j in plan.all_jobs())
    job = plan.all_jobs()[0]
    assert manifest["runs"][0] == {"algo": job.algo, "task": job.task, "seed": job.seeds[0],
                                   "role": job.role, "run_id": job.run_id,
                                   "code_version": job.identity["code_version"],
                                   "path": f"{job.run_dir}/seed{job.seeds[0]}",
                                   "config_id": configuration_id(job.identity)}
    # one configuration per job, whatever its seeds; the sweep's values are others
    ids = {r["config_id"] for r in manifest["runs"] if r["run_id"] == job.run_id}
    assert len(ids) == 1
    points = {r["config_id"] for r in manifest["runs"] if r["role"] == "mq_sweep"}
    assert len(points) == len({r["run_id"] for r in manifest["runs"] if r["role"] == "mq_sweep"}) > 1
    assert manifest["config_hash"] == make_plan().run_manifest()["config_hash"]
    assert manifest["config_hash"] != make_plan(**{"stats.reps": 200}).run_manifest()["config_hash"]
    written = plan.write_manifest(tmp_path / "run_manifest.json")
    read = load_manifest(tmp_path / "run_manifest.json")
    assert written is manifest and len(read.runs) == len(manifest["runs"])
    assert set(read.sweeps) == {"mq_sweep", "steps_at_mild_scale", "batches"}


def test_the_smoke_preset_as_snakemake_holds_it():
    """config.yaml extended by smoke.yaml and validated (schema defaults set), as the pipeline
    reads it: the jobs of the dry-run test (tests/test_pipeline.py), without Snakemake."""
    from snakemake.utils import update_config, validate
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text()))
    validate(cfg, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    plan = make_plan(cfg)
    flags = {j.flag for j in plan.all_jobs()}
    assert len({f for f in flags if "/random/" not in f}) == 20
    assert len({f for f in flags if "/random/" in f}) == 2


def test_the_plan_imports_no_torch_and_enters_no_code_version():
    code = ("import sys\n"
            "from workflow.plan import Plan\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'dm_control', 'mujoco', 'snakemake'))\n"
            "print(heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=python_env(), cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    from qsm.contract import identity
    assert "workflow" not in identity.PACKAGES and identity._suite_module("workflow.plan") is None
    for pkg in identity.PACKAGES:  # no module of the suite imports the planner
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                assert not any(n.split(".")[0] == "workflow" for n in names), path
    assert os.path.isfile(ROOT / "workflow" / "__init__.py")
