STATS = config["stats"]


rule aggregate:
    """The configuration's runs (the manifest), validated through the contract, into one tidy
    table; run directories of other configurations are listed as 'not in config'."""
    input:
        flags=flags_of("benchmark", "audit"),
        manifest=MANIFEST,
    output:
        scores=table("scores.csv"),
        status=table("run_status.csv"),
        provenance=sidecars_of("aggregate"),
    log:
        f"{LOGS}/aggregate.log",
    params:
        code=analysis_code("analysis.benchmark.aggregate"),
        provenance=provenance_footer("analysis.benchmark.aggregate", "benchmark", "audit"),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.benchmark.aggregate --manifest {input.manifest} --out {output.scores} "
        "--status-out {output.status} > {log} 2>&1"


rule stats:
    """rliable statistics (IQM, mean, median, optimality gap, profiles, P(improvement), curves)
    as tables."""
    input:
        scores=rules.aggregate.output.scores,
        status=rules.aggregate.output.status,
        manifest=MANIFEST,
    output:
        tables=tables_of("stats"),
        provenance=sidecars_of("stats"),
    log:
        f"{LOGS}/stats.log",
    params:
        reps=STATS["reps"],
        seed=STATS["seed"],
        reference=STATS["reference"],
        tasks=("--tasks " + " ".join(STATS["tasks"]) + " ") if STATS.get("tasks") else "",
        code=analysis_code("analysis.benchmark.stats"),
        provenance=provenance_footer("analysis.benchmark.stats", "benchmark", "audit"),
        tables=lambda wc, output: Path(output.tables[0]).parent,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.benchmark.stats --manifest {input.manifest} --scores {input.scores} "
        "--status {input.status} --outdir {params.tables} --reps {params.reps} "
        "--seed {params.seed} --reference {params.reference} {params.tasks}> {log} 2>&1"


rule figures:
    """The benchmark figures, drawn from the tables of the aggregate and stats rules."""
    input:
        rules.aggregate.output.scores,
        rules.aggregate.output.status,
        rules.stats.output,
        manifest=MANIFEST,
    output:
        figures=figures_of("figures"),
        files=figure_files("figures"),
    log:
        f"{LOGS}/figures.log",
    params:
        code=analysis_code("analysis.benchmark.figures"),
        provenance=provenance_footer("analysis.benchmark.figures", "benchmark", "audit"),
        tables=lambda wc, input: Path(input.manifest).parent,
        figures=lambda wc, output: Path(output.figures[0]).parent,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.benchmark.figures --manifest {input.manifest} --tables {params.tables} "
        "--outdir {params.figures} > {log} 2>&1"


FIDELITY = config.get("fidelity")


rule fidelity:
    """Agreement of two implementations (config `fidelity`): IQM difference and P(improvement)
    with 95% CIs against a margin stated up front, overlaid curves, both audits."""
    input:
        scores=rules.aggregate.output.scores,
        status=rules.aggregate.output.status,
        modes=table_path("modes_summary.csv"),
        manifest=MANIFEST,
    output:
        tables=tables_of("fidelity"),
        provenance=sidecars_of("fidelity"),
        figures=figures_of("fidelity"),
        files=figure_files("fidelity"),
    log:
        f"{LOGS}/fidelity.log",
    params:
        candidate=(FIDELITY or {}).get("candidate"),
        reference=(FIDELITY or {}).get("reference"),
        iqm_margin=(FIDELITY or {}).get("iqm_margin", 0.05),
        poi_margin=(FIDELITY or {}).get("poi_margin", 0.1),
        reps=STATS["reps"],
        seed=STATS["seed"],
        code=analysis_code("analysis.training.fidelity"),
        provenance=provenance_footer("analysis.training.fidelity", "benchmark", "audit"),
        tables=lambda wc, output: Path(output.tables[0]).parent,
        figures=lambda wc, output: Path(output.figures[0]).parent,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.training.fidelity --manifest {input.manifest} --scores {input.scores} "
        "--status {input.status} --modes {input.modes} --candidate {params.candidate} "
        "--reference {params.reference} --iqm-margin {params.iqm_margin} "
        "--poi-margin {params.poi_margin} --reps {params.reps} --seed {params.seed} "
        "--tables {params.tables} --figures {params.figures} > {log} 2>&1"
