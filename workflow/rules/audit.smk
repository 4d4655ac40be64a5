AUDIT = config["audit"]
AUDIT_TABLES = ("modes.csv", "modes_summary.csv", "bound_mass.csv", "kl.csv", "toy_optima.csv",
                "audit_runs.csv", "bound_patterns.csv", "initial_state.csv", "scale_match.csv")
SWEEP_TABLES = [f"{name}.csv" for name in SWEEP_NAMES]


rule audit:
    """Multimodality audit: mass on the action bounds, interior modes and KL estimates at the probe
    states (policy and behaviour distributions side by side), known optima with each run's
    return, and a table and a figure per sweep, with intervals over seeds."""
    input:
        flags=flags_of("benchmark", "audit", *SWEEP_NAMES),
        manifest=MANIFEST,
    output:
        modes=report(f"{TABLES}/modes.csv", category="Multimodality audit",
                     caption="../report/modes.rst"),
        modes_summary=f"{TABLES}/modes_summary.csv",
        bound_mass=f"{TABLES}/bound_mass.csv",
        kl=report(f"{TABLES}/kl.csv", category="Multimodality audit", caption="../report/kl.rst"),
        toy=f"{TABLES}/toy_optima.csv",
        runs=f"{TABLES}/audit_runs.csv",
        patterns=f"{TABLES}/bound_patterns.csv",
        initial=f"{TABLES}/initial_state.csv",
        scale=f"{TABLES}/scale_match.csv",
        sweeps=[report(f"{TABLES}/{name}", category="Sweeps",
                       caption="../report/sweep_table.rst") for name in SWEEP_TABLES],
        provenance=sidecars(*[f"{TABLES}/{name}" for name in AUDIT_TABLES + tuple(SWEEP_TABLES)]),
        figures=[report(f"{FIGURES}/{name}.png", category="Multimodality audit",
                        caption=f"../report/{name}.rst") for name in AUDIT_FIGURES],
        sweep_figures=[report(f"{FIGURES}/{name}.png", category="Sweeps",
                              caption="../report/sweep.rst") for name in SWEEP_NAMES],
        pdfs=[f"{FIGURES}/{name}.pdf" for name in AUDIT_FIGURES + SWEEP_NAMES],
    log:
        f"{LOGS}/audit.log",
    params:
        hist=AUDIT["histogram_states"],
        reps=STATS["reps"],
        seed=STATS["seed"],
        code=analysis_code("analysis.audit"),
        provenance=provenance_footer("analysis.audit", "benchmark", "audit", *SWEEP_NAMES),
        tables=lambda wc, output: Path(output.modes).parent,
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
    denoiser replaced by the exact value of its regression target (analysis/oracle.py), at the
    setting of every audited run, against what the runs learned."""
    input:
        flags=flags_of("benchmark", "audit", *SWEEP_NAMES),
        manifest=MANIFEST,
    output:
        table=report(f"{TABLES}/oracle.csv", category="Multimodality audit",
                     caption="../report/oracle_table.rst"),
        provenance=sidecars(f"{TABLES}/oracle.csv"),
        figure=report(f"{FIGURES}/oracle.png", category="Multimodality audit",
                      caption="../report/oracle.rst"),
        pdf=f"{FIGURES}/oracle.pdf",
    log:
        f"{LOGS}/oracle.log",
    params:
        reps=STATS["reps"],
        seed=STATS["seed"],
        code=analysis_code("analysis.oracle"),
        provenance=provenance_footer("analysis.oracle", "benchmark", "audit", *SWEEP_NAMES),
        tables=lambda wc, output: Path(output.table).parent,
        figures=lambda wc, output: Path(output.figure).parent,
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS=1 python -m analysis.oracle check --manifest {input.manifest} "
        "--tables {params.tables} --figures {params.figures} --reps {params.reps} "
        "--seed {params.seed} > {log} 2>&1"
