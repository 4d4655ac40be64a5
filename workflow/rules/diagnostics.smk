rule diagnostics:
    """Training diagnostics of the benchmark and audit runs (each run's metrics.csv): their
    end-of-training values per run, and per task the diagnostics against environment steps."""
    input:
        flags=flags_of("benchmark", "audit"),
        manifest=MANIFEST,
    output:
        tables=tables_of("diagnostics"),
        provenance=sidecars_of("diagnostics"),
        figures=figures_of("diagnostics"),
        files=figure_files("diagnostics"),
    log:
        f"{LOGS}/diagnostics.log",
    params:
        tasks=" ".join(DIAGNOSTIC_TASKS),
        code=analysis_code("analysis.training.diagnostics"),
        provenance=provenance_footer("analysis.training.diagnostics", "benchmark", "audit"),
        tables=lambda wc, output: Path(output.tables[0]).parent,
        figures=lambda wc, output: Path(output.figures[0]).parent,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.training.diagnostics --manifest {input.manifest} "
        "--tables {params.tables} --figures {params.figures} --tasks {params.tasks} > {log} 2>&1"
