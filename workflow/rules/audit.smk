AUDIT = config["audit"]


rule audit:
    """Multimodality audit: mass on the action bounds, interior modes and KL estimates at the probe
    states (policy and behaviour distributions side by side), known optima with each run's
    return, and a table and a figure per sweep, with intervals over seeds."""
    input:
        flags=flags_of("benchmark", "audit", *SWEEP_NAMES),
        manifest=MANIFEST,
    output:
        tables=tables_of("audit"),
        provenance=sidecars_of("audit"),
        figures=figures_of("audit"),
        files=figure_files("audit"),
    log:
        f"{LOGS}/audit.log",
    params:
        hist=AUDIT["histogram_states"],
        reps=STATS["reps"],
        seed=STATS["seed"],
        code=analysis_code("analysis.audit"),
        provenance=provenance_footer("analysis.audit", "benchmark", "audit", *SWEEP_NAMES),
        tables=lambda wc, output: Path(output.tables[0]).parent,
        figures=lambda wc, output: Path(output.figures[0]).parent,
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS=1 python -m analysis.audit --manifest {input.manifest} --tables {params.tables} "
        "--figures {params.figures} --histogram-states {params.hist} "
        "--reps {params.reps} --seed {params.seed} > {log} 2>&1"


rule oracle:
    """The ideal-denoiser oracle beside the QSM runs on toy tasks: the agent's sampler with the
    denoiser replaced by the exact value of its regression target (analysis/audit/oracle.py), at the
    setting of every audited run, against what the runs learned."""
    input:
        flags=flags_of("benchmark", "audit", *SWEEP_NAMES),
        manifest=MANIFEST,
    output:
        tables=tables_of("oracle"),
        provenance=sidecars_of("oracle"),
        figures=figures_of("oracle"),
        files=figure_files("oracle"),
    log:
        f"{LOGS}/oracle.log",
    params:
        reps=STATS["reps"],
        seed=STATS["seed"],
        code=analysis_code("analysis.audit.oracle"),
        provenance=provenance_footer("analysis.audit.oracle", "benchmark", "audit", *SWEEP_NAMES),
        tables=lambda wc, output: Path(output.tables[0]).parent,
        figures=lambda wc, output: Path(output.figures[0]).parent,
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS=1 python -m analysis.audit.oracle check --manifest {input.manifest} "
        "--tables {params.tables} --figures {params.figures} --reps {params.reps} "
        "--seed {params.seed} > {log} 2>&1"
