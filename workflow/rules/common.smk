"""Shared definitions of the pipeline: output locations, every training job the configuration asks
for (with its run identity), the run manifest, and the checks of the configuration that a JSON
schema cannot express.

Building the DAG imports nothing heavy (no torch, no dm_control): agents, their hyperparameters
and valid ranges come from their torch-free declaration modules (qsm.catalog), task names from a
static list (qsm.envs), code versions are hashes of source files (qsm.identity).

Run identity (qsm/identity.py): every training job writes its seeds to
results/runs/{algo}/{task}/{run_id}/seed{k}, where run_id hashes the algorithm, task, resolved
hyperparameters, budget and code version. A changed budget, hyperparameter or agent source gives
new run_ids, so exactly those jobs run, beside the old runs; switching back finds the old ones.
"""
import functools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from snakemake.exceptions import WorkflowError

REPO = Path(workflow.current_basedir).parent.parent
sys.path.insert(0, str(REPO))
from qsm.catalog import agent_catalog  # noqa: E402
from qsm.envs import TaskError, validate_task  # noqa: E402
from qsm.hparams import HparamError, identity_values  # noqa: E402
from qsm.budget import LEARNING_KEYS, PROTOCOL_KEYS, SWEEPABLE as SWEEPABLE_BUDGET, Budget  # noqa: E402
from qsm.identity import (ENVIRONMENT_PACKAGES, OFFICIAL_PACKAGES, TRAINER_PACKAGES,  # noqa: E402
                          code_version, hash_of, package_versions, run_identity,
                          training_code_version)
from analysis.archive import ArchiveError, find_run, index_by_run  # noqa: E402
from analysis.provenance import SIDECAR_SUFFIX, footer_of_manifest, sidecar_path  # noqa: E402

RUNS = "results/runs"
TABLES = "results/tables"
FIGURES = "results/figures"
LOGS = "results/logs"
CHECKPOINTS = "results/checkpoints"  # not a declared output: survives failed jobs
MANIFEST = f"{TABLES}/run_manifest.json"

CATALOG = agent_catalog()
TSWEEP = config["profile"]["tsweep"]
# The cost of an update against the replay batch size (optional): like the T sweep, cost only.
BATCH_SWEEP = {"algos": [], "task": TSWEEP["task"], "sizes": [], "seeds": [0], "steps": 1,
               "start_steps": 0, **(config["profile"].get("batch_sweep") or {})}
# Ablations (config `sweeps`): ordinary runs at each value of one hyperparameter or budget
# field; a sweep's runs have its name as their role in the run manifest.
SWEEPS = config.get("sweeps") or []
# Roles the pipeline gives its own runs: a sweep may not take one of these names.
FIXED_ROLES = ("benchmark", "audit", "tsweep", "batch_sweep")
TRAIN_RES = config["resources"]["train"]
EXTERNAL = config.get("external_baselines", [])
# The benchmark tasks an external baseline runs on, where not all of `tasks` (config external_tasks)
EXTERNAL_TASKS = config.get("external_tasks") or {}
# Seeds of a benchmark or audit task that differ from its list's `seeds` (config task_seeds)
TASK_SEEDS = config.get("task_seeds") or {}
# External programs that write the run-directory contract, by baseline name: their source (and
# the suite modules they import) is their code version. external.smk registers its rules' programs.
EXTERNAL_PROGRAMS = {}
# Where a program runs foreign code, the extra identity of that code (e.g. the official
# implementation's pinned commit), by baseline name; part of the runs' code version.
EXTERNAL_CODE = {}
# The packages whose versions are part of a program's run identity, by baseline name (default
# qsm.identity.ENVIRONMENT_PACKAGES: numpy, dm_control, mujoco).
EXTERNAL_PACKAGES = {}


# The authors' implementation for the *_official external baselines (external.smk): a local
# checkout (config official.path, relative to the suite's checkout) or a clone at the pinned commit.
OFFICIAL = {"path": None, "repo": "https://github.com/Alescontrela/score_matching_rl",
            "commit": "2e77893f7f55fa4f124432b4cc78c02573c02c34", **config.get("official", {})}
OFFICIAL_CLONE = ".official/score_matching_rl"


def official_checkout():
    """The configured local checkout if it exists, else the clone this workflow makes."""
    path = OFFICIAL["path"]
    if path:
        path = Path(path) if Path(path).is_absolute() else REPO / path
        if path.is_dir():
            return str(path)
    return OFFICIAL_CLONE


