TRAIN_RES = config["resources"]["train"]
TSWEEP = config["profile"]["tsweep"]


wildcard_constraints:
    algo="|".join(sorted(set(config["algos"]) | set(config["audit"]["algos"]) | set(TSWEEP["algos"]))),
    block=r"\d+",
    T=r"\d+",


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
        f"--probe-states {config['probes']['states']} --probe-samples {config['probes']['samples']} "
        f"--checkpoint-every {config.get('checkpoint_every', 0)} "
        f"--checkpoint-dir {CHECKPOINTS}/{wc.algo}/{wc.task} "
        + ("--keep-checkpoint " if config.get("keep_checkpoints") else "")
        + hparam_args(wc.algo, wc.task)
    )


rule train:
    """Train one algorithm on one task for one block of seeds (one process, seed-batched)."""
    output:
        touch(f"{RUNS}/{{algo}}/{{task}}/block{{block}}.done"),
    log:
        f"{LOGS}/train/{{algo}}_{{task}}_block{{block}}.log",
    params:
        args=train_args,
        out=lambda wc: f"{RUNS}/{wc.algo}/{wc.task}",
    threads: TRAIN_RES["threads"]
    resources:
        gpu=TRAIN_RES["gpu"],
        mem_mb=TRAIN_RES["mem_mb"],
        runtime=TRAIN_RES["runtime"],
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} MUJOCO_GL=disable "
        "python -m qsm.train {params.args} --threads {threads} --out {params.out} > {log} 2>&1"


rule train_tsweep:
    """QSM (and any sampler-based agent) at several diffusion step counts T, for the cost sweep."""
    output:
        touch(f"results/tsweep/{{algo}}/{{task}}/T{{T}}/block.done"),
    log:
        f"{LOGS}/tsweep/{{algo}}_{{task}}_T{{T}}.log",
    params:
        seeds=" ".join(map(str, TSWEEP["seeds"])),
        out=lambda wc: f"results/tsweep/{wc.algo}/{wc.task}/T{wc.T}",
    threads: TRAIN_RES["threads"]
    resources:
        gpu=TRAIN_RES["gpu"],
        mem_mb=TRAIN_RES["mem_mb"],
        runtime=TRAIN_RES["runtime"],
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} MUJOCO_GL=disable "
        "python -m qsm.train --algo {wildcards.algo} --task {wildcards.task} --seeds {params.seeds} "
        "--steps " + str(TSWEEP["steps"]) + " --start-steps " + str(TSWEEP["start_steps"]) + " "
        "--eval-every " + str(TSWEEP["steps"]) + " --eval-episodes 1 --probe-states 1 "
        "--probe-samples 10 --device " + config["device"] + " --set T={wildcards.T} "
        "--threads {threads} --out {params.out} > {log} 2>&1"
