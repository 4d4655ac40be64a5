"""Figures of the benchmark results, each written as PNG and PDF.

Figures (``{outdir}/{name}.png`` and ``.pdf``):

* ``aggregate_metrics``       median, IQM, mean and optimality gap of final normalised scores,
                              95% stratified-bootstrap CIs (rliable-style interval plot)
* ``performance_profile``     fraction of runs whose final normalised score exceeds tau, with CIs
* ``probability_of_improvement``  P(reference > other) over the shared tasks, with CIs
* ``iqm_sample_efficiency``   IQM of normalised score against environment steps, with CIs
* ``learning_curves``         one panel per task (benchmark and audit tasks): mean normalised
                              return over seeds against environment steps, with a 95% band
                              (learning_curves.csv,
                              :func:`analysis.benchmark.stats.learning_curves`)

The figures compute nothing: they draw the tables that ``analysis.benchmark.aggregate`` (scores.csv,
run_status.csv) and ``analysis.benchmark.stats`` (aggregate.csv ... learning_curves.csv,
final_scores.csv, with the bootstrap's parameters in their sidecars) wrote, read back by
:func:`analysis.benchmark.stats.read_tables`.

Every figure states in its caption the number of seeds per algorithm, the step budget, the tasks
used and the final-score definition's key point, and ends with the provenance footer (config,
runs, code versions; ``analysis/records/provenance.py``); legend labels say how many of the expected
runs have data and which are diverged/missing/failed/invalid/running, e.g.
``sac (4/5 seeds; 1 diverged, 1 missing)``.  Colours are fixed per algorithm
(:func:`analysis.plotting.algo_color`).

Python API
----------
``make_figures(result, scores_df, status_df, outdir, provenance) -> list[Path]``, one function
per figure (``plot_aggregate_metrics`` ...) taking an :class:`analysis.benchmark.stats.StatsResult`.

Command line
------------
::

    python -m analysis.benchmark.figures --manifest results/tables/run_manifest.json \\
        --tables results/tables --outdir results/figures
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.benchmark import stats
from analysis.benchmark.aggregate import DIVERGED_POLICY
from analysis.estimators import bootstrap
from analysis.records import catalogue
from analysis.records.manifest import load_manifest
from analysis.plotting import (algo_color, finish_figure, legend_below, legend_handles,
                               no_data_panel, run_label, step_budget_text)
from qsm.declare.cli import HelpFormatter

FIGURE_NAMES = tuple(catalogue.figures_of("figures", {}))  # rule figures draws these


# ---------------------------------------------------------------------------------------------
# Labels and captions
# ---------------------------------------------------------------------------------------------

def _unit_label(scores_df, status_df) -> str:
    """'return / 1000' when every run has max_return 1000 (DMC), else 'return / max return'."""
    mr = None
    if status_df is not None and "max_return" in status_df:
        vals = pd.to_numeric(status_df["max_return"], errors="coerce").dropna().unique()
        if len(vals) == 1:
            mr = float(vals[0])
    if mr is None:
        return "return / task max return"
    return f"return / {mr:g}"


def _shape(result, algo):
    m = result.matrices.matrices.get(algo)
    return None if m is None else m.shape


DROPPED_NOTE = ("'dropped' = scored runs left out so that every task has the same number of seeds "
                "(lowest seed numbers kept).")


def _seeds_text(result) -> str:
    m = result.matrices
    if not m.matrices:
        return ""
    return "Seeds per task: " + ", ".join(
        f"{a} {arr.shape[0]}" for a, arr in m.matrices.items()) + "."


def _stats_caption(result, status_df, scores_df, extra="") -> str:
    m = result.matrices
    p = result.params
    bits = [extra,
            f"Final normalised score = last evaluation return / task max return; diverged runs "
            f"score {'0' if p.get('policy', DIVERGED_POLICY) == 'zero' else 'their last finite evaluation'}.",
            f"Tasks ({len(m.tasks)}): {', '.join(m.tasks) or 'none'}. {_seeds_text(result)} "
            f"{step_budget_text(status_df, scores_df, m.tasks).capitalize()}.",
            f"95% CIs: stratified bootstrap over runs within tasks, {p.get('reps')} resamples, "
            f"seed {p.get('seed')}. " + (DROPPED_NOTE if any(m.dropped.values()) else "")]
    excluded = []
    if m.excluded_tasks:
        excluded.append("excluded tasks: " + "; ".join(f"{t} ({r})" for t, r in
                                                        sorted(m.excluded_tasks.items())))
    if m.excluded_algos:
        excluded.append("excluded algorithms: " + "; ".join(
            f"{a} ({r})" for a, r in sorted(m.excluded_algos.items())))
    if excluded:
        bits.append("Not in these statistics — " + " | ".join(excluded) + ".")
    return "\n".join(b for b in bits if b)


def _matrix_paths(result, provenance):
    return stats.paths_of(provenance, result.matrices.runs())


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def plot_aggregate_metrics(result, scores_df, status_df, outdir, provenance):
    algos = result.matrices.algos
    unit = _unit_label(scores_df, status_df)
    fig, axes = plt.subplots(1, len(bootstrap.METRICS),
                             figsize=(14, 2.2 + 0.75 * max(len(algos), 2)), sharey=True)
    agg = result.aggregate
    for ax, metric in zip(axes, bootstrap.METRICS):
        for i, algo in enumerate(algos):
            r = agg[(agg["algo"] == algo) & (agg["metric"] == metric)]
            if not len(r):
                continue
            r = r.iloc[0]
            c = algo_color(algo)
            ax.barh(i, r["ci_high"] - r["ci_low"], left=r["ci_low"], height=0.6, color=c,
                    alpha=0.75)
            ax.vlines(r["estimate"], i - 0.3, i + 0.3, color="k", lw=1.5)
        ax.set_title(bootstrap.METRIC_LABELS[metric] + (" (lower is better)" if metric ==
                                                        "optimality_gap" else ""), fontsize=10)
        ax.set_xlabel(f"1 − mean normalised score,\nscores clipped at 1 ({unit})"
                      if metric == "optimality_gap" else f"normalised score\n({unit})", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        if not algos:
            no_data_panel(ax)
    axes[0].set_yticks(range(len(algos)))
    axes[0].set_yticklabels([run_label(a, status_df, result.matrices.tasks, _shape(result, a))
                             .replace(" (", "\n(").replace("; ", ";\n") for a in algos], fontsize=8)
    axes[0].invert_yaxis() if algos else None
    fig.suptitle("Aggregate final performance (bar = 95% CI, black line = point estimate)",
                 fontsize=11)
    return finish_figure(fig, outdir, "aggregate_metrics",
                         _stats_caption(result, status_df, scores_df), provenance,
                         _matrix_paths(result, provenance), width=150)


def plot_performance_profile(result, scores_df, status_df, outdir, provenance):
    unit = _unit_label(scores_df, status_df)
    fig, ax = plt.subplots(figsize=(7.5, 6.2 + 0.2 * len(result.matrices.algos)))
    prof = result.profile
    handles = []
    for algo in result.matrices.algos:
        p = prof[prof["algo"] == algo]
        c = algo_color(algo)
        ax.plot(p["tau"], p["fraction"], color=c, lw=2)
        ax.fill_between(p["tau"], p["ci_low"], p["ci_high"], color=c, alpha=0.2, lw=0)
        handles.append((run_label(algo, status_df, result.matrices.tasks, _shape(result, algo)), c))
    if not handles:
        no_data_panel(ax)
    ax.set_xlabel(f"normalised return threshold τ ({unit})")
    ax.set_ylabel("fraction of runs with final normalised score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    legend_below(ax, handles)
    ax.set_title("Performance profile of final scores (shaded: 95% CI)", fontsize=11)
    return finish_figure(fig, outdir, "performance_profile",
                         _stats_caption(result, status_df, scores_df), provenance,
                         _matrix_paths(result, provenance), width=110)


def plot_probability_of_improvement(result, scores_df, status_df, outdir, provenance):
    poi = result.poi
    ref = result.params.get("reference", stats.DEFAULT_REFERENCE)
    fig, ax = plt.subplots(figsize=(9, 3.2 + 0.8 * max(len(poi), 2)))
    for i, (_, r) in enumerate(poi.iterrows()):
        c = algo_color(r["algo_y"])
        ax.barh(i, r["ci_high"] - r["ci_low"], left=r["ci_low"], height=0.6, color=c, alpha=0.75)
        ax.vlines(r["estimate"], i - 0.3, i + 0.3, color="k", lw=1.5)
        ax.plot(r["estimate"], i, "o", color=c, mec="k", ms=6)
    ax.set_yticks(range(len(poi)))
    ax.set_yticklabels([f"P({r['algo_x']} > {r['algo_y']})\n" +
                        run_label(r["algo_y"], status_df, result.matrices.tasks,
                                  _shape(result, r["algo_y"])).split(" ", 1)[1].replace("; ", ";\n")
                        for _, r in poi.iterrows()], fontsize=8)
    if len(poi):
        ax.invert_yaxis()
    else:
        no_data_panel(ax, f"reference algorithm '{ref}' has no aggregate data"
                      if ref not in result.matrices.matrices else "no other algorithm to compare")
    ax.axvline(0.5, color="0.3", ls="--", lw=1)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel(f"probability of improvement: chance that a {ref} run beats a run of the other\n"
                  "algorithm on the same task, averaged over tasks (final normalised scores)",
                  fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ref_label = run_label(ref, status_df, result.matrices.tasks, _shape(result, ref))
    ax.set_title(f"Probability of improvement of {ref} over each algorithm\n(dot = estimate, "
                 "bar = 95% CI; dashed line = 0.5, no difference)", fontsize=10)
    return finish_figure(fig, outdir, "probability_of_improvement",
                         _stats_caption(result, status_df, scores_df,
                                        extra=f"Reference: {ref_label}."), provenance,
                         _matrix_paths(result, provenance), width=110)


def plot_iqm_sample_efficiency(result, scores_df, status_df, outdir, provenance):
    unit = _unit_label(scores_df, status_df)
    fig, ax = plt.subplots(figsize=(7.5, 6.2 + 0.2 * len(result.matrices.algos)))
    cur = result.iqm_curve
    handles = []
    for algo in result.matrices.algos:
        d = cur[cur["algo"] == algo]
        if not len(d):
            continue
        c = algo_color(algo)
        ax.plot(d["step"], d["iqm"], color=c, lw=2, marker="o", ms=2.5)
        ax.fill_between(d["step"], d["ci_low"], d["ci_high"], color=c, alpha=0.2, lw=0)
        handles.append((run_label(algo, status_df, result.matrices.tasks, _shape(result, algo)), c))
    if not handles:
        no_data_panel(ax)
    legend_below(ax, handles)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"IQM normalised return ({unit})")
    ax.grid(alpha=0.3)
    ax.set_title("Sample efficiency: IQM over runs and tasks (shaded: 95% CI)", fontsize=11)
    extra = ("Each run contributes its latest evaluation at or before each step; steps are "
             "limited to the shortest completed run.")
    return finish_figure(fig, outdir, "iqm_sample_efficiency",
                         _stats_caption(result, status_df, scores_df, extra=extra), provenance,
                         _matrix_paths(result, provenance), width=110)


def plot_learning_curves(result, scores_df, status_df, outdir, provenance):
    unit = _unit_label(scores_df, status_df)
    tasks = sorted(set(scores_df["task"]) | (set(status_df["task"]) if status_df is not None
                                            else set()))
    bench_tasks = set(scores_df.loc[scores_df["role"] == stats.BENCHMARK_ROLE, "task"])
    if status_df is not None and len(status_df):
        bench_tasks |= set(status_df.loc[status_df["role"] == stats.BENCHMARK_ROLE, "task"])
    ncols = min(3, max(len(tasks), 1))
    nrows = max(1, -(-len(tasks) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.3 * nrows + 0.6), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    if not tasks:
        no_data_panel(axes[0, 0])
    curves = result.curves
    drawn = set()  # (algo, task, seed) of every run drawn
    for ax, task in zip(axes.flat, tasks):
        d = scores_df[(scores_df["task"] == task)]
        d = d[np.isfinite(d["normalized"].astype(float))]
        st_algos = set(status_df.loc[status_df["task"] == task, "algo"]) if status_df is not None else set()
        algos = sorted(set(d["algo"]) | st_algos)
        for algo in sorted(set(d["algo"])):
            drawn |= {(algo, task, int(s)) for s in d.loc[d["algo"] == algo, "seed"].unique()}
            band = curves[(curves["task"] == task) & (curves["algo"] == algo)]
            c = algo_color(algo)
            ax.plot(band["step"], band["mean"], color=c, lw=1.8)
            ax.fill_between(band["step"], band["ci_low"], band["ci_high"], color=c, alpha=0.2,
                            lw=0)
        if len(d):
            div = d[d["status"] == "diverged"]
            for (algo, _s), g in div.groupby(["algo", "seed"]):
                last = g.sort_values("step").iloc[-1]
                ax.plot(last["step"], last["normalized"], marker="x", ms=8, mew=2,
                        color=algo_color(algo), ls="none")
        else:
            no_data_panel(ax, "no scored runs")
        handles = [(run_label(a, status_df, [task]) if status_df is not None else a, algo_color(a))
                   for a in algos]
        if handles:
            ax.legend(handles=legend_handles(handles), fontsize=7, loc="upper left")
        audit = task not in bench_tasks
        ax.set_title(f"{task}" + (" (audit task, not in aggregates)" if audit else "") +
                     f"\n{step_budget_text(status_df, scores_df, [task])}", fontsize=9)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"normalised return ({unit})")
        ax.grid(alpha=0.3)
    fig.suptitle("Learning curves: mean evaluation return over seeds (shaded: bootstrap 95% CI "
                 "over seeds)", fontsize=11)
    p = result.params
    cap = (f"Each panel: one task; lines = mean over the seeds with a finite evaluation at that "
           f"step (complete or diverged runs), band = 95% percentile-bootstrap CI over those seeds "
           f"(rliable, {p.get('reps')} resamples, seed {p.get('seed')}; none where one seed). "
           f"x = last evaluation of a diverged run (non-finite evaluations are not drawn). "
           f"Legend: k/n seeds = runs with evaluations / runs known, then the non-complete "
           f"statuses.")
    return finish_figure(fig, outdir, "learning_curves", cap, provenance,
                         stats.paths_of(provenance, drawn), width=60 * ncols)


def make_figures(result, scores_df, status_df, outdir, provenance) -> list:
    """Draw every benchmark figure from the statistics' tables (a StatsResult, as
    :func:`analysis.benchmark.stats.read_tables` reads them) and the collected runs' tables; return
    the paths written."""
    if status_df is None:
        status_df = pd.DataFrame(columns=["algo", "task", "seed", "role", "status", "detail"])
    paths = []
    paths += plot_aggregate_metrics(result, scores_df, status_df, outdir, provenance)
    paths += plot_performance_profile(result, scores_df, status_df, outdir, provenance)
    paths += plot_probability_of_improvement(result, scores_df, status_df, outdir, provenance)
    paths += plot_iqm_sample_efficiency(result, scores_df, status_df, outdir, provenance)
    paths += plot_learning_curves(result, scores_df, status_df, outdir, provenance)
    return paths


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.benchmark.figures",
                                 description="Draw the benchmark figures (PNG + PDF) from the "
                                             "tables of analysis.benchmark.aggregate and "
                                             "analysis.benchmark.stats.",
                                 formatter_class=HelpFormatter)
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json the tables were computed from (their provenance)")
    ap.add_argument("--tables", required=True,
                    help="folder holding scores.csv and run_status.csv "
                         "(analysis.benchmark.aggregate) and the statistics' tables "
                         "(analysis.benchmark.stats)")
    ap.add_argument("--outdir", required=True, help="folder for the figures (results/figures)")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    tables = Path(args.tables)
    scores, status = stats.load_inputs(tables / "scores.csv", tables / "run_status.csv")
    result = stats.read_tables(tables)
    prov = stats.provenance_of(load_manifest(args.manifest), status, "analysis.benchmark.figures")
    paths = make_figures(result, scores, status, args.outdir, prov)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