def _fail(key, message):
    raise WorkflowError(f"config key {key}: {message}")


def _check_names():
    for key, names in (("algos", config["algos"]), ("audit.algos", config["audit"]["algos"]),
                       ("profile.tsweep.algos", TSWEEP["algos"]),
                       ("profile.batch_sweep.algos", BATCH_SWEEP["algos"])):
        for name in names:
            if name not in CATALOG:
                _fail(key, f"unknown algorithm {name!r}; registered: {', '.join(sorted(CATALOG))} "
                           f"(external programs go under external_baselines)")
    for name in EXTERNAL:
        if name in CATALOG:
            _fail("external_baselines", f"{name!r} is a registered agent; list it under algos instead")
    for key, tasks in (("tasks", config["tasks"]), ("audit.tasks", config["audit"]["tasks"]),
                       ("profile.tsweep.task", [TSWEEP["task"]]),
                       ("profile.batch_sweep.task", [BATCH_SWEEP["task"]])):
        for task in tasks:
            try:
                validate_task(task)
            except TaskError as e:
                _fail(key, str(e))
    both = sorted(set(config["tasks"]) & set(config["audit"]["tasks"]))
    if both:
        _fail("audit.tasks", f"{both} are also benchmark tasks (key tasks); the audit already "
                             f"covers every benchmark run, so list them once")
    if TRAIN_RES.get("env_workers", 0) >= TRAIN_RES["threads"]:
        _fail("resources.train.env_workers",
              f"{TRAIN_RES['env_workers']} workers leave none of the job's {TRAIN_RES['threads']} "
              f"threads for torch; env_workers must be below resources.train.threads")
    if TRAIN_RES["gpu"] > 0 and config["device"] not in ("cpu", "cuda", "cuda:0", "auto"):
        _fail("device", f"{config['device']!r} with resources.train.gpu {TRAIN_RES['gpu']}: each "
                        f"training job sees only the GPU it is given, as cuda:0; use cuda or auto "
                        f"(docs/gpus.md)")
    if config["stats"]["reference"] not in config["algos"] + EXTERNAL:
        _fail("stats.reference", f"{config['stats']['reference']!r} is not in algos {config['algos']}")


def _check_sweeps():
    """Every `sweeps:` entry: a free name, known algorithms and tasks, a hyperparameter each
    algorithm declares (or a sweepable budget field), and values inside its valid range."""
    names = [sweep["name"] for sweep in SWEEPS]
    for i, sweep in enumerate(SWEEPS):
        key = f"sweeps[{i}]"
        name, hparam = sweep["name"], sweep["hparam"]
        if name in FIXED_ROLES or name in names[:i]:
            why = "a role of the pipeline" if name in FIXED_ROLES else "used twice"
            _fail(f"{key}.name", f"{name!r} is taken ({why}); choose another name")
        for algo in sweep["algos"]:
            if algo not in CATALOG:
                _fail(f"{key}.algos", f"unknown algorithm {algo!r}; registered: "
                                      f"{', '.join(sorted(CATALOG))}")
            if hparam not in CATALOG[algo].specs and hparam not in SWEEPABLE_BUDGET:
                _fail(f"{key}.hparam", f"{algo!r} has no hyperparameter {hparam!r}; its "
                                       f"hyperparameters: {', '.join(sorted(CATALOG[algo].specs))}; "
                                       f"budget fields: {', '.join(SWEEPABLE_BUDGET)}")
        for task in sweep["tasks"]:
            try:
                validate_task(task)
            except TaskError as e:
                _fail(f"{key}.tasks", str(e))
        for fixed in sweep.get("hparams") or {}:
            if fixed == hparam:
                _fail(f"{key}.hparams", f"{hparam!r} is the swept hyperparameter; give its "
                                        f"values under values")
            for algo in sweep["algos"]:
                if fixed not in CATALOG[algo].specs:
                    _fail(f"{key}.hparams", f"{algo!r} has no hyperparameter {fixed!r}; its "
                                            f"hyperparameters: "
                                            f"{', '.join(sorted(CATALOG[algo].specs))}")
        values = [json.dumps(v) for v in sweep["values"]]
        if len(set(values)) < len(values):
            _fail(f"{key}.values", f"{sweep['values']} repeats a value")
        for value in sweep["values"]:
            if hparam in SWEEPABLE_BUDGET:
                least = 0 if hparam == "start_steps" else 1
                if not isinstance(value, int) or isinstance(value, bool) or value < least:
                    _fail(f"{key}.values", f"{hparam}={value!r}: this budget field takes an "
                                           f"integer >= {least}")
                continue
            for algo in sweep["algos"]:
                for task in sweep["tasks"]:
                    try:
                        CATALOG[algo].resolve(task, {**_overrides(algo, task),
                                                     **(sweep.get("hparams") or {}), hparam: value})
                    except HparamError as e:
                        _fail(f"{key}.values", str(e))


