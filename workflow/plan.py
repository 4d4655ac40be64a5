"""The pipeline's plan: what a configuration asks the pipeline to train and read, as plain Python.

    from workflow.plan import Plan
    plan = Plan(config, repo)          # the config dict Snakemake holds (schema defaults set)
    plan.all_jobs()                    # every training job, with its run identity
    plan.run_manifest()                # the run manifest's dict (analysis/records/manifest.py)

What lives where:

- here (``workflow/plan.py``, importable from the repository root, no Snakemake): the checks of
  the configuration that its JSON schema cannot express (:class:`ConfigError`, whose message is
  ``config key <key>: <message>``), the training jobs (:class:`TrainJob`: benchmark, audit,
  sweeps, cost sweeps, external baselines) with their run identities, the archive lookup, the
  run manifest's content, and the command-line arguments of the training programs;
- ``analysis/records/manifest.py``: the run manifest's keys, its writer (``manifest_dict``,
  ``manifest_entry``, ``write_manifest``) and its reader;
- ``workflow/rules/common.smk``: the glue that needs Snakemake's objects (the workflow's
  directories, ``report()``, where a job runs, its threads and resources): it builds one Plan,
  turns a :class:`PlanError` into Snakemake's WorkflowError, and exposes the plan's answers to
  the rules; ``external.smk`` registers the external baselines' programs in the plan's
  ``external_programs`` (and ``external_code``, ``external_packages``) before any job is listed.

Building a plan imports nothing heavy (no torch, no dm_control): agents, their hyperparameters
and valid ranges come from their torch-free declaration modules (qsm.declare.catalog), task names
from a static list (qsm.harness.envs), code versions are hashes of source files
(qsm.contract.identity). This module is not part of any run's code version: qsm.contract.identity
follows imports of ``qsm``, ``baselines`` and ``analysis`` only, and none of those imports it.

Run identity (qsm/contract/identity.py): every training job writes its seeds to
results/runs/{algo}/{task}/{run_id}/seed{k}, where run_id hashes the algorithm, task, resolved
hyperparameters, budget and code version. A changed budget, hyperparameter or agent source gives
new run_ids, so exactly those jobs run, beside the old runs; switching back finds the old ones.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from analysis.records.archive import ArchiveError, find_run, index_by_run
from analysis.records.catalogue import FIGURES, TABLES, table_path
from analysis.records.manifest import manifest_dict, manifest_entry, write_manifest
from qsm.declare.budget import LEARNING_KEYS, PROTOCOL_KEYS, SWEEPABLE as SWEEPABLE_BUDGET, Budget
from qsm.declare.catalog import agent_catalog
from qsm.declare.hparams import HparamError, identity_values
from qsm.harness.envs import TaskError, validate_task
from qsm.contract.identity import (ENVIRONMENT_PACKAGES, TRAINER_PACKAGES, code_version,
                                   configuration_id, hash_of, package_versions, run_identity,
                                   training_code_version)

RUNS = "results/runs"
LOGS = "results/logs"
CHECKPOINTS = "results/checkpoints"  # not a declared output: survives failed jobs
MANIFEST = table_path("run_manifest.json")

# Roles the pipeline gives its own runs: a sweep may not take one of these names.
FIXED_ROLES = ("benchmark", "audit", "tsweep", "batch_sweep")

# The authors' implementation for the *_official external baselines (external.smk): a local
# checkout (config official.path, relative to the suite's checkout) or a clone at the pinned commit.
OFFICIAL_DEFAULTS = {"path": None, "repo": "https://github.com/Alescontrela/score_matching_rl",
                     "commit": "2e77893f7f55fa4f124432b4cc78c02573c02c34"}
OFFICIAL_CLONE = ".official/score_matching_rl"


class PlanError(Exception):
    """Something the configuration asks for that the plan cannot give (the pipeline reports it
    as a WorkflowError with this message)."""


class ConfigError(PlanError, ValueError):
    """A configuration value the plan refuses: ``config key <key>: <message>``."""

    def __init__(self, key: str, message: str):
        super().__init__(f"config key {key}: {message}")
        self.key, self.message = key, message


class UnknownJob(PlanError, LookupError):
    """No job of this configuration has the algorithm, task, run id and seeds asked for."""


def _fail(key, message):
    raise ConfigError(key, message)


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


def describe(job: TrainJob) -> str:
    """One line per training job in Snakemake's output: what it trains and its identity."""
    b, ident = job.budget, job.identity
    overrides = " ".join(f"{k}={v}" for k, v in job.overrides.items()) or "none"
    return (f"{job.role}: {job.algo} on {job.task}, seeds {' '.join(map(str, job.seeds))}: run "
            f"{job.run_id} = code {ident['code_version']}, {b['steps']} steps "
            f"({b['start_steps']} random), overrides {overrides}")


