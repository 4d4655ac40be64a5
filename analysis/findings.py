"""The findings of a configuration, written from its tables: every preset's
results/findings.md, the study's committed docs/findings.md, and the seed-count plan.

    python -m analysis.findings --manifest results/tables/run_manifest.json \
        --tables results/tables --out results/findings.md [--margin 0.05] \
        [--command "snakemake --cores all --configfile config/study.yaml"]

Every number in the findings comes from a table of the pipeline (run_status, final_scores,
fidelity, aggregate, probability_of_improvement, modes_summary, every sweep's, and the training
cost's cost_summary and run_cost), and every section states the budget and the seeds behind it
and how many of the runs it asks for were found. The seed-count planner
(analysis.stats.seed_count_plan) is run on the final scores of the fidelity pair and written to
``seed_plan.csv`` with its provenance. Nothing here depends on time or host: the same tables give
the same bytes, so a test can check the committed file.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from analysis import stats
from analysis.manifest import load_manifest
from analysis.provenance import Provenance, sidecar_path
from qsm.cli import HelpFormatter
from qsm.rundir import atomic_write_json, atomic_write_text

MODULE = "analysis.findings"
ROLES = ("benchmark", "audit")
PLAN_FILE = "seed_plan.csv"
DEFAULT_COMMAND = "snakemake --cores all"  # the demo preset's
AUDIT_COLUMNS = (("interior_modes", "interior modes"), ("mass_any_bound", "mass on a bound"),
                 ("mass_corner", "mass in corners"), ("score_target_rms", "score-target RMS"),
                 ("final_normalized", "final score"))


def num(x, digits=3) -> str:
    x = float(x)
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


def with_ci(row, column, digits=3) -> str:
    est = row.get(column, math.nan)
    low, high = row.get(f"{column}_ci_low", math.nan), row.get(f"{column}_ci_high", math.nan)
    if not math.isfinite(float(est)):
        return "n/a"
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return num(est, digits)
    return f"{num(est, digits)} [{num(low, digits)}, {num(high, digits)}]"


def interval(row) -> str:
    """A table row's estimate with its ci_low and ci_high columns."""
    return with_ci({"v": row["estimate"], "v_ci_low": row["ci_low"],
                    "v_ci_high": row["ci_high"]}, "v")


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def read(tables: Path, name: str) -> pd.DataFrame:
    path = tables / name
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


# -- sections -----------------------------------------------------------------------------------

def runs_section(status: pd.DataFrame) -> str:
    """What was asked for and found, with budgets: the basis of every later section."""
    rows = []
    for (role, task, algo), g in status.groupby(["role", "task", "algo"], sort=True):
        budget = g["budget_steps"].dropna()
        rows.append((role, task, algo, f"{(g['status'] == 'complete').sum()} of {len(g)}",
                     f"{int(budget.iloc[0]):,}" if len(budget) else "n/a",
                     ", ".join(f"{s} {n}" for s, n in g["status"].value_counts().sort_index().items())))
    return table(("role", "task", "algorithm", "complete runs", "steps", "statuses"), rows)


def budgets(status: pd.DataFrame, tasks) -> str:
    """The step budgets of these tasks' runs, e.g. 'cheetah_run at 100,000 steps'."""
    by_budget = {}
    for task in tasks:
        steps = status.loc[status["task"] == task, "budget_steps"].dropna()
        label = ", ".join(f"{int(s):,}" for s in sorted(set(steps))) or "unknown"
        by_budget.setdefault(label, []).append(task)
    return "; ".join(f"{', '.join(t)} at {label} steps" for label, t in by_budget.items())


