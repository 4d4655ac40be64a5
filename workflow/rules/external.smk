# Baselines produced by programs outside the suite's trainer. Each program writes the
# run-directory contract (docs/run_directory.md) for its seeds into the directory of its run
# identity, and its rule touches the block flag. The analysis reads them like any other run.
# Enable with `external_baselines: [random]`. To add one: register its program below (its source
# and the suite modules it imports are its code version) and write a rule like random_policy's.

EXTERNAL_PROGRAMS["random"] = str(REPO / "workflow" / "scripts" / "random_policy.py")


rule random_policy:
    """Worked example: a uniform-random policy, written by a standalone script (numpy only)."""
    output:
        touch(f"{RUNS}/random/{{task}}/{{run_id}}/block_{{seeds}}.done"),
    log:
        f"{LOGS}/external/random_{{task}}_{{run_id}}_{{seeds}}.log",
    message:
        "{params.identity}"
    params:
        args=lambda wc: external_args(wc, "random"),
        identity=lambda wc: describe(job_for(wc, "random")),
        program=EXTERNAL_PROGRAMS["random"],
    conda:
        "../../environment.yml"
    shell:
        "MUJOCO_GL=disable python {params.program} {params.args} > {log} 2>&1"