class Plan:
    """Everything a configuration asks the pipeline to train and read.

    `config` is the configuration as Snakemake holds it (validated against
    workflow/schemas/config.schema.yaml, its defaults set); `repo` the suite's checkout, against
    which the configuration's paths (official.path, archive) are read. Building a plan checks the
    configuration (ConfigError, in the order the pipeline always checked it) and lists the
    agents' jobs; the external baselines' jobs are listed on the first call of
    :meth:`all_jobs`, once their programs are registered in `external_programs`."""

    def __init__(self, config: dict, repo, catalog: dict | None = None):
        self.config = config
        self.repo = Path(repo)
        self.catalog = agent_catalog() if catalog is None else catalog
        self.tsweep = config["profile"]["tsweep"]
        # The cost of an update against the replay batch size (optional): like the T sweep,
        # cost only.
        self.batch_sweep = {"algos": [], "task": self.tsweep["task"], "sizes": [], "seeds": [0],
                            "steps": 1, "start_steps": 0,
                            **(config["profile"].get("batch_sweep") or {})}
        # Ablations (config `sweeps`): ordinary runs at each value of one hyperparameter or
        # budget field; a sweep's runs have its name as their role in the run manifest.
        self.sweeps = config.get("sweeps") or []
        self.train_res = config["resources"]["train"]
        self.external = config.get("external_baselines", [])
        # The benchmark tasks an external baseline runs on, where not all of `tasks`
        # (config external_tasks)
        self.external_tasks = config.get("external_tasks") or {}
        # Seeds of a benchmark or audit task that differ from its list's `seeds` (task_seeds)
        self.task_seeds_of = config.get("task_seeds") or {}
        # External programs that write the run-directory contract, by baseline name: their
        # source (and the suite modules they import) is their code version. external.smk
        # registers its rules' programs.
        self.external_programs = {}
        # Where a program runs foreign code, the extra identity of that code (e.g. the official
        # implementation's pinned commit), by baseline name; part of the runs' code version.
        self.external_code = {}
        # The packages whose versions are part of a program's run identity, by baseline name
        # (default qsm.contract.identity.ENVIRONMENT_PACKAGES: numpy, dm_control, mujoco).
        self.external_packages = {}
        self.official = {**OFFICIAL_DEFAULTS, **config.get("official", {})}
        # Re-analysis from a run archive (analysis/records/archive.py): with `archive: DIR` (and not
        # `retrain: true`), every run the configuration asks for is read from the archive,
        # under the identity it recorded, and nothing is trained. An archived run is a job's
        # run when the job's configuration (algorithm, task, hyperparameters, budget) at the
        # code version the run recorded has the run's run_id: the same question asked of older
        # code.
        self.archive = (None if str(config.get("retrain")).lower() == "true"
                        else config.get("archive"))
        self._all_jobs = self._archive_index = self._manifest = None
        self._check_names()
        self._check_hparams()
        self._check_task_lists()
        self._check_sweeps()
        self.train_jobs = self._agent_jobs()

    # -- the checks a JSON schema cannot express -------------------------------------------------

    def _check_names(self):
        config, catalog = self.config, self.catalog
        for key, names in (("algos", config["algos"]), ("audit.algos", config["audit"]["algos"]),
                           ("profile.tsweep.algos", self.tsweep["algos"]),
                           ("profile.batch_sweep.algos", self.batch_sweep["algos"])):
            for name in names:
                if name not in catalog:
                    _fail(key, f"unknown algorithm {name!r}; registered: "
                               f"{', '.join(sorted(catalog))} "
                               f"(external programs go under external_baselines)")
        for name in self.external:
            if name in catalog:
                _fail("external_baselines",
                      f"{name!r} is a registered agent; list it under algos instead")
        for key, tasks in (("tasks", config["tasks"]), ("audit.tasks", config["audit"]["tasks"]),
                           ("profile.tsweep.task", [self.tsweep["task"]]),
                           ("profile.batch_sweep.task", [self.batch_sweep["task"]])):
            for task in tasks:
                try:
                    validate_task(task)
                except TaskError as e:
                    _fail(key, str(e))
        both = sorted(set(config["tasks"]) & set(config["audit"]["tasks"]))
        if both:
            _fail("audit.tasks", f"{both} are also benchmark tasks (key tasks); the audit already "
                                 f"covers every benchmark run, so list them once")
        res = self.train_res
        if res.get("env_workers", 0) >= res["threads"]:
            _fail("resources.train.env_workers",
                  f"{res['env_workers']} workers leave none of the job's {res['threads']} "
                  f"threads for torch; env_workers must be below resources.train.threads")
        if res["gpu"] > 0 and config["device"] not in ("cpu", "cuda", "cuda:0", "auto"):
            _fail("device", f"{config['device']!r} with resources.train.gpu {res['gpu']}: each "
                            f"training job sees only the GPU it is given, as cuda:0; use cuda or "
                            f"auto (docs/gpus.md)")
        if config["stats"]["reference"] not in config["algos"] + self.external:
            _fail("stats.reference",
                  f"{config['stats']['reference']!r} is not in algos {config['algos']}")
        for task in config["stats"].get("tasks") or []:
            if task not in config["tasks"]:
                _fail("stats.tasks", f"{task!r} is not a benchmark task (tasks: "
                                     f"{', '.join(config['tasks'])})")

    def _check_hparams(self):
        """Every `hparams:` entry, against the agent's declared ranges."""
        config, catalog = self.config, self.catalog
        tasks = (set(config["tasks"]) | set(config["audit"]["tasks"])
                 | {t for sweep in self.sweeps for t in sweep["tasks"]} | {self.tsweep["task"]}
                 | {self.batch_sweep["task"]})
        for algo, scopes in config.get("hparams", {}).items():
            if algo not in catalog:
                _fail(f"hparams.{algo}", f"unknown algorithm {algo!r}; registered: "
                                         f"{', '.join(sorted(catalog))}")
            for scope, table in scopes.items():
                if scope != "all" and scope not in tasks:
                    _fail(f"hparams.{algo}.{scope}", f"{scope!r} is neither 'all' nor a task of "
                                                      f"this configuration "
                                                      f"({', '.join(sorted(tasks))})")
                for key, value in table.items():
                    try:
                        catalog[algo].resolve("", {key: value})
                    except HparamError as e:
                        _fail(f"hparams.{algo}.{scope}.{key}", str(e))

    def _check_task_lists(self):
        """task_seeds names tasks of this configuration; external_tasks, its external baselines
        and benchmark tasks."""
        config = self.config
        tasks = set(config["tasks"]) | set(config["audit"]["tasks"])
        for task in self.task_seeds_of:
            if task not in tasks:
                _fail(f"task_seeds.{task}", f"{task!r} is not a task of this configuration "
                                            f"(tasks or audit.tasks: {', '.join(sorted(tasks))})")
        for name, names in self.external_tasks.items():
            if name not in self.external:
                _fail(f"external_tasks.{name}",
                      f"{name!r} is not in external_baselines {self.external}")
            for task in names:
                if task not in config["tasks"]:
                    _fail(f"external_tasks.{name}", f"{task!r} is not a benchmark task (tasks: "
                                                    f"{', '.join(config['tasks'])})")

    def _check_sweeps(self):
        """Every `sweeps:` entry: a free name, known algorithms and tasks, a hyperparameter each
        algorithm declares (or a sweepable budget field), and values inside its valid range."""
        catalog = self.catalog
        names = [sweep["name"] for sweep in self.sweeps]
        for i, sweep in enumerate(self.sweeps):
            key = f"sweeps[{i}]"
            name, hparam = sweep["name"], sweep["hparam"]
            if name in FIXED_ROLES or name in names[:i]:
                why = "a role of the pipeline" if name in FIXED_ROLES else "used twice"
                _fail(f"{key}.name", f"{name!r} is taken ({why}); choose another name")
            for algo in sweep["algos"]:
                if algo not in catalog:
                    _fail(f"{key}.algos", f"unknown algorithm {algo!r}; registered: "
                                          f"{', '.join(sorted(catalog))}")
                if hparam not in catalog[algo].specs and hparam not in SWEEPABLE_BUDGET:
                    _fail(f"{key}.hparam", f"{algo!r} has no hyperparameter {hparam!r}; its "
                                           f"hyperparameters: "
                                           f"{', '.join(sorted(catalog[algo].specs))}; "
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
                    if fixed not in catalog[algo].specs:
                        _fail(f"{key}.hparams", f"{algo!r} has no hyperparameter {fixed!r}; its "
                                                f"hyperparameters: "
                                                f"{', '.join(sorted(catalog[algo].specs))}")
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
                            catalog[algo].resolve(task, {**self._overrides(algo, task),
                                                         **(sweep.get("hparams") or {}),
                                                         hparam: value})
                        except HparamError as e:
                            _fail(f"{key}.values", str(e))

    # -- the jobs ----------------------------------------------------------------------------------

    def task_seeds(self, task, seeds):
        """The seeds a task trains (task_seeds), else the seeds of the list it is on."""
        return self.task_seeds_of.get(task, seeds)

    def _overrides(self, algo, task):
        table = self.config.get("hparams", {}).get(algo, {})
        return {**table.get("all", {}), **table.get(task, {})}

    def _budget(self, budget):
        """A budget of the config with the probe sizes, and log_every resolved
        (qsm.declare.budget)."""
        probes = self.config["probes"]
        return Budget.of({**budget, "probe_states": probes["states"],
                          "probe_samples": probes["samples"]}).as_dict()

    def _agent_job(self, algo, task, role, seeds, budget, overrides):
        entry = self.catalog[algo]
        try:
            hparams = entry.resolve(task, overrides)
        except HparamError as e:
            _fail(f"hparams.{algo}", f"for task {task}: {e}")
        ident = run_identity(algo, task, identity_values(entry.specs, hparams), budget,
                             training_code_version(entry.module),
                             package_versions(TRAINER_PACKAGES))
        return TrainJob(algo, task, role, tuple(seeds), budget, overrides, ident)

    def sweep_value(self, algo, hparam, value):
        """A swept value as the trainer's --set gives it: floats as floats (M_q=5 is 5.0, so
        that a point and the run of the same configuration share one identity), widths as
        lists."""
        kind = self.catalog[algo].specs[hparam].kind
        return float(value) if kind == "float" else value

    def sweep_default(self, sweep):
        """The declared default of a sweep's hyperparameter, where its algorithms agree on one
        (for the sweep's figure); None for budget fields."""
        specs = [self.catalog[a].specs.get(sweep["hparam"]) for a in sweep["algos"]]
        defaults = {json.dumps(list(s.default) if isinstance(s.default, tuple) else s.default)
                    for s in specs if s is not None}
        return json.loads(defaults.pop()) if len(defaults) == 1 else None

    def _agent_jobs(self):
        config = self.config
        jobs = []
        for role, algos, tasks, seeds, budget in (
                ("benchmark", config["algos"], config["tasks"], config["seeds"], config["budget"]),
                ("audit", config["audit"]["algos"], config["audit"]["tasks"],
                 config["audit"]["seeds"], config["audit"]["budget"])):
            for algo in algos:
                for task in tasks:
                    for block in seed_blocks(self.task_seeds(task, seeds), config["seed_block"]):
                        jobs.append(self._agent_job(algo, task, role, block, self._budget(budget),
                                                    self._overrides(algo, task)))
        # The sweeps: each task at the budget it has elsewhere in this config (audit tasks at
        # audit.budget, the others at budget) updated by the sweep's budget, with the config's
        # other overrides. A point whose configuration is a benchmark or audit run's has that
        # run's identity and is that run (same flag file), listed once more in the manifest
        # under the sweep's name.
        audit_tasks = set(config["audit"]["tasks"])
        for sweep in self.sweeps:
            hparam = sweep["hparam"]
            for algo in sweep["algos"]:
                for task in sweep["tasks"]:
                    base = config["audit"]["budget"] if task in audit_tasks else config["budget"]
                    base = {**base, **(sweep.get("budget") or {})}
                    fixed = {k: self.sweep_value(algo, k, v)
                             for k, v in (sweep.get("hparams") or {}).items()}
                    for value in sweep["values"]:
                        budget, overrides = dict(base), {**self._overrides(algo, task), **fixed}
                        if hparam in SWEEPABLE_BUDGET:
                            budget[hparam] = int(value)
                        else:
                            overrides[hparam] = self.sweep_value(algo, hparam, value)
                        for block in seed_blocks(sweep["seeds"], config["seed_block"]):
                            jobs.append(self._agent_job(algo, task, sweep["name"], block,
                                                        self._budget(budget), overrides))
        # The cost sweeps measure wall-clock at the paper's network sizes: only T, or only the
        # batch size, is changed, over a few hundred steps with one evaluation episode.
        for role, spec, values, vary in (
                ("tsweep", self.tsweep, self.tsweep["Ts"], "T"),
                ("batch_sweep", self.batch_sweep, self.batch_sweep["sizes"], "batch_size")):
            for algo in spec["algos"]:
                for value in values:
                    budget = {"steps": spec["steps"], "start_steps": spec["start_steps"],
                              "eval_every": spec["steps"], "eval_episodes": 1, "batch_size": 256,
                              "replay_capacity": 1_000_000, "probe_states": 1,
                              "probe_samples": 10}
                    overrides = {}
                    if vary == "batch_size":
                        budget["batch_size"] = int(value)
                    else:
                        overrides[vary] = value
                    jobs.append(self._agent_job(algo, spec["task"], role, spec["seeds"],
                                                Budget.of(budget).as_dict(), overrides))
        return jobs

    def external_jobs(self):
        """The jobs of the external baselines (their programs registered in external_programs)."""
        config = self.config
        jobs = []
        for name in self.external:
            if name not in self.external_programs:
                _fail("external_baselines",
                      f"no Snakemake file registers a program for {name!r}; known: "
                      f"{', '.join(sorted(self.external_programs)) or 'none'} "
                      f"(see docs/adding_a_baseline.md)")
            code = code_version(files=[self.external_programs[name]])
            versions = package_versions(self.external_packages.get(name, ENVIRONMENT_PACKAGES))
            if name in self.external_code:
                code = hash_of([code, self.external_code[name]])
            for task in self.external_tasks.get(name, config["tasks"]):
                budget = self._budget(config["budget"])
                for block in seed_blocks(self.task_seeds(task, config["seeds"]),
                                         config["seed_block"]):
                    jobs.append(TrainJob(name, task, "benchmark", block, budget, {},
                                         run_identity(name, task, {}, budget, code, versions)))
        return jobs

    def all_jobs(self):
        """Every job: the agents' (listed when the plan was built), then the external baselines'
        (listed on the first call, which must come after their programs are registered)."""
        if self._all_jobs is None:
            self._all_jobs = self.train_jobs + self.external_jobs()
        return self._all_jobs

    def job_for(self, algo, task, run_id, seeds) -> TrainJob:
        """The job that trains `algo` on `task` under `run_id` for these seeds (a list, or the
        tag of the flag file's name, e.g. "0_1"); UnknownJob if none does."""
        tag = seeds if isinstance(seeds, str) else seeds_tag(seeds)
        for job in self.all_jobs():
            if (job.algo, job.task, job.run_id, seeds_tag(job.seeds)) == (algo, task, run_id, tag):
                return job
        raise UnknownJob(f"no job of this configuration trains {algo}/{task}/{run_id} "
                         f"seeds {tag}")

    def flags(self, *roles):
        """The flag files of every job of these roles (none when the runs come from an archive)."""
        if self.archive:
            return []
        return sorted({job.flag for job in self.all_jobs() if job.role in roles})

    def official_checkout(self) -> str:
        """The configured local checkout of the official implementation if it exists, else the
        clone the pipeline makes."""
        path = self.official["path"]
        if path:
            path = Path(path) if Path(path).is_absolute() else self.repo / path
            if path.is_dir():
                return str(path)
        return OFFICIAL_CLONE

    # -- the archive -------------------------------------------------------------------------------

    def archive_dir(self) -> str:
        """The archive's directory as the pipeline's working directory sees it (config paths are
        relative to the suite's checkout, as official.path is)."""
        return os.path.relpath(self.repo / self.archive, Path.cwd())

    def archive_index(self) -> dict:
        """(algo, task, seed) -> the archive's records of it (empty without an archive; read
        once)."""
        if not self.archive:
            return {}
        if self._archive_index is None:
            if not (self.repo / self.archive / "MANIFEST.json").is_file():
                _fail("archive", f"{self.archive} holds no MANIFEST.json (python -m "
                                 f"analysis.records.archive add writes one); to train instead, add "
                                 f"--config retrain=true")
            self._archive_index = index_by_run(self.repo / self.archive)
        return self._archive_index

    def archived_run(self, job: TrainJob, seed):
        """The archive's record of this job's seed, or None."""
        try:
            return find_run(self.archive_index(), job.algo, job.task, seed,
                            job.identity["hparams"], job.budget, job.identity.get("versions"))
        except ArchiveError as e:
            _fail("archive", f"{self.archive}: {e}")

    # -- the run manifest --------------------------------------------------------------------------

    def run_manifest(self) -> dict:
        """Exactly the runs this configuration asks for; the analysis reads these and no others
        (its keys: analysis.records.manifest.manifest_dict). Computed once."""
        if self._manifest is None:
            self._manifest = self._make_manifest()
        return self._manifest

    def write_manifest(self, path) -> dict:
        """Write the run manifest to `path` (analysis.records.manifest.write_manifest);
        returns it."""
        manifest = self.run_manifest()
        write_manifest(path, manifest)
        return manifest

    def _make_manifest(self) -> dict:
        runs, commits = [], set()
        for job in self.all_jobs():
            config_id = configuration_id(job.identity)
            for seed in job.seeds:
                record = self.archived_run(job, seed) if self.archive else None
                if record:
                    if record.get("git_commit"):  # external programs may record none
                        commits.add(record["git_commit"])
                    runs.append(manifest_entry(job.algo, job.task, seed, job.role,
                                               record["run_id"], record["code_version"],
                                               f"{self.archive_dir()}/{record['path']}",
                                               config_id))
                else:
                    runs.append(manifest_entry(job.algo, job.task, seed, job.role, job.run_id,
                                               job.identity["code_version"],
                                               f"{job.run_dir}/seed{seed}", config_id))
        sweeps = {sweep["name"]: {"hparam": sweep["hparam"], "algos": sweep["algos"],
                                  "values": sweep["values"], "hparams": sweep.get("hparams") or {},
                                  "default": self.sweep_default(sweep)} for sweep in self.sweeps}
        archive = {"path": self.archive, "commits": sorted(commits)} if self.archive else None
        return manifest_dict(hash_of(self.config), RUNS, runs, sweeps=sweeps, archive=archive)

    def archive_summary(self, manifest: dict) -> str | None:
        """How many of the manifest's runs the archive holds (None without an archive)."""
        if not self.archive:
            return None
        runs = manifest["runs"]
        found = {e["path"] for e in runs if e["path"].startswith(f"{self.archive_dir()}/")}
        wanted = {e["path"] for e in runs}
        missing = (f"; the other {len(wanted) - len(found)} are reported missing (to train "
                   f"them: --config retrain=true)" if len(found) < len(wanted) else "")
        return (f"archive {self.archive}: {len(found)} of the {len(wanted)} runs this "
                f"configuration asks for are archived{missing}")

    # -- command lines -----------------------------------------------------------------------------

    @property
    def env_workers(self) -> int:
        return self.train_res.get("env_workers", 0)

    def torch_threads(self, threads: int) -> int:
        """A training job's threads are its cores: env_workers of them step environments, torch
        gets the rest."""
        return max(1, threads - self.env_workers)

    def checkpoint_args(self, job: TrainJob) -> str:
        """Where and how often a training program (the trainer, the official learners' program)
        checkpoints: outside the run directory, so that a failed job's checkpoint survives."""
        keep = "--keep-checkpoint " if self.config.get("keep_checkpoints") else ""
        return (f"--checkpoint-every {self.config.get('checkpoint_every', 0)} "
                f"--checkpoint-dir {CHECKPOINTS}/{job.algo}/{job.task}/{job.run_id} {keep}")

    def tensorboard_args(self) -> str:
        """--tensorboard DIR when the config asks for TensorBoard scalars (config `tensorboard`)."""
        board = self.config.get("tensorboard")
        return f"--tensorboard {board} " if board else ""

    def train_args(self, job: TrainJob) -> str:
        """The trainer's arguments for this job (python -m qsm.train; --threads and --out are
        the rule's)."""
        return (
            f"--algo {job.algo} --task {job.task} --seeds {' '.join(map(str, job.seeds))} "
            f"--run-id {job.run_id} {Budget.of(job.budget).command_args()} "
            f"{self.tensorboard_args()}"
            f"--device {self.config['device']} --env-workers {self.env_workers} "
            f"{self.checkpoint_args(job)}"
            + " ".join(f"--set {k}={json.dumps(v).replace(' ', '')}"
                       for k, v in job.overrides.items())
        )

    def external_args(self, job: TrainJob, learner: bool = False) -> str:
        """The contract arguments every external program takes: seeds, identity, budget, output;
        with `learner`, also the learning budget (random steps, batch size, replay capacity)."""
        budget = Budget.of(job.budget)
        args = (f"--task {job.task} --seeds {' '.join(map(str, job.seeds))} --run-id {job.run_id} "
                f"--code-version {job.identity['code_version']} "
                f"{budget.command_args(PROTOCOL_KEYS)} --out {job.run_dir}")
        if learner:
            args += (f" {budget.command_args(LEARNING_KEYS)} {self.tensorboard_args()}"
                     f"{self.checkpoint_args(job)}")
        return args
