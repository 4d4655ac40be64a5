# The findings of a configuration, written from its tables (config `findings`: the Markdown file
# to write, results/findings.md unless the preset names another: the study's docs/findings.md).
# Every number comes from a table; the seed-count plan of the fidelity pair is a table of its own.
# The findings name the command that regenerates them: the preset's file names, not their paths,
# so that the committed study findings read the same from any checkout.
# Predictions committed before the runs they predict trained (config predictions, per model: the
# table and the commit that added it), shown beside what those runs learned.
PREDICTIONS = config.get("predictions") or {}
REGENERATE = "snakemake --cores all" + (
    " --configfile " + " ".join(f"config/{Path(p).name}" for p in workflow.overwrite_configfiles)
    if workflow.overwrite_configfiles else "")


rule references:
    """Our benchmark runs' final returns beside published learning curves of the same algorithm
    and task (results/archive/references: provenance and protocol per source), at our budget's
    step; a source whose protocol differs is labelled, never compared."""
    input:
        manifest=MANIFEST,
        final=table_path("final_scores.csv"),
        sources=str(REPO / "results" / "archive" / "references"),
    output:
        table=table("references.csv"),
        provenance=sidecars_of("references"),
    log:
        f"{LOGS}/references.log",
    params:
        code=analysis_code("analysis.benchmark.references"),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.benchmark.references compare --manifest {input.manifest} "
        "--final-scores {input.final} --out {output.table} --root {input.sources} > {log} 2>&1"


rule findings:
    """The configuration's findings (results/findings.md; the study's docs/findings.md) and the
    seed-count plan, from its tables."""
    input:
        manifest=MANIFEST,
        tables=[table_path(name) for name in (
            "run_status.csv", "final_scores.csv", "aggregate.csv", "probability_of_improvement.csv",
            "modes_summary.csv", "audit_runs.csv", "diagnostics.csv", "cost_summary.csv",
            "run_cost.csv", "initial_state.csv", "oracle.csv", "oracle_steps.csv", "scale_match.csv", "references.csv",
            "toy_optima.csv", "no_denoiser.csv")]
        + [table_path(f"{sweep['name']}.csv") for sweep in config.get("sweeps") or []]
        + ([table_path("fidelity.csv")] if config.get("fidelity") else []),
        # predictions committed before their runs trained (config predictions), shown beside them
        predictions=[str(REPO / p["table"]) for p in PREDICTIONS.values()],
    output:
        findings=FINDINGS,
        plan=table("seed_plan.csv"),
        provenance=sidecars_of("findings"),
    log:
        f"{LOGS}/findings.log",
    params:
        code=analysis_code("analysis.findings"),
        margin=(config.get("fidelity") or {}).get("iqm_margin", 0.05),
        tables=lambda wc, output: Path(output.plan).parent,
        command=REGENERATE,
        reference=config["stats"]["reference"],
        tasks=("--tasks " + " ".join(config["stats"]["tasks"]) + " ")
        if config["stats"].get("tasks") else "",
        predictions="".join(f" --prediction {model} {REPO / p['table']} {p['commit'][:12]}"
                            for model, p in PREDICTIONS.items()),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.findings --manifest {input.manifest} --tables {params.tables} "
        "--out {output.findings} --margin {params.margin} --command '{params.command}' "
        "--reference {params.reference} {params.tasks}{params.predictions} > {log} 2>&1"
