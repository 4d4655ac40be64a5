# The findings of a configuration, written from its tables (config `findings`: the Markdown file
# to write, results/findings.md unless the preset names another: the study's docs/findings.md).
# Every number comes from a table; the seed-count plan of the fidelity pair is a table of its own.
# The findings name the command that regenerates them: the preset's file names, not their paths,
# so that the committed study findings read the same from any checkout.
REGENERATE = "snakemake --cores all" + (
    " --configfile " + " ".join(f"config/{Path(p).name}" for p in workflow.overwrite_configfiles)
    if workflow.overwrite_configfiles else "")


rule findings:
    """The configuration's findings (results/findings.md; the study's docs/findings.md) and the
    seed-count plan, from its tables."""
    input:
        manifest=MANIFEST,
        tables=[f"{TABLES}/{name}" for name in ("run_status.csv", "final_scores.csv",
                                                "aggregate.csv", "probability_of_improvement.csv",
                                                "modes_summary.csv", "cost_summary.csv",
                                                "run_cost.csv")]
        + [f"{TABLES}/{sweep['name']}.csv" for sweep in config.get("sweeps") or []]
        + ([f"{TABLES}/fidelity.csv"] if config.get("fidelity") else []),
    output:
        findings=FINDINGS,
        plan=f"{TABLES}/seed_plan.csv",
        provenance=sidecars(f"{TABLES}/seed_plan.csv"),
    log:
        f"{LOGS}/findings.log",
    params:
        code=analysis_code("analysis.findings"),
        margin=(config.get("fidelity") or {}).get("iqm_margin", 0.05),
        tables=lambda wc, output: Path(output.plan).parent,
        command=REGENERATE,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.findings --manifest {input.manifest} --tables {params.tables} "
        "--out {output.findings} --margin {params.margin} --command '{params.command}' > {log} 2>&1"
