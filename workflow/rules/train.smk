wildcard_constraints:
    algo="|".join(sorted(set(config["algos"]) | set(config["audit"]["algos"]) | set(TSWEEP["algos"]))),
    block=r"\d+",
    T=r"\d+",


rule train:
    """Train one algorithm on one task for one block of seeds (one process, seed-batched)."""
    output:
        touch(f"{RUNS}/{{algo}}/{{task}}/block{{block}}.done"),
    log:
        f"{LOGS}/train/{{algo}}_{{task}}_block{{block}}.log",
    params:
        args=train_args,
        out=lambda wc: f"{RUNS}/{wc.algo}/{wc.task}",
        torch_threads=torch_threads,
    threads: TRAIN_RES["threads"]
    resources:
        gpu=TRAIN_RES["gpu"],
        mem_mb=TRAIN_RES["mem_mb"],
        runtime=TRAIN_RES["runtime"],
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={params.torch_threads} MKL_NUM_THREADS={params.torch_threads} "
        "MUJOCO_GL=disable python -m qsm.train {params.args} --threads {params.torch_threads} "
        "--out {params.out} > {log} 2>&1"


rule train_tsweep:
    """QSM (and any sampler-based agent) at several diffusion step counts T, for the cost sweep."""
    output:
        touch(f"results/tsweep/{{algo}}/{{task}}/T{{T}}/block.done"),
    log:
        f"{LOGS}/tsweep/{{algo}}_{{task}}_T{{T}}.log",
    params:
        seeds=" ".join(map(str, TSWEEP["seeds"])),
        steps=TSWEEP["steps"],
        start=TSWEEP["start_steps"],
        device=config["device"],
        out=lambda wc: f"results/tsweep/{wc.algo}/{wc.task}/T{wc.T}",
    threads: TRAIN_RES["threads"]
    resources:
        gpu=TRAIN_RES["gpu"],
        mem_mb=TRAIN_RES["mem_mb"],
        runtime=TRAIN_RES["runtime"],
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads} MUJOCO_GL=disable "
        "python -m qsm.train --algo {wildcards.algo} --task {wildcards.task} --seeds {params.seeds} "
        "--steps {params.steps} --start-steps {params.start} --eval-every {params.steps} "
        "--eval-episodes 1 --probe-states 1 --probe-samples 10 --device {params.device} "
        "--set T={wildcards.T} "
        "--threads {threads} --out {params.out} > {log} 2>&1"
