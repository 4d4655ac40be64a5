AUDIT = config["audit"]
AUDIT_TABLES = ("modes.csv", "modes_summary.csv", "bound_mass.csv", "kl.csv", "toy_optima.csv",
                "mq_sweep.csv")


rule audit:
    """Multimodality audit: mass on the action bounds, interior modes and KL estimates at the probe
    states (policy and behaviour distributions side by side), known optima with each run's
    return, and the M_q sweep, with intervals over seeds."""
    input:
        flags=flags_of("benchmark", "audit", "mq_sweep"),
        manifest=MANIFEST,
    output:
        modes=report(f"{TABLES}/modes.csv", category="Multimodality audit",
                     caption="../report/modes.rst"),
        modes_summary=f"{TABLES}/modes_summary.csv",
        bound_mass=f"{TABLES}/bound_mass.csv",
        kl=report(f"{TABLES}/kl.csv", category="Multimodality audit", caption="../report/kl.rst"),
        toy=f"{TABLES}/toy_optima.csv",
        sweep=report(f"{TABLES}/mq_sweep.csv", category="Multimodality audit",
                     caption="../report/mq_sweep_table.rst"),
        provenance=sidecars(*[f"{TABLES}/{name}" for name in AUDIT_TABLES]),
        figures=[report(f"{FIGURES}/{name}.png", category="Multimodality audit",
                        caption=f"../report/{name}.rst") for name in AUDIT_FIGURES],
        pdfs=[f"{FIGURES}/{name}.pdf" for name in AUDIT_FIGURES],
    log:
        f"{LOGS}/audit.log",
    params:
        hist=AUDIT["histogram_states"],
        reps=STATS["reps"],
        seed=STATS["seed"],
        code=analysis_code("analysis.audit"),
        provenance=provenance_footer("analysis.audit", "benchmark", "audit", "mq_sweep"),
        tables=lambda wc, output: Path(output.modes).parent,
        figures=lambda wc, output: Path(output.figures[0]).parent,
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS=1 python -m analysis.audit --manifest {input.manifest} --tables {params.tables} "
        "--figures {params.figures} --histogram-states {params.hist} "
        "--reps {params.reps} --seed {params.seed} > {log} 2>&1"
