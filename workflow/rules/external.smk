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


# The authors' own implementation (Alescontrela/score_matching_rl, JAX) trained under this suite's
# protocol by workflow/scripts/official_baseline.py: qsm_official, sac_official, td3_official.
# Needs the optional extra (`QSM_EXTRAS=official bash scripts/install.sh`). The code comes from
# config `official.path` (relative paths: to the suite's checkout), else from a clone of
# `official.repo` at `official.commit` (common.smk: OFFICIAL, official_checkout); the commit is
# part of the runs' code version.
for _learner in ("qsm", "sac", "td3"):
    EXTERNAL_PROGRAMS[f"{_learner}_official"] = str(REPO / "workflow" / "scripts" / "official_baseline.py")
    EXTERNAL_CODE[f"{_learner}_official"] = f"{OFFICIAL['repo']}@{OFFICIAL['commit']}"
    EXTERNAL_PACKAGES[f"{_learner}_official"] = OFFICIAL_PACKAGES


rule official_clone:
    """Clone the official implementation at the pinned commit (needs network access once)."""
    output:
        directory(OFFICIAL_CLONE),
    log:
        f"{LOGS}/external/official_clone.log",
    params:
        repo=OFFICIAL["repo"],
        commit=OFFICIAL["commit"],
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "(git clone --quiet {params.repo} {output} && "
        "git -C {output} checkout --quiet {params.commit}) > {log} 2>&1"


rule official_baseline:
    """The official QSM (or SAC, TD3) learner, trained by a loop written here: the same
    environments, evaluation, probe states and timing as the suite's agents."""
    input:
        checkout=lambda wc: [] if official_checkout() != OFFICIAL_CLONE else OFFICIAL_CLONE,
    output:
        touch(f"{RUNS}/{{official}}/{{task}}/{{run_id}}/block_{{seeds}}.done"),
    log:
        f"{LOGS}/external/{{official}}_{{task}}_{{run_id}}_{{seeds}}.log",
    message:
        "{params.identity}"
    wildcard_constraints:
        official="qsm_official|sac_official|td3_official",
    params:
        args=lambda wc: external_args(wc, wc.official, learner=True),
        identity=lambda wc: describe(job_for(wc, wc.official)),
        learner=lambda wc: wc.official.removesuffix("_official"),
        checkout=lambda wc: official_checkout(),
        program=EXTERNAL_PROGRAMS["qsm_official"],
        gpu_slot=gpu_slot,
    threads: TRAIN_RES["threads"]
    resources:
        gpu=TRAIN_RES["gpu"],
        mem_mb=TRAIN_RES["mem_mb"],
        runtime=TRAIN_RES["runtime"],
    conda:
        "../../environment-official.yml"
    shell:
        "OMP_NUM_THREADS={threads} MUJOCO_GL=disable {params.gpu_slot}python {params.program} "
        "--algo {params.learner} {params.args} --official-path {params.checkout} "
        "--threads {threads} > {log} 2>&1"
