STATS = config["stats"]
STATS_TABLES = ["aggregate.csv", "probability_of_improvement.csv", "performance_profile.csv",
                "iqm_curve.csv", "learning_curves.csv", "final_scores.csv", "final_scores.md"]


rule aggregate:
    """The configuration's runs (the manifest), validated through the contract, into one tidy
    table; run directories of other configurations are listed as 'not in config'."""
    input:
        flags=flags_of("benchmark", "audit"),
        manifest=MANIFEST,
    output:
        scores=f"{TABLES}/scores.csv",
        status=report(f"{TABLES}/run_status.csv", category="Runs",
                      caption="../report/run_status.rst"),
        provenance=sidecars(f"{TABLES}/scores.csv", f"{TABLES}/run_status.csv"),
    log:
        f"{LOGS}/aggregate.log",
    params:
        code=analysis_code("analysis.aggregate"),
        provenance=provenance_footer("analysis.aggregate", "benchmark", "audit"),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.aggregate --manifest {input.manifest} --out {output.scores} "
        "--status-out {output.status} > {log} 2>&1"


rule stats:
    """rliable statistics (IQM, mean, median, optimality gap, profiles, P(improvement), curves)
    as tables."""
    input:
        scores=rules.aggregate.output.scores,
        status=rules.aggregate.output.status,
        manifest=MANIFEST,
    output:
        aggregate=report(f"{TABLES}/aggregate.csv", category="Benchmark",
                         caption="../report/aggregate.rst"),
        poi=f"{TABLES}/probability_of_improvement.csv",
        profile=f"{TABLES}/performance_profile.csv",
        curve=f"{TABLES}/iqm_curve.csv",
        curves=f"{TABLES}/learning_curves.csv",
        final_csv=f"{TABLES}/final_scores.csv",
        final=report(f"{TABLES}/final_scores.md", category="Benchmark",
                     caption="../report/final_scores.rst"),
        provenance=sidecars(*[f"{TABLES}/{name}" for name in STATS_TABLES]),
    log:
        f"{LOGS}/stats.log",
    params:
        reps=STATS["reps"],
        seed=STATS["seed"],
        reference=STATS["reference"],
        tasks=("--tasks " + " ".join(STATS["tasks"]) + " ") if STATS.get("tasks") else "",
        code=analysis_code("analysis.stats"),
        provenance=provenance_footer("analysis.stats", "benchmark", "audit"),
        tables=lambda wc, output: Path(output.aggregate).parent,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.stats --manifest {input.manifest} --scores {input.scores} "
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
        figures=[report(f"{FIGURES}/{name}.png", category="Benchmark",
                        caption=f"../report/{name}.rst") for name in BENCH_FIGURES],
        pdfs=[f"{FIGURES}/{name}.pdf" for name in BENCH_FIGURES],
    log:
        f"{LOGS}/figures.log",
    params:
        code=analysis_code("analysis.figures"),
        provenance=provenance_footer("analysis.figures", "benchmark", "audit"),
        tables=lambda wc, input: Path(input.manifest).parent,
        figures=lambda wc, output: Path(output.figures[0]).parent,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.figures --manifest {input.manifest} --tables {params.tables} "
        "--outdir {params.figures} > {log} 2>&1"


FIDELITY = config.get("fidelity")


rule fidelity:
    """Agreement of two implementations (config `fidelity`): IQM difference and P(improvement)
    with 95% CIs against a margin stated up front, overlaid curves, both audits."""
    input:
        scores=rules.aggregate.output.scores,
        status=rules.aggregate.output.status,
        modes=f"{TABLES}/modes_summary.csv",
        manifest=MANIFEST,
    output:
        table=report(f"{TABLES}/fidelity.csv", category="Fidelity", caption="../report/fidelity.rst"),
        markdown=f"{TABLES}/fidelity.md",
        curves=f"{TABLES}/fidelity_curves.csv",
        provenance=sidecars(f"{TABLES}/fidelity.csv", f"{TABLES}/fidelity.md",
                            f"{TABLES}/fidelity_curves.csv"),
        figure=report(f"{FIGURES}/fidelity.png", category="Fidelity",
                      caption="../report/fidelity.rst"),
        pdf=f"{FIGURES}/fidelity.pdf",
    log:
        f"{LOGS}/fidelity.log",
    params:
        candidate=(FIDELITY or {}).get("candidate"),
        reference=(FIDELITY or {}).get("reference"),
        iqm_margin=(FIDELITY or {}).get("iqm_margin", 0.05),
        poi_margin=(FIDELITY or {}).get("poi_margin", 0.1),
        reps=STATS["reps"],
        seed=STATS["seed"],
        code=analysis_code("analysis.fidelity"),
        provenance=provenance_footer("analysis.fidelity", "benchmark", "audit"),
        tables=lambda wc, output: Path(output.table).parent,
        figures=lambda wc, output: Path(output.figure).parent,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.fidelity --manifest {input.manifest} --scores {input.scores} "
        "--status {input.status} --modes {input.modes} --candidate {params.candidate} "
        "--reference {params.reference} --iqm-margin {params.iqm_margin} "
        "--poi-margin {params.poi_margin} --reps {params.reps} --seed {params.seed} "
        "--tables {params.tables} --figures {params.figures} > {log} 2>&1"
