# The findings of a configuration, written from its tables (config `findings`: the Markdown file
# to write, e.g. docs/findings.md for the study). Every number comes from a table; the seed-count
# plan of the fidelity pair is a table of its own.

FINDINGS = config.get("findings")


rule findings:
    """The study's findings (docs/findings.md) and the seed-count plan, from its tables."""
    input:
        manifest=MANIFEST,
        tables=[f"{TABLES}/{name}" for name in ("run_status.csv", "final_scores.csv",
                                                "aggregate.csv", "probability_of_improvement.csv",
                                                "modes_summary.csv", "cost_summary.csv",
                                                "run_cost.csv")]
        + [f"{TABLES}/{sweep['name']}.csv" for sweep in config.get("sweeps") or []]
        + ([f"{TABLES}/fidelity.csv"] if config.get("fidelity") else []),
    output:
        findings=FINDINGS or "docs/findings.md",
        plan=f"{TABLES}/seed_plan.csv",
        provenance=sidecars(f"{TABLES}/seed_plan.csv"),
    log:
        f"{LOGS}/findings.log",
    params:
        code=analysis_code("analysis.findings"),
        margin=(config.get("fidelity") or {}).get("iqm_margin", 0.05),
        tables=lambda wc, output: Path(output.plan).parent,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.findings --manifest {input.manifest} --tables {params.tables} "
        "--out {output.findings} --margin {params.margin} > {log} 2>&1"