def fidelity_section(fidelity: pd.DataFrame, plan: pd.DataFrame | None) -> str:
    if fidelity.empty:
        return "No fidelity table (the configuration has no `fidelity:` section)."
    verdict = fidelity[fidelity["quantity"] == "verdict"].iloc[0]
    out = [f"**Verdict: {verdict['inside_band']}** ({verdict['note']})."]
    compared = fidelity[fidelity["quantity"].isin(("iqm", "iqm_difference",
                                                    "probability_of_improvement"))]
    if len(compared):
        out.append(table(("quantity", "algorithms", "task", "estimate [95% CI]", "band", "runs"),
                         [(r["quantity"], r["algo"], r["task"], interval(r),
                           f"[{num(r['band_low'])}, {num(r['band_high'])}]"
                           if pd.notna(r["band_low"]) else "", int(r["n_runs"]))
                          for _, r in compared.iterrows()]))
    if plan is not None:
        needed = stats.seeds_needed(plan)
        margin = plan["margin"].iloc[0]
        out.append(
            "**Seed-count planner** (`analysis.stats.seed_count_plan`): treating the observed "
            f"final scores ({plan['observed_seeds'].iloc[0]} seeds) as the population, imagined "
            "experiments with n seeds per implementation give these widths of the 95% interval of "
            f"the IQM difference; deciding at the margin of +-{num(margin)} needs a width of at "
            f"most {num(2 * margin)}, at that count and every larger one considered: "
            + (f"**about {needed} seeds per implementation**." if needed else
               f"**more than {int(plan['n_seeds'].max())} seeds** (the largest count considered "
               "is not enough).")
            + " At few seeds the widths need not shrink with n: the IQM of 3 scores is their "
            "mean, of 4 the mean of the middle two, and experiments drawn from a few observed "
            "scores repeat them.")
        out.append(table(("seeds", "median width", "10th-90th percentile", "decides"),
                         [(int(r.n_seeds), num(r.width_median),
                           f"{num(r.width_p10)} - {num(r.width_p90)}", "yes" if r.decides else "no")
                          for r in plan.itertuples()]))
    return "\n\n".join(out)


def benchmark_section(aggregate: pd.DataFrame, poi: pd.DataFrame) -> str:
    if aggregate.empty:
        return "No scored benchmark runs yet."
    iqm = aggregate[aggregate["metric"] == "iqm"]
    out = [table(("algorithm", "IQM [95% CI]", "runs", "tasks"),
                 [(r["algo"], interval(r), int(r["n_runs"]), r["tasks"])
                  for _, r in iqm.iterrows()])]
    if not poi.empty:
        out.append(table(("P(X > Y)", "estimate [95% CI]", "runs X / Y"),
                         [(f"{r['algo_x']} > {r['algo_y']}", interval(r),
                           f"{int(r['n_runs_x'])} / {int(r['n_runs_y'])}")
                          for _, r in poi.iterrows()]))
    out.append("Curves: `results/figures/iqm_sample_efficiency.png` and `learning_curves.png`.")
    return "\n\n".join(out)


def audit_section(modes: pd.DataFrame, tasks) -> str:
    if modes.empty:
        return "No audit table."
    modes = modes[modes["task"].isin(tasks)].sort_values(["task", "algo", "distribution"])
    found = modes[modes["n_seeds"] > 0]
    rows = [(r["task"], r["algo"], r["distribution"], int(r["n_seeds"]),
             *(with_ci(r, c) for c, _ in AUDIT_COLUMNS),
             str(r["note"]) if pd.notna(r.get("note")) else "") for _, r in found.iterrows()]
    out = [table(("task", "algorithm", "distribution", "seeds",
                  *(label for _, label in AUDIT_COLUMNS), "note"), rows)] if rows else []
    empty = sorted({f"{r['algo']} on {r['task']}" for _, r in modes[modes["n_seeds"] == 0].iterrows()})
    if empty:
        out.append(f"No audited seed yet: {', '.join(empty)}.")
    return "\n\n".join(out)


def sweep_section(sweep: pd.DataFrame, hparam: str) -> str:
    if sweep.empty:
        return "No run of this sweep could be read."
    found = sweep[sweep["n_seeds"] > 0].sort_values(["task", hparam, "distribution"])
    value = num if pd.api.types.is_numeric_dtype(sweep[hparam]) else str
    # the score target's scale beside the bound mass: how hard the actor is pushed, against the
    # sampler's unit noise, at each value of the swept hyperparameter
    rows = [(r["task"], value(r[hparam]), r["distribution"], int(r["n_seeds"]),
             with_ci(r, "final_normalized"), with_ci(r, "interior_modes"),
             with_ci(r, "mass_any_bound"), with_ci(r, "optima_covered"),
             with_ci(r, "score_target_rms"),
             str(r["note"]) if pd.notna(r.get("note")) else "") for _, r in found.iterrows()]
    out = ["Score-target RMS as in the audit: the RMS of M_q dQ/da over training's last tenth "
           "(the sampler's noise has RMS 1).",
           table(("task", hparam, "distribution", "seeds", "final score", "interior modes",
                  "mass on a bound", "optima covered", "score-target RMS", "note"), rows)
           ] if rows else []
    skipped = sweep[sweep["distribution"] == "policy"].groupby("task")["n_skipped"].sum()
    if skipped.sum():
        out.append("Not audited (missing, unfinished or unreadable): "
                   + ", ".join(f"{int(n)} runs on {task}" for task, n in skipped.items() if n)
                   + ".")
    return "\n\n".join(out)