def _check_hparams():
    """Every `hparams:` entry is checked here, at DAG time, against the agent's declared ranges."""
    tasks = (set(config["tasks"]) | set(config["audit"]["tasks"])
             | {t for sweep in SWEEPS for t in sweep["tasks"]} | {TSWEEP["task"]}
             | {BATCH_SWEEP["task"]})
    for algo, scopes in config.get("hparams", {}).items():
        if algo not in CATALOG:
            _fail(f"hparams.{algo}", f"unknown algorithm {algo!r}; registered: "
                                     f"{', '.join(sorted(CATALOG))}")
        for scope, table in scopes.items():
            if scope != "all" and scope not in tasks:
                _fail(f"hparams.{algo}.{scope}", f"{scope!r} is neither 'all' nor a task of this "
                                                  f"configuration ({', '.join(sorted(tasks))})")
            for key, value in table.items():
                try:
                    CATALOG[algo].resolve("", {key: value})
                except HparamError as e:
                    _fail(f"hparams.{algo}.{scope}.{key}", str(e))


def _check_task_lists():
    """task_seeds names tasks of this configuration; external_tasks, its external baselines and
    benchmark tasks."""
    tasks = set(config["tasks"]) | set(config["audit"]["tasks"])
    for task in TASK_SEEDS:
        if task not in tasks:
            _fail(f"task_seeds.{task}", f"{task!r} is not a task of this configuration (tasks or "
                                        f"audit.tasks: {', '.join(sorted(tasks))})")
    for name, names in EXTERNAL_TASKS.items():
        if name not in EXTERNAL:
            _fail(f"external_tasks.{name}", f"{name!r} is not in external_baselines {EXTERNAL}")
        for task in names:
            if task not in config["tasks"]:
                _fail(f"external_tasks.{name}", f"{task!r} is not a benchmark task (tasks: "
                                                f"{', '.join(config['tasks'])})")


def task_seeds(task, seeds):
    """The seeds a task trains (task_seeds), else the seeds of the list it is on."""
    return TASK_SEEDS.get(task, seeds)


_check_names()
_check_hparams()
_check_task_lists()


def seed_blocks(seeds, size):
    return [tuple(seeds[i : i + size]) for i in range(0, len(seeds), size)]


def seeds_tag(seeds) -> str:
    return "_".join(map(str, seeds))


@dataclass(frozen=True)
class TrainJob:
    """One training job: one (algorithm, task, configuration) for one block of seeds."""
    algo: str
    task: str
    role: str          # benchmark | audit | tsweep | batch_sweep | the name of a sweep
    seeds: tuple
    budget: dict = field(hash=False)
    overrides: dict = field(hash=False)
    identity: dict = field(hash=False)

    @property
    def run_id(self):
        return self.identity["run_id"]

    @property
    def run_dir(self):
        return f"{RUNS}/{self.algo}/{self.task}/{self.run_id}"

    @property
    def flag(self):
        return f"{self.run_dir}/block_{seeds_tag(self.seeds)}.done"


def _overrides(algo, task):
    table = config.get("hparams", {}).get(algo, {})
    return {**table.get("all", {}), **table.get(task, {})}


def _budget(budget):
    """A budget of the config with the probe sizes, and log_every resolved (qsm.budget)."""
    return Budget.of({**budget, "probe_states": config["probes"]["states"],
                      "probe_samples": config["probes"]["samples"]}).as_dict()


def _agent_job(algo, task, role, seeds, budget, overrides):
    entry = CATALOG[algo]
    try:
        hparams = entry.resolve(task, overrides)
    except HparamError as e:
        _fail(f"hparams.{algo}", f"for task {task}: {e}")
    ident = run_identity(algo, task, identity_values(entry.specs, hparams), budget,
                         training_code_version(entry.module),
                         package_versions(TRAINER_PACKAGES))
    return TrainJob(algo, task, role, tuple(seeds), budget, overrides, ident)


