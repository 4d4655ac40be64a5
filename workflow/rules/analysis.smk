STATS = config["stats"]


rule expected_runs:
    """The grid the configuration asks for, so that missing runs are reported, not dropped."""
    output:
        f"{TABLES}/expected_runs.json",
    log:
        f"{LOGS}/expected_runs.log",
    params:
        runs=json.dumps(expected_runs()),
    conda:
        "../../environment.yml"
    shell:
        "printf '%s\\n' {params.runs:q} > {output} 2> {log}"


rule aggregate:
    """Every run directory, validated through the contract, into one tidy table."""
    input:
        flags=training_flags(),
        expected=rules.expected_runs.output,
    output:
        scores=f"{TABLES}/scores.csv",
        status=report(f"{TABLES}/run_status.csv", category="Runs",
                      caption="../report/run_status.rst"),
    log:
        f"{LOGS}/aggregate.log",
    params:
        runs=lambda wc, input: runs_root(input.flags),
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.aggregate --runs {params.runs} --out {output.scores} "
        "--status-out {output.status} --expected-json {input.expected} > {log} 2>&1"


rule stats:
    """rliable statistics (IQM, mean, median, optimality gap, profiles, P(improvement)) and figures."""
    input:
        scores=rules.aggregate.output.scores,
        status=rules.aggregate.output.status,
    output:
        aggregate=report(f"{TABLES}/aggregate.csv", category="Benchmark",
                         caption="../report/aggregate.rst"),
        poi=f"{TABLES}/probability_of_improvement.csv",
        curve=f"{TABLES}/iqm_curve.csv",
        final=report(f"{TABLES}/final_scores.md", category="Benchmark",
                     caption="../report/final_scores.rst"),
        figures=[report(f"{FIGURES}/{name}.png", category="Benchmark",
                        caption=f"../report/{name}.rst") for name in BENCH_FIGURES],
        pdfs=[f"{FIGURES}/{name}.pdf" for name in BENCH_FIGURES],
    log:
        f"{LOGS}/stats.log",
    params:
        reps=STATS["reps"],
        seed=STATS["seed"],
        reference=STATS["reference"],
        figures=lambda wc, output: Path(output.figures[0]).parent,
        tables=lambda wc, output: Path(output.aggregate).parent,
    conda:
        "../../environment.yml"
    shell:
        "python -m analysis.figures --scores {input.scores} --status {input.status} "
        "--outdir {params.figures} --tables-outdir {params.tables} --reps {params.reps} --seed {params.seed} "
        "--reference {params.reference} > {log} 2>&1"
