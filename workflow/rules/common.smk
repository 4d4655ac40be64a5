"""Shared definitions of the pipeline: output locations, the grid of training jobs, and checks of
the configuration that a JSON schema cannot express (registered algorithm and task names)."""
import json
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.current_basedir).parent.parent))  # the repository root
from qsm.envs import TaskError, validate_task  # noqa: E402
from qsm.registry import agent_names  # noqa: E402

RUNS = "results/runs"
TABLES = "results/tables"
FIGURES = "results/figures"
LOGS = "results/logs"
CHECKPOINTS = "results/checkpoints"  # not a declared output: survives failed jobs


def _check_names():
    registered = set(agent_names())
    tsweep = config["profile"]["tsweep"]
    for key, names in (("algos", config["algos"]), ("audit.algos", config["audit"]["algos"]),
                       ("profile.tsweep.algos", tsweep["algos"])):
        for name in names:
            if name not in registered:
                raise WorkflowError(f"config key {key}: unknown algorithm {name!r}; registered: "
                                    f"{', '.join(sorted(registered))} (external programs go under "
                                    f"external_baselines)")
    for name in config.get("external_baselines", []):
        if name in registered:
            raise WorkflowError(f"config key external_baselines: {name!r} is a registered agent; "
                                f"list it under algos instead")
    for key, tasks in (("tasks", config["tasks"]), ("audit.tasks", config["audit"]["tasks"]),
                       ("profile.tsweep.task", [tsweep["task"]])):
        for task in tasks:
            try:
                validate_task(task)
            except TaskError as e:
                raise WorkflowError(f"config key {key}: {e}")
    train = config["resources"]["train"]
    if train.get("env_workers", 0) >= train["threads"]:
        raise WorkflowError(f"config key resources.train.env_workers: {train['env_workers']} "
                            f"workers leave none of the job's {train['threads']} threads for "
                            f"torch; env_workers must be below resources.train.threads")
    if config["stats"]["reference"] not in config["algos"]:
        raise WorkflowError(f"config key stats.reference: {config['stats']['reference']!r} is not "
                            f"in algos {config['algos']}")


_check_names()


def seed_blocks(seeds, size):
    return [seeds[i : i + size] for i in range(0, len(seeds), size)]


def run_grid():
    """(algo, task, block index, seeds) of every training job: benchmark grid, then audit grid."""
    jobs = {}
    blocks = seed_blocks(config["seeds"], config["seed_block"])
    for algo in config["algos"]:
        for task in config["tasks"]:
            for b, seeds in enumerate(blocks):
                jobs[(algo, task, b)] = seeds
    audit_blocks = seed_blocks(config["audit"]["seeds"], config["seed_block"])
    for algo in config["audit"]["algos"]:
        for task in config["audit"]["tasks"]:
            for b, seeds in enumerate(audit_blocks):
                jobs[(algo, task, b)] = seeds
    return jobs


GRID = run_grid()
EXTERNAL = config.get("external_baselines", [])


def expected_runs():
    runs = [[a, t, s] for (a, t, _), seeds in GRID.items() for s in seeds]
    runs += [[name, t, s] for name in EXTERNAL for t in config["tasks"] for s in config["seeds"]]
    return runs


def runs_root(flags):
    """results/runs, from the block flags results/runs/{algo}/{task}/block{b}.done."""
    return Path(flags[0]).parents[2]


def training_flags():
    flags = [f"{RUNS}/{a}/{t}/block{b}.done" for (a, t, b) in GRID]
    blocks = seed_blocks(config["seeds"], config["seed_block"])
    flags += [f"{RUNS}/{name}/{t}/block{b}.done" for name in EXTERNAL for t in config["tasks"]
              for b in range(len(blocks))]
    return flags


TRAIN_RES = config["resources"]["train"]


def torch_threads(wildcards, threads):
    """A training job's threads are its cores: env_workers of them step environments, torch gets
    the rest (threads may come from a profile's set-threads)."""
    return max(1, threads - TRAIN_RES.get("env_workers", 0))
TSWEEP = config["profile"]["tsweep"]


def budget_for(task):
    return config["audit"]["budget"] if task in config["audit"]["tasks"] else config["budget"]


def hparam_args(algo, task):
    table = config.get("hparams", {}).get(algo, {})
    merged = {**table.get("all", {}), **table.get(task, {})}
    return " ".join(f"--set {k}={json.dumps(v).replace(' ', '')}" for k, v in merged.items())


def train_args(wc):
    b = budget_for(wc.task)
    seeds = GRID[(wc.algo, wc.task, int(wc.block))]
    return (
        f"--algo {wc.algo} --task {wc.task} --seeds {' '.join(map(str, seeds))} "
        f"--steps {b['steps']} --start-steps {b['start_steps']} --eval-every {b['eval_every']} "
        f"--eval-episodes {b['eval_episodes']} --batch-size {b['batch_size']} "
        f"--replay-capacity {b['replay_capacity']} --device {config['device']} "
        f"--env-workers {TRAIN_RES.get('env_workers', 0)} "
        f"--probe-states {config['probes']['states']} --probe-samples {config['probes']['samples']} "
        f"--checkpoint-every {config.get('checkpoint_every', 0)} "
        f"--checkpoint-dir {CHECKPOINTS}/{wc.algo}/{wc.task} "
        + ("--keep-checkpoint " if config.get("keep_checkpoints") else "")
        + hparam_args(wc.algo, wc.task)
    )


