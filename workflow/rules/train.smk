wildcard_constraints:
    algo="|".join(sorted(CATALOG)),  # agents only: external baselines have rules of their own
    run_id=r"[0-9a-f]{12}",
    seeds=r"\d+(_\d+)*",


rule train:
    """Train one algorithm on one task for one block of seeds (one process, seed-batched), into the
    directory of its run identity."""
    output:
        touch(f"{RUNS}/{{algo}}/{{task}}/{{run_id}}/block_{{seeds}}.done"),
    log:
        f"{LOGS}/train/{{algo}}_{{task}}_{{run_id}}_{{seeds}}.log",
    message:
        "{params.identity}"
    params:
        args=train_args,
        identity=lambda wc: describe(job_for(wc)),
        out=lambda wc: f"{RUNS}/{wc.algo}/{wc.task}/{wc.run_id}",
        torch_threads=torch_threads,
        gpu_slot=gpu_slot,
    threads: TRAIN_RES["threads"]
    resources:
        gpu=TRAIN_RES["gpu"],
        mem_mb=TRAIN_RES["mem_mb"],
        runtime=TRAIN_RES["runtime"],
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={params.torch_threads} MKL_NUM_THREADS={params.torch_threads} "
        "MUJOCO_GL=disable {params.gpu_slot}python -m qsm.train {params.args} "
        "--threads {params.torch_threads} --out {params.out} > {log} 2>&1"


rule run_manifest:
    """The runs this configuration asks for, by identity: what every analysis reads."""
    input:
        archive_input,
    output:
        MANIFEST,
    log:
        f"{LOGS}/run_manifest.log",
    params:
        digest=lambda wc: hash_of(run_manifest()),  # rewritten (and analyses rerun) when it changes
    localrule: True
    run:
        write_manifest(output[0], log[0])