def cost_section(summary: pd.DataFrame, runs: pd.DataFrame) -> str:
    """What the training took: measured hours per group and the projection for the rest."""
    if summary.empty:
        return "No cost table."
    rows = [(r.role, r.task, r.algo, f"{int(r.finished)} of {int(r.runs)}"
             + (f" ({int(r.slow)} slow)" if r.slow else ""),
             num(r.hours_measured), f"{num(r.hours_median)} ({int(r.peers)})",
             f"{num(r.hours_min)} - {num(r.hours_max)}" if r.finished else "n/a",
             num(r.hours_projected)) for r in summary.itertuples()]
    finished = runs.dropna(subset=["hours"]) if not runs.empty else runs
    threads = finished["threads"] if len(finished) else pd.Series(dtype=float)
    one_thread = bool(len(threads)) and bool((threads == 1).all())
    if one_thread:
        threads_text = " Every finished run recorded one thread, so its hours are core-hours."
    elif len(threads):
        counts = [f"{n} recorded {int(t)} thread(s)"
                  for t, n in threads.value_counts().sort_index().items()]
        if threads.isna().any():
            counts.append(f"{int(threads.isna().sum())} recorded no thread count")
        threads_text = f" Of the {len(threads)} finished runs, {', '.join(counts)}."
    else:
        threads_text = ""
    unestimated = [f"{r.role}: {r.algo} on {r.task}"
                   for r in summary[summary["hours_projected"].isna()].itertuples()]
    projected = summary["hours_projected"].sum()  # groups without peers (NaN) are skipped
    text = (f"**{num(summary['hours_measured'].sum())} {'core-hours' if one_thread else 'hours'} "
            f"measured** over {int(summary['finished'].sum())} finished runs of "
            f"{int(summary['runs'].sum())}; projected for the whole configuration: "
            f"**{num(projected)}**"
            + (f", not counting {len(unestimated)} group(s) with no finished peer run yet "
               f"({', '.join(unestimated)})" if unestimated else "")
            + ". Hours are each seed's share of the wall-clock of its run's timed phases "
            "(start-up and the final probe are not timed; time a process spent stopped counts). "
            "A run not finished is projected at the median of its peers, the finished runs of "
            "the same algorithm and task over every role (their number in brackets), leaving "
            "out slow runs: those at under half of their peers' median speed, stopped for a "
            "while or on a shared core."
            + threads_text + " Table: `cost_summary.csv`; per run: `run_cost.csv`; figure: "
            "`run_cost.png`.")
    return "\n\n".join([text, table(("role", "task", "algorithm", "finished", "hours measured",
                                      "median of peers", "fastest - slowest", "projected"),
                                     rows)])


# -- the document -------------------------------------------------------------------------------

def fidelity_plan(final: pd.DataFrame, fidelity: pd.DataFrame, margin: float):
    """The seed-count plan of the fidelity pair's IQM difference, or None without two seeds each."""
    if fidelity.empty or final.empty:
        return None
    pair = fidelity.loc[fidelity["quantity"] == "iqm_difference", "algo"]
    if pair.empty:
        return None
    candidate, reference = (a.strip() for a in pair.iloc[0].split(" - "))
    scored = final[final["status"].isin(("complete", "diverged")) & (final["role"] == "benchmark")]
    x = scored.loc[scored["algo"] == candidate, "final_normalized"].to_numpy(float)
    y = scored.loc[scored["algo"] == reference, "final_normalized"].to_numpy(float)
    if min(len(x), len(y)) < 2:
        return None
    return stats.seed_count_plan(x, y, margin=margin)


