rule step_profile:
    """Per-phase wall-clock cost per learning step, per seed, from every run's timing.csv."""
    input:
        flags=flags_of("benchmark"),
        manifest=MANIFEST,
    output:
        table=table("step_profile.csv"),
        figure=figures_of("step_profile")[0],
        files=figure_files("step_profile"),
        provenance=sidecars_of("step_profile"),
    log:
        f"{LOGS}/step_profile.log",
    params:
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
        code=analysis_code("analysis.training.profile"),
        provenance=provenance_footer("analysis.training.profile", "benchmark"),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.training.profile steps --manifest {input.manifest} "
        "--table {output.table} --figure {params.stem} > {log} 2>&1"


rule tsweep_profile:
    """How acting and updating costs grow with the number of diffusion steps T."""
    input:
        flags=flags_of("tsweep"),
        manifest=MANIFEST,
    output:
        table=table("tsweep_profile.csv"),
        figure=figures_of("tsweep_profile")[0],
        files=figure_files("tsweep_profile"),
        provenance=sidecars_of("tsweep_profile"),
    log:
        f"{LOGS}/tsweep_profile.log",
    params:
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
        code=analysis_code("analysis.training.profile"),
        provenance=provenance_footer("analysis.training.profile", "tsweep"),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.training.profile tsweep --manifest {input.manifest} "
        "--table {output.table} --figure {params.stem} > {log} 2>&1"


rule batch_profile:
    """How the update's cost grows with the replay batch size (config profile.batch_sweep)."""
    input:
        flags=flags_of("batch_sweep"),
        manifest=MANIFEST,
    output:
        table=table("batch_profile.csv"),
        figure=figures_of("batch_profile")[0],
        files=figure_files("batch_profile"),
        provenance=sidecars_of("batch_profile"),
    log:
        f"{LOGS}/batch_profile.log",
    params:
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
        code=analysis_code("analysis.training.profile"),
        provenance=provenance_footer("analysis.training.profile", "batch_sweep"),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.training.profile batch --manifest {input.manifest} "
        "--table {output.table} --figure {params.stem} > {log} 2>&1"


# Every role that trains: the cost of the whole configuration, measured so far and projected.
TRAINING_ROLES = ("benchmark", "audit", "tsweep", "batch_sweep", *SWEEP_NAMES)


rule run_cost:
    """The hours every run of the configuration took, and the projection for the rest."""
    input:
        flags=flags_of(*TRAINING_ROLES),
        manifest=MANIFEST,
    output:
        table=table("run_cost.csv"),
        summary=table("cost_summary.csv"),
        figure=figures_of("run_cost")[0],
        files=figure_files("run_cost"),
        provenance=sidecars_of("run_cost"),
    log:
        f"{LOGS}/run_cost.log",
    params:
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
        code=analysis_code("analysis.training.profile"),
        provenance=provenance_footer("analysis.training.profile", *TRAINING_ROLES),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.training.profile runs --manifest {input.manifest} "
        "--table {output.table} --summary {output.summary} --figure {params.stem} > {log} 2>&1"
