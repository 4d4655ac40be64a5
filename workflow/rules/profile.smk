rule step_profile:
    """Per-phase wall-clock cost per learning step, per seed, from every run's timing.csv."""
    input:
        flags=training_flags(),
    output:
        table=report(f"{TABLES}/step_profile.csv", category="Wall-clock",
                     caption="../report/step_profile.rst"),
        figure=report(f"{FIGURES}/step_profile.png", category="Wall-clock",
                      caption="../report/step_profile.rst"),
        pdf=f"{FIGURES}/step_profile.pdf",
    log:
        f"{LOGS}/step_profile.log",
    params:
        runs=lambda wc, input: runs_root(input.flags),
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.profile steps --runs {params.runs} --table {output.table} "
        "--figure {params.stem} > {log} 2>&1"


rule tsweep_profile:
    """How acting and updating costs grow with the number of diffusion steps T."""
    input:
        expand("results/tsweep/{algo}/{task}/T{T}/block.done", algo=TSWEEP["algos"],
               task=TSWEEP["task"], T=TSWEEP["Ts"]),
    output:
        table=report(f"{TABLES}/tsweep_profile.csv", category="Wall-clock",
                     caption="../report/tsweep_profile.rst"),
        figure=report(f"{FIGURES}/tsweep_profile.png", category="Wall-clock",
                      caption="../report/tsweep_profile.rst"),
        pdf=f"{FIGURES}/tsweep_profile.pdf",
    log:
        f"{LOGS}/tsweep_profile.log",
    params:
        stem=lambda wc, output: Path(output.figure).with_suffix(""),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.profile tsweep --runs results/tsweep --table {output.table} "
        "--figure {params.stem} > {log} 2>&1"