def findings(manifest, tables: Path, margin: float, command: str = DEFAULT_COMMAND):
    status = read(tables, "run_status.csv")
    final = read(tables, "final_scores.csv")
    fidelity = read(tables, "fidelity.csv")
    if not fidelity.empty:
        band = fidelity.loc[fidelity["quantity"] == "iqm_difference", "band_high"]
        margin = float(band.iloc[0]) if len(band) else margin
    plan = fidelity_plan(final, fidelity, margin)
    archive = manifest.archive or {}
    found, asked = int((status["status"] == "complete").sum()), len(status)
    origin = (f"the runs of `{archive['path']}`, trained at commit "
              f"{', '.join(c[:12] for c in archive.get('commits', [])) or '(none yet)'}"
              if archive else "the runs under `results/runs/`")
    benchmark_tasks = sorted(set(status.loc[status["role"] == "benchmark", "task"]))
    audit_tasks = sorted(set(status.loc[status["role"] == "audit", "task"]))
    parts = [
        "# Findings",
        "Written by `python -m analysis.findings` (the pipeline's rule `findings`: "
        f"`{command}`) from this configuration's tables, which were computed from {origin}; "
        f"configuration {manifest.config_hash[:12]}. Do not edit: the rule rewrites it whenever "
        f"a table changes. **{found} of the {asked} benchmark and audit runs the configuration "
        "asks for are complete** (each sweep's table counts its own); a section over runs that "
        "are missing says so, and its numbers are provisional until they are in. Intervals are "
        "95% bootstrap intervals over seeds; every table says how many seeds are behind a row.",
        "## Runs behind the findings", runs_section(status),
    ]
    if not fidelity.empty:
        parts += ["## Fidelity: our qsm against the authors' qsm_official",
                  fidelity_section(fidelity, plan)]
    parts += [
        f"## QSM against SAC and TD3 ({budgets(status, benchmark_tasks)})",
        benchmark_section(read(tables, "aggregate.csv"),
                          read(tables, "probability_of_improvement.csv")),
        f"## The audit ({budgets(status, benchmark_tasks + audit_tasks)})",
        "Policy = the learned sampler without exploration noise; behaviour = what the agent "
        "executes while exploring. Score-target RMS = the RMS of M_q dQ/da over training's last "
        "tenth (QSM; the sampler's noise has RMS 1). Seeds whose final return is below 0.8 of a "
        "toy task's optimum did not learn it, and their mode counts are not evidence (see note).",
        audit_section(read(tables, "modes_summary.csv"), benchmark_tasks + audit_tasks),
    ]
    for name, spec in manifest.sweeps.items():  # one section per sweep of the configuration
        parts += [f"## Sweep {name}: {spec['hparam']} of {', '.join(spec.get('algos', []))}",
                  sweep_section(read(tables, f"{name}.csv"), spec["hparam"])]
    parts += ["## Cost", cost_section(read(tables, "cost_summary.csv"),
                                      read(tables, "run_cost.csv"))]
    return "\n\n".join(parts) + "\n", plan


def write(manifest_path, tables, out, margin=0.05, command=DEFAULT_COMMAND):
    manifest = load_manifest(manifest_path)
    tables = Path(tables)
    text, plan = findings(manifest, tables, margin, command)
    atomic_write_text(out, text)
    plan = plan if plan is not None else pd.DataFrame(
        columns=["n_seeds", "statistic", "width_median", "width_p10", "width_p90",
                 "observed_seeds", "margin", "decides"])
    plan_path = tables / PLAN_FILE
    atomic_write_text(plan_path, plan.to_csv(index=False))
    provenance = Provenance.of(manifest, ("benchmark",), MODULE)
    atomic_write_json(sidecar_path(plan_path), provenance.record(PLAN_FILE, used=[]))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__,
                                 formatter_class=HelpFormatter)
    ap.add_argument("--manifest", required=True, help="the run manifest the tables were made from")
    ap.add_argument("--tables", required=True, help="the pipeline's tables directory")
    ap.add_argument("--out", required=True, help="the findings to write (Markdown)")
    ap.add_argument("--margin", type=float, default=0.05,
                    help="the IQM margin of the seed-count planner when there is no fidelity "
                         "table to take it from")
    ap.add_argument("--command", default=DEFAULT_COMMAND,
                    help="the command that regenerates the findings, named in their first lines")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    write(a.manifest, a.tables, a.out, a.margin, a.command)
    print(f"findings -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