def sweep_value(algo, hparam, value):
    """A swept value as the trainer's --set gives it: floats as floats (M_q=5 is 5.0, so that a
    point and the run of the same configuration share one identity), widths as lists."""
    kind = CATALOG[algo].specs[hparam].kind
    return float(value) if kind == "float" else value


def sweep_default(sweep):
    """The declared default of a sweep's hyperparameter, where its algorithms agree on one (for
    the sweep's figure); None for budget fields."""
    specs = [CATALOG[a].specs.get(sweep["hparam"]) for a in sweep["algos"]]
    defaults = {json.dumps(list(s.default) if isinstance(s.default, tuple) else s.default)
                for s in specs if s is not None}
    return json.loads(defaults.pop()) if len(defaults) == 1 else None


def _agent_jobs():
    jobs = []
    for role, algos, tasks, seeds, budget in (
            ("benchmark", config["algos"], config["tasks"], config["seeds"], config["budget"]),
            ("audit", config["audit"]["algos"], config["audit"]["tasks"], config["audit"]["seeds"],
             config["audit"]["budget"])):
        for algo in algos:
            for task in tasks:
                for block in seed_blocks(task_seeds(task, seeds), config["seed_block"]):
                    jobs.append(_agent_job(algo, task, role, block, _budget(budget),
                                           _overrides(algo, task)))
    # The sweeps: each task at the budget it has elsewhere in this config (audit tasks at
    # audit.budget, the others at budget) updated by the sweep's budget, with the config's other
    # overrides. A point whose configuration is a benchmark or audit run's has that run's
    # identity and is that run (same flag file), listed once more in the manifest under the
    # sweep's name.
    audit_tasks = set(config["audit"]["tasks"])
    for sweep in SWEEPS:
        hparam = sweep["hparam"]
        for algo in sweep["algos"]:
            for task in sweep["tasks"]:
                base = config["audit"]["budget"] if task in audit_tasks else config["budget"]
                base = {**base, **(sweep.get("budget") or {})}
                fixed = {k: sweep_value(algo, k, v) for k, v in (sweep.get("hparams") or {}).items()}
                for value in sweep["values"]:
                    budget, overrides = dict(base), {**_overrides(algo, task), **fixed}
                    if hparam in SWEEPABLE_BUDGET:
                        budget[hparam] = int(value)
                    else:
                        overrides[hparam] = sweep_value(algo, hparam, value)
                    for block in seed_blocks(sweep["seeds"], config["seed_block"]):
                        jobs.append(_agent_job(algo, task, sweep["name"], block, _budget(budget),
                                               overrides))
    # The cost sweeps measure wall-clock at the paper's network sizes: only T, or only the
    # batch size, is changed, over a few hundred steps with one evaluation episode.
    for role, spec, values, vary in (("tsweep", TSWEEP, TSWEEP["Ts"], "T"),
                                     ("batch_sweep", BATCH_SWEEP, BATCH_SWEEP["sizes"], "batch_size")):
        for algo in spec["algos"]:
            for value in values:
                budget = {"steps": spec["steps"], "start_steps": spec["start_steps"],
                          "eval_every": spec["steps"], "eval_episodes": 1, "batch_size": 256,
                          "replay_capacity": 1_000_000, "probe_states": 1, "probe_samples": 10}
                overrides = {}
                if vary == "batch_size":
                    budget["batch_size"] = int(value)
                else:
                    overrides[vary] = value
                jobs.append(_agent_job(algo, spec["task"], role, spec["seeds"],
                                       Budget.of(budget).as_dict(), overrides))
    return jobs


_check_sweeps()
TRAIN_JOBS = _agent_jobs()


def external_jobs():
    """The jobs of the external baselines (their programs are registered by external.smk)."""
    jobs = []
    for name in EXTERNAL:
        if name not in EXTERNAL_PROGRAMS:
            _fail("external_baselines", f"no Snakemake file registers a program for {name!r}; "
                                        f"known: {', '.join(sorted(EXTERNAL_PROGRAMS)) or 'none'} "
                                        f"(see docs/adding_a_baseline.md)")
        code = code_version(files=[EXTERNAL_PROGRAMS[name]])
        versions = package_versions(EXTERNAL_PACKAGES.get(name, ENVIRONMENT_PACKAGES))
        if name in EXTERNAL_CODE:
            code = hash_of([code, EXTERNAL_CODE[name]])
        for task in EXTERNAL_TASKS.get(name, config["tasks"]):
            budget = _budget(config["budget"])
            for block in seed_blocks(task_seeds(task, config["seeds"]), config["seed_block"]):
                jobs.append(TrainJob(name, task, "benchmark", block, budget, {},
                                     run_identity(name, task, {}, budget, code, versions)))
    return jobs


