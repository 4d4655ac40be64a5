# Baselines produced by programs outside the suite's trainer. Each writes the run-directory
# contract (docs/run_directory.md) for its seeds and touches a block flag; the analysis rules
# find, validate and include them like any other run. Enable with `external_baselines: [random]`.


rule random_policy:
    """Worked example: a uniform-random policy, written by a standalone script (numpy only)."""
    output:
        touch(f"{RUNS}/random/{{task}}/block{{block}}.done"),
    log:
        f"{LOGS}/external/random_{{task}}_block{{block}}.log",
    params:
        seeds=lambda wc: " ".join(map(str, seed_blocks(config["seeds"], config["seed_block"])[int(wc.block)])),
        budget=lambda wc: budget_for(wc.task),
        probe_states=config["probes"]["states"],
        probe_samples=config["probes"]["samples"],
        script=str(Path(workflow.current_basedir).parent / "scripts" / "random_policy.py"),
        out=lambda wc: f"{RUNS}/random/{wc.task}",
    conda:
        "../../environment.yml"
    shell:
        "MUJOCO_GL=disable python {params.script} --task {wildcards.task} "
        "--seeds {params.seeds} --steps {params.budget[steps]} "
        "--eval-every {params.budget[eval_every]} --eval-episodes {params.budget[eval_episodes]} "
        "--probe-states {params.probe_states} --probe-samples {params.probe_samples} "
        "--out {params.out} > {log} 2>&1"
