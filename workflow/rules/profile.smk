rule step_profile:
    """Per-phase wall-clock cost per learning step, per seed, from every run's timing.csv."""
    input:
        flags=flags_of("benchmark"),
        manifest=MANIFEST,
    output:
        table=report(f"{TABLES}/step_profile.csv", category="Wall-clock",
                     caption="../report/step_profile.rst"),
        figure=report(f"{FIGURES}/step_profile.png", category="Wall-clock",
                      caption="../report/step_profile.rst"),
        pdf=f"{FIGURES}/step_profile.pdf",
        provenance=sidecars(f"{TABLES}/step_profile.csv"),
    log:
        f"{LOGS}/step_profile.log",
    params:
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
        code=analysis_code("analysis.profile"),
        provenance=provenance_footer("analysis.profile", "benchmark"),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.profile steps --manifest {input.manifest} --table {output.table} "
        "--figure {params.stem} > {log} 2>&1"


rule tsweep_profile:
    """How acting and updating costs grow with the number of diffusion steps T."""
    input:
        flags=flags_of("tsweep"),
        manifest=MANIFEST,
    output:
        table=report(f"{TABLES}/tsweep_profile.csv", category="Wall-clock",
                     caption="../report/tsweep_profile.rst"),
        figure=report(f"{FIGURES}/tsweep_profile.png", category="Wall-clock",
                      caption="../report/tsweep_profile.rst"),
        pdf=f"{FIGURES}/tsweep_profile.pdf",
        provenance=sidecars(f"{TABLES}/tsweep_profile.csv"),
    log:
        f"{LOGS}/tsweep_profile.log",
    params:
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
        code=analysis_code("analysis.profile"),
        provenance=provenance_footer("analysis.profile", "tsweep"),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.profile tsweep --manifest {input.manifest} --table {output.table} "
        "--figure {params.stem} > {log} 2>&1"


rule batch_profile:
    """How the update's cost grows with the replay batch size (config profile.batch_sweep)."""
    input:
        flags=flags_of("batch_sweep"),
        manifest=MANIFEST,
    output:
        table=report(f"{TABLES}/batch_profile.csv", category="Wall-clock",
                     caption="../report/batch_profile.rst"),
        figure=report(f"{FIGURES}/batch_profile.png", category="Wall-clock",
                      caption="../report/batch_profile.rst"),
        pdf=f"{FIGURES}/batch_profile.pdf",
        provenance=sidecars(f"{TABLES}/batch_profile.csv"),
    log:
        f"{LOGS}/batch_profile.log",
    params:
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
        code=analysis_code("analysis.profile"),
        provenance=provenance_footer("analysis.profile", "batch_sweep"),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.profile batch --manifest {input.manifest} --table {output.table} "
        "--figure {params.stem} > {log} 2>&1"


# Every role that trains: the cost of the whole configuration, measured so far and projected.
TRAINING_ROLES = ("benchmark", "audit", "tsweep", "batch_sweep", *SWEEP_NAMES)


rule run_cost:
    """The hours every run of the configuration took, and the projection for the rest."""
    input:
        flags=flags_of(*TRAINING_ROLES),
        manifest=MANIFEST,
    output:
        table=report(f"{TABLES}/run_cost.csv", category="Wall-clock",
                     caption="../report/run_cost.rst"),
        summary=report(f"{TABLES}/cost_summary.csv", category="Wall-clock",
                       caption="../report/run_cost.rst"),
        figure=report(f"{FIGURES}/run_cost.png", category="Wall-clock",
                      caption="../report/run_cost.rst"),
        pdf=f"{FIGURES}/run_cost.pdf",
        provenance=sidecars(f"{TABLES}/run_cost.csv", f"{TABLES}/cost_summary.csv"),
    log:
        f"{LOGS}/run_cost.log",
    params:
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
        code=analysis_code("analysis.profile"),
        provenance=provenance_footer("analysis.profile", *TRAINING_ROLES),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.profile runs --manifest {input.manifest} --table {output.table} "
        "--summary {output.summary} --figure {params.stem} > {log} 2>&1"