@functools.cache  # called after parsing, once external.smk has registered its programs
def all_jobs():
    return TRAIN_JOBS + external_jobs()


def job_for(wc, algo=None) -> TrainJob:
    """The job whose flag file these wildcards name (`algo` for rules of one baseline)."""
    algo = algo or wc.algo
    for job in all_jobs():
        if (job.algo, job.task, job.run_id, seeds_tag(job.seeds)) == (
                algo, wc.task, wc.run_id, wc.seeds):
            return job
    raise WorkflowError(f"no job of this configuration trains {algo}/{wc.task}/{wc.run_id} "
                        f"seeds {wc.seeds}")


def describe(job: TrainJob) -> str:
    """One line per training job in Snakemake's output: what it trains and its identity."""
    b, ident = job.budget, job.identity
    overrides = " ".join(f"{k}={v}" for k, v in job.overrides.items()) or "none"
    return (f"{job.role}: {job.algo} on {job.task}, seeds {' '.join(map(str, job.seeds))}: run "
            f"{job.run_id} = code {ident['code_version']}, {b['steps']} steps "
            f"({b['start_steps']} random), overrides {overrides}")


# Re-analysis from a run archive (analysis/archive.py): with `archive: DIR` (and not
# `retrain: true`), every run the configuration asks for is read from the archive, under the
# identity it recorded, and nothing is trained. An archived run is a job's run when the job's
# configuration (algorithm, task, hyperparameters, budget) at the code version the run recorded
# has the run's run_id: the same question asked of older code.
ARCHIVE = None if str(config.get("retrain")).lower() == "true" else config.get("archive")


def archive_dir() -> str:
    """The archive's directory as the pipeline's working directory sees it (config paths are
    relative to the suite's checkout, as official.path is)."""
    return os.path.relpath(REPO / ARCHIVE, Path.cwd())


@functools.cache
def archive_index() -> dict:
    """(algo, task, seed) -> the archive's records of it (empty without an archive)."""
    if not ARCHIVE:
        return {}
    if not (REPO / ARCHIVE / "MANIFEST.json").is_file():
        _fail("archive", f"{ARCHIVE} holds no MANIFEST.json (python -m analysis.archive add "
                         f"writes one); to train instead, add --config retrain=true")
    return index_by_run(REPO / ARCHIVE)


def archived_run(job: TrainJob, seed):
    """The archive's record of this job's seed, or None."""
    try:
        return find_run(archive_index(), job.algo, job.task, seed, job.identity["hparams"],
                        job.budget)
    except ArchiveError as e:
        _fail("archive", f"{ARCHIVE}: {e}")


def flags_of(*roles):
    """An input function: the flag files of every job of these roles (evaluated after parsing,
    once every rule and external program is known). None when the runs come from an archive."""
    if ARCHIVE:
        return lambda wc: []
    return lambda wc: sorted({job.flag for job in all_jobs() if job.role in roles})


@functools.cache
def run_manifest() -> dict:
    """Exactly the runs this configuration asks for; the analysis reads these and no others."""
    runs, commits = [], set()
    for job in all_jobs():
        for seed in job.seeds:
            entry = {"algo": job.algo, "task": job.task, "seed": int(seed), "role": job.role,
                     "run_id": job.run_id, "code_version": job.identity["code_version"],
                     "path": f"{job.run_dir}/seed{seed}"}
            record = archived_run(job, seed) if ARCHIVE else None
            if record:
                entry.update(run_id=record["run_id"], code_version=record["code_version"],
                             path=f"{archive_dir()}/{record['path']}")
                if record.get("git_commit"):  # external programs may record none
                    commits.add(record["git_commit"])
            runs.append(entry)
    manifest = {"config_hash": hash_of(config), "runs_root": RUNS, "runs": runs,
                "sweeps": {sweep["name"]: {"hparam": sweep["hparam"], "algos": sweep["algos"],
                                           "values": sweep["values"],
                                           "hparams": sweep.get("hparams") or {},
                                           "default": sweep_default(sweep)} for sweep in SWEEPS}}
    if ARCHIVE:
        manifest["archive"] = {"path": ARCHIVE, "commits": sorted(commits)}
        found = {e["path"] for e in runs if e["path"].startswith(f"{archive_dir()}/")}
        wanted = {e["path"] for e in runs}
        missing = (f"; the other {len(wanted) - len(found)} are reported missing (to train "
                   f"them: --config retrain=true)" if len(found) < len(wanted) else "")
        print(f"archive {ARCHIVE}: {len(found)} of the {len(wanted)} runs this configuration "
              f"asks for are archived{missing}", file=sys.stderr)
    return manifest


