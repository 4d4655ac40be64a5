AUDIT = config["audit"]


rule audit:
    """Multimodality audit: mode counts and KL estimates at the probe states, with intervals."""
    input:
        flags=flags_of("benchmark", "audit", "mq_sweep"),
        manifest=MANIFEST,
    output:
        modes=report(f"{TABLES}/modes.csv", category="Multimodality audit",
                     caption="../report/modes.rst"),
        modes_summary=f"{TABLES}/modes_summary.csv",
        kl=report(f"{TABLES}/kl.csv", category="Multimodality audit", caption="../report/kl.rst"),
        toy=f"{TABLES}/toy_optima.csv",
        provenance=sidecars(*[f"{TABLES}/{name}" for name in
                              ("modes.csv", "modes_summary.csv", "kl.csv", "toy_optima.csv")]),
        figures=[report(f"{FIGURES}/{name}.png", category="Multimodality audit",
                        caption=f"../report/{name}.rst") for name in AUDIT_FIGURES],
        pdfs=[f"{FIGURES}/{name}.pdf" for name in AUDIT_FIGURES],
    log:
        f"{LOGS}/audit.log",
    params:
        distribution=AUDIT["distribution"],
        hist=AUDIT["histogram_states"],
        reps=STATS["reps"],
        seed=STATS["seed"],
        code=analysis_code("analysis.audit"),
        provenance=provenance_footer("analysis.audit", "benchmark", "audit"),
        tables=lambda wc, output: Path(output.modes).parent,
        figures=lambda wc, output: Path(output.figures[0]).parent,
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS=1 python -m analysis.audit --manifest {input.manifest} --tables {params.tables} "
        "--figures {params.figures} --distribution {params.distribution} --histogram-states {params.hist} "
        "--reps {params.reps} --seed {params.seed} > {log} 2>&1"