def archive_input(wc):
    """The run_manifest rule's input: the archive's manifest, when the runs come from one."""
    return [f"{archive_dir()}/MANIFEST.json"] if ARCHIVE else []


def write_manifest(path, log):
    from qsm.rundir import atomic_write_json

    manifest = run_manifest()
    atomic_write_json(path, manifest)
    Path(log).write_text(f"{len(manifest['runs'])} runs, config {manifest['config_hash']}\n")


def analysis_code(module: str) -> str:
    """Code version of an analysis command: a param, so that editing it reruns the rule."""
    return code_version([module])


def provenance_footer(module: str, *roles):
    """A param: the provenance line (config, runs, code versions) that every figure of the rule
    ends its caption with, for the report's captions (`{{ snakemake.params.provenance }}`). It
    depends only on the configuration and the code, so it is known before the rule runs."""
    return lambda wc: footer_of_manifest(run_manifest(), roles, module, MANIFEST)


def sidecars(*tables):
    """The provenance sidecars of these tables (analysis/provenance.py), shown in the report."""
    return [report(str(sidecar_path(t)), category="Provenance",
                   caption="../report/provenance.rst") for t in tables]


def checkpoint_args(job):
    """Where and how often a training program (the trainer, the official learners' program)
    checkpoints: outside the run directory, so that a failed job's checkpoint survives."""
    keep = "--keep-checkpoint " if config.get("keep_checkpoints") else ""
    return (f"--checkpoint-every {config.get('checkpoint_every', 0)} "
            f"--checkpoint-dir {CHECKPOINTS}/{job.algo}/{job.task}/{job.run_id} {keep}")


def tensorboard_args():
    """--tensorboard DIR when the config asks for TensorBoard scalars (config `tensorboard`)."""
    return f"--tensorboard {config['tensorboard']} " if config.get("tensorboard") else ""


def train_args(wc):
    """The trainer's arguments for the job these wildcards name."""
    job = job_for(wc)
    return (
        f"--algo {job.algo} --task {job.task} --seeds {' '.join(map(str, job.seeds))} "
        f"--run-id {job.run_id} {Budget.of(job.budget).command_args()} {tensorboard_args()}"
        f"--device {config['device']} --env-workers {TRAIN_RES.get('env_workers', 0)} "
        f"{checkpoint_args(job)}"
        + " ".join(f"--set {k}={json.dumps(v).replace(' ', '')}" for k, v in job.overrides.items())
    )


def external_args(wc, algo, learner=False):
    """The contract arguments every external program takes: seeds, identity, budget, output;
    with `learner`, also the learning budget (random steps, batch size, replay capacity)."""
    job = job_for(wc, algo)
    budget = Budget.of(job.budget)
    args = (f"--task {job.task} --seeds {' '.join(map(str, job.seeds))} --run-id {job.run_id} "
            f"--code-version {job.identity['code_version']} {budget.command_args(PROTOCOL_KEYS)} "
            f"--out {job.run_dir}")
    if learner:
        args += f" {budget.command_args(LEARNING_KEYS)} {tensorboard_args()}{checkpoint_args(job)}"
    return args


# Runs a training command on a GPU of its own (qsm/gpu_slots.py): Snakemake's gpu resource only
# limits how many GPU jobs run at once, it does not say which GPU each one gets.
GPU_SLOT_WRAPPER = "python -m qsm.gpu_slots run -- "


def gpu_slot(wildcards, resources):
    """A param: the GPU slot wrapper for a job that asks for a GPU and runs on this machine;
    nothing for CPU jobs, and nothing for cluster jobs, whose scheduler sets
    CUDA_VISIBLE_DEVICES itself (also inside the job, where Snakemake runs in remote mode)."""
    on_this_machine = workflow.local_exec and not workflow.remote_exec
    return GPU_SLOT_WRAPPER if on_this_machine and resources.get("gpu", 0) > 0 else ""


def torch_threads(wildcards, threads):
    """A training job's threads are its cores: env_workers of them step environments, torch gets
    the rest (threads may come from a profile's set-threads)."""
    return max(1, threads - TRAIN_RES.get("env_workers", 0))
