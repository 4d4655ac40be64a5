"""Aggregate statistics over tasks and seeds with rliable (stratified bootstrap, 95% CIs): the
benchmark's tables computed from runs, their files and the command line. The bootstrap itself,
the one engine behind every confidence interval of the analysis, is
:mod:`analysis.estimators.bootstrap`.

Input: the two tables written by :mod:`analysis.benchmark.aggregate` (scores.csv, run_status.csv)
and the run manifest they were collected from (for the provenance of the tables).
Each run's final score is computed by :func:`analysis.benchmark.aggregate.final_scores` (see
``FINAL_SCORE_DEFINITION`` there); this module never redefines it.

Which runs and tasks enter the aggregate statistics
---------------------------------------------------
* Scored runs only: status ``complete`` or ``diverged`` (diverged runs count with the score the
  final-score definition gives them).  Running / failed / missing / invalid runs are not scored;
  they are counted in ``final_scores.md`` and in the figure legends.
* Runs of role ``benchmark`` only (the ``role`` column of scores.csv, from the run manifest):
  the multimodality audit's extra tasks (role ``audit``) are listed in ``final_scores.md`` but
  never enter an aggregate.
* Only tasks on which EVERY algorithm has at least one scored run are used ("shared tasks");
  the others are listed as excluded, with the algorithms that have them.  An algorithm with no
  scored run on any remaining task is left out (and listed).
* rliable needs one rectangular (n_runs, n_tasks) matrix per algorithm.  When an algorithm has
  unequal numbers of scored runs on the shared tasks, every task is cut to that algorithm's
  smallest count, keeping the runs with the LOWEST seed numbers (a rule fixed in advance, not
  chosen by score); the dropped runs are listed.  Different algorithms may have different
  numbers of runs (the probability of improvement handles that natively).

Randomness
----------
Every interval here comes from :mod:`analysis.estimators.bootstrap` (its docstring says how
rliable's global RNG is seeded): one rliable call per algorithm (or pair), so an interval does not
depend on which other algorithms are present, and is reproducible bit for bit.

Python API
----------
``compute_all(scores_df, status_df=None, reps=2000, seed=0, reference="qsm",
policy=DIVERGED_POLICY) -> StatsResult`` (everything below at once)
``final_score_table``, ``build_matrices``, ``aggregate_metrics``, ``probability_of_improvement``,
``performance_profiles``, ``iqm_curves``, ``learning_curves``, ``final_scores_markdown``: pure
functions of frames and arrays, no files. Files: ``write_tables`` (the one step that writes
them, with provenance) and ``read_tables`` (what the figures draw from).

Command line
------------
::

    python -m analysis.benchmark.stats --manifest results/tables/run_manifest.json \\
        --scores results/tables/scores.csv --status results/tables/run_status.csv \\
        --outdir results/tables [--reps 2000] [--seed 0] [--reference qsm]

writes ``aggregate.csv`` (algo, metric, estimate, ci_low, ci_high, n_runs, n_tasks, ...),
``probability_of_improvement.csv``, ``performance_profile.csv``, ``iqm_curve.csv``,
``learning_curves.csv`` (mean over seeds per task and algorithm), ``final_scores.csv`` (one row
per run) and ``final_scores.md``, each with its provenance sidecar
(``analysis/records/provenance.py``), which also records the bootstrap's parameters (key
``statistics``). The figures of :mod:`analysis.benchmark.figures` are drawn from these tables.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.benchmark.aggregate import (DIVERGED_POLICY, FINAL_SCORE_DEFINITION, NOT_IN_CONFIG,
                                          RUN_STATUSES, SCORED_ROLES, final_scores, read_scores,
                                          read_status)
from analysis.estimators.bootstrap import (CONFIDENCE, DEFAULT_REPS, DEFAULT_SEED, METRICS,
                                           aggregate_func, iqm_over_steps, mean_bands,
                                           seeded_interval_estimates, seeded_performance_profiles)
from analysis.records.manifest import load_manifest
from analysis.records.outputs import write_table
from analysis.records.provenance import Provenance, sidecar_path
from qsm.contract.rundir import FINISHED_STATUSES
from qsm.declare.cli import HelpFormatter
from rliable import metrics


DEFAULT_REFERENCE = "qsm"
#: The role of the runs that enter aggregate statistics (analysis/records/manifest.py).
BENCHMARK_ROLE = "benchmark"
#: Thresholds of the performance profile, in normalised score.
DEFAULT_TAUS = np.linspace(0.0, 1.0, 101)


# ---------------------------------------------------------------------------------------------
# Final scores and score matrices
# ---------------------------------------------------------------------------------------------

def final_score_table(scores_df, status_df=None, policy=DIVERGED_POLICY):
    """Final score of every scored run, plus one row (NaN score) for every unscored run."""
    fin = final_scores(scores_df, policy=policy)
    if status_df is None or not len(status_df):
        return fin
    st = status_df[["algo", "task", "seed", "role", "status", "detail"]].copy()
    merged = st.merge(fin, on=["algo", "task", "seed"], how="outer", suffixes=("", "_scored"))
    # a run in scores but not in status (should not happen) keeps its own status and role
    merged["status"] = merged["status"].fillna(merged.pop("status_scored"))
    merged["role"] = merged["role"].fillna(merged.pop("role_scored"))
    merged["detail"] = merged["detail"].fillna("")
    return merged.sort_values(["algo", "task", "seed"], kind="stable", ignore_index=True)


@dataclass
class MatrixSet:
    """Rectangular final-score matrices, one per algorithm, over a common task list."""
    matrices: dict            # algo -> (n_runs, n_tasks) array, columns in `tasks` order
    tasks: list               # shared benchmark tasks used
    seeds: dict               # algo -> {task: [seeds used, ascending]}
    dropped: dict             # algo -> [(task, seed)] scored runs left out to make it rectangular
    excluded_tasks: dict      # task -> reason it is not in the aggregate
    excluded_algos: dict      # algo -> reason it is not in the aggregate

    @property
    def algos(self):
        return list(self.matrices)

    def runs(self) -> set:
        """(algo, task, seed) of every run in the matrices."""
        return {(a, t, s) for a, by_task in self.seeds.items() for t, ss in by_task.items()
                for s in ss}

    def describe(self) -> str:
        """One paragraph stating what the aggregate is computed over."""
        parts = []
        if self.tasks:
            parts.append(f"Aggregate statistics use {len(self.tasks)} task(s) shared by all "
                         f"algorithms: {', '.join(self.tasks)}.")
        else:
            parts.append("No benchmark task is shared by all algorithms: no aggregate statistics.")
        if self.excluded_tasks:
            parts.append("Excluded tasks: " + "; ".join(
                f"{t} ({r})" for t, r in sorted(self.excluded_tasks.items())) + ".")
        if self.excluded_algos:
            parts.append("Excluded algorithms: " + "; ".join(
                f"{a} ({r})" for a, r in sorted(self.excluded_algos.items())) + ".")
        for algo, dropped in sorted(self.dropped.items()):
            if dropped:
                n = self.matrices[algo].shape[0]
                parts.append(f"{algo}: unequal seed counts, each task cut to its {n} lowest-numbered "
                             f"scored seeds; dropped " +
                             ", ".join(f"{t}/seed{s}" for t, s in dropped) + ".")
        return " ".join(parts)


def benchmark_tasks(final_df) -> set:
    """Tasks with runs of role benchmark (every other task is an audit task)."""
    return set(final_df.loc[final_df["role"] == BENCHMARK_ROLE, "task"])


def build_matrices(final_df, algos=None, tasks=None):
    """Per-algorithm rectangular (n_runs, n_tasks) matrices of final normalised scores of the
    benchmark runs (role ``benchmark``).

    ``final_df`` is :func:`final_score_table` output (unscored rows are ignored).  ``algos``
    restricts (and orders) the algorithms; default: every algorithm in the data, sorted.
    ``tasks`` fixes the tasks the statistics stratify over (config ``stats.tasks``): an algorithm
    without a scored run on one of them is left out, named; default: the benchmark tasks every
    algorithm has runs on.
    """
    if tasks is not None:
        final_df = final_df.copy()
        chosen = set(tasks)
        others = sorted(set(final_df.loc[final_df["role"] == BENCHMARK_ROLE, "task"]) - chosen)
        scored = final_df[final_df["status"].isin(FINISHED_STATUSES)
                          & np.isfinite(final_df["final_normalized"].astype(float))
                          & (final_df["role"] == BENCHMARK_ROLE)]
        pool = sorted(final_df["algo"].unique()) if algos is None else list(algos)
        lacking = {a: sorted(chosen - set(scored.loc[scored["algo"] == a, "task"])) for a in pool}
        keep = [a for a in pool if not lacking[a]]
        mset = build_matrices(final_df[~final_df["task"].isin(others)], keep)
        for t in others:
            mset.excluded_tasks[t] = "not among the aggregated tasks (stats.tasks)"
        for a in pool:
            if lacking[a]:
                mset.excluded_algos[a] = ("no scored run on " + ", ".join(lacking[a])
                                          + " (of the aggregated tasks)")
        return mset
    scored = final_df[final_df["status"].isin(FINISHED_STATUSES)
                      & np.isfinite(final_df["final_normalized"].astype(float))]
    all_algos = sorted(final_df["algo"].unique()) if algos is None else list(algos)
    excluded_tasks, excluded_algos = {}, {}
    bench_tasks = benchmark_tasks(final_df)
    for t in sorted(set(final_df["task"]) - bench_tasks):
        roles = sorted(set(final_df.loc[final_df["task"] == t, "role"]))
        excluded_tasks[t] = f"{'/'.join(roles)} task, not a benchmark"
    bench = scored[scored["role"] == BENCHMARK_ROLE]
    have = {a: set(bench.loc[bench["algo"] == a, "task"]) for a in all_algos}
    for a in all_algos:
        if not have[a]:
            excluded_algos[a] = "no scored run on a benchmark task"
    use_algos = [a for a in all_algos if have[a]]
    all_tasks = sorted(set().union(*have.values())) if have else []
    tasks = [t for t in all_tasks if all(t in have[a] for a in use_algos)]
    for t in all_tasks:
        if t not in tasks:
            with_t = [a for a in use_algos if t in have[a]]
            excluded_tasks[t] = "not run by every algorithm; scored only for " + ", ".join(with_t)
    matrices, seeds, dropped = {}, {}, {}
    for a in use_algos if tasks else []:
        sub = bench[bench["algo"] == a]
        per_task = {t: sub[sub["task"] == t].sort_values("seed") for t in tasks}
        n = min(len(g) for g in per_task.values())
        seeds[a] = {t: [int(s) for s in g["seed"].iloc[:n]] for t, g in per_task.items()}
        dropped[a] = [(t, int(s)) for t, g in per_task.items() for s in g["seed"].iloc[n:]]
        matrices[a] = np.column_stack(
            [g["final_normalized"].to_numpy(float)[:n] for g in per_task.values()])
    if not tasks:
        for a in use_algos:
            excluded_algos.setdefault(a, "no task shared by all algorithms")
    return MatrixSet(matrices, tasks, seeds, dropped, excluded_tasks, excluded_algos)


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

def aggregate_metrics(matrices, reps=DEFAULT_REPS, seed=DEFAULT_SEED, confidence=CONFIDENCE):
    """Median, IQM, mean and optimality gap with stratified-bootstrap CIs, one row per (algo, metric).

    ``matrices``: {algo: (n_runs, n_tasks) array} or a :class:`MatrixSet`.
    """
    mset = matrices if isinstance(matrices, MatrixSet) else None
    mats = mset.matrices if mset else matrices
    points, intervals = seeded_interval_estimates(mats, aggregate_func, reps, seed, confidence)
    rows = []
    for algo, m in mats.items():
        for j, metric in enumerate(METRICS):
            rows.append({"algo": algo, "metric": metric, "estimate": float(points[algo][j]),
                         "ci_low": float(intervals[algo][0, j]),
                         "ci_high": float(intervals[algo][1, j]),
                         "n_runs": int(m.size), "n_tasks": int(m.shape[1]),
                         "runs_per_task": int(m.shape[0]),
                         "tasks": ";".join(mset.tasks) if mset else "",
                         "reps": int(reps), "seed": int(seed)})
    return pd.DataFrame(rows, columns=["algo", "metric", "estimate", "ci_low", "ci_high", "n_runs",
                                       "n_tasks", "runs_per_task", "tasks", "reps", "seed"])


def probability_of_improvement(matrices, reference=DEFAULT_REFERENCE, reps=DEFAULT_REPS,
                               seed=DEFAULT_SEED, confidence=CONFIDENCE):
    """P(reference > other) averaged over tasks, with CIs, for every other algorithm.

    Runs of the two algorithms are resampled independently within each task (rliable's
    StratifiedIndependentBootstrap), so their run counts may differ.  Empty if the reference
    algorithm is absent.
    """
    mats = matrices.matrices if isinstance(matrices, MatrixSet) else matrices
    cols = ["algo_x", "algo_y", "estimate", "ci_low", "ci_high", "n_runs_x", "n_runs_y",
            "n_tasks", "reps", "seed"]
    if reference not in mats:
        return pd.DataFrame(columns=cols)
    pairs = {other: [mats[reference], mats[other]] for other in mats if other != reference}
    points, intervals = seeded_interval_estimates(pairs, metrics.probability_of_improvement,
                                                  reps, seed, confidence)
    rows = [{"algo_x": reference, "algo_y": other, "estimate": float(points[other]),
             "ci_low": float(np.ravel(intervals[other])[0]),
             "ci_high": float(np.ravel(intervals[other])[1]),
             "n_runs_x": int(mats[reference].size), "n_runs_y": int(mats[other].size),
             "n_tasks": int(mats[reference].shape[1]), "reps": int(reps), "seed": int(seed)}
            for other in pairs]
    return pd.DataFrame(rows, columns=cols)


def performance_profiles(matrices, taus=DEFAULT_TAUS, reps=DEFAULT_REPS, seed=DEFAULT_SEED,
                         confidence=CONFIDENCE):
    """Score-distribution performance profiles (fraction of runs with score > tau) with CIs.

    One ``rly.create_performance_profile`` call per algorithm, global RNG seeded before each
    (:func:`analysis.estimators.bootstrap.seeded_performance_profiles`). Tidy output: algo, tau,
    fraction, ci_low, ci_high.
    """
    mats = matrices.matrices if isinstance(matrices, MatrixSet) else matrices
    taus = np.asarray(taus, dtype=float)
    prof, cis = seeded_performance_profiles(mats, taus, reps, seed, confidence)
    frames = []
    for algo, m in mats.items():
        frames.append(pd.DataFrame({"algo": algo, "tau": taus, "fraction": prof[algo],
                                    "ci_low": cis[algo][0], "ci_high": cis[algo][1],
                                    "n_runs": int(m.size)}))
    if not frames:
        return pd.DataFrame(columns=["algo", "tau", "fraction", "ci_low", "ci_high", "n_runs"])
    return pd.concat(frames, ignore_index=True)


def _run_curve(g, policy, grid):
    """Normalised score of one run on the step grid (latest evaluation at or before each step)."""
    g = g.sort_values("step")
    steps = g["step"].to_numpy(float)
    vals = g["normalized"].to_numpy(float).copy()
    diverged = str(g["status"].iloc[-1]) == "diverged"
    if diverged:
        bad = ~np.isfinite(vals)
        if policy == "zero":
            vals[bad] = 0.0
        else:
            vals = pd.Series(vals).ffill().fillna(0.0).to_numpy()
    idx = np.searchsorted(steps, grid, side="right") - 1
    out = np.where(idx >= 0, vals[np.clip(idx, 0, None)], np.nan)
    if diverged:  # after its last evaluation a diverged run keeps its final (policy) score
        after = grid > steps[-1]
        fill = 0.0 if policy == "zero" else (vals[-1] if vals.size else 0.0)
        out[after] = fill
    return out


def curve_arrays(scores_df, mset: MatrixSet, policy=DIVERGED_POLICY, max_points=200):
    """(n_runs, n_tasks, n_steps) arrays of normalised score over training, per algorithm.

    Uses exactly the runs in ``mset``.  Step grid: every evaluation step of those runs up to the
    shortest horizon of a complete run (the common budget); each run contributes its latest
    evaluation at or before a grid step; a diverged run keeps its final-score value after its
    last evaluation.  Grid steps before some run's first evaluation are dropped; at most
    ``max_points`` steps (evenly thinned).  Returns (grid, {algo: array}).
    """
    if not mset.matrices:
        return np.array([]), {}
    keyed = {k: g for k, g in scores_df.groupby(["algo", "task", "seed"], sort=False)}
    runs = {a: {t: [keyed[(a, t, s)] for s in ss] for t, ss in mset.seeds[a].items()}
            for a in mset.matrices}
    all_runs = [g for a in runs for t in runs[a] for g in runs[a][t]]
    steps = np.unique(np.concatenate([g["step"].to_numpy(float) for g in all_runs]))
    horizons = [g["step"].max() for g in all_runs if str(g["status"].iloc[-1]) == "complete"]
    if horizons:
        steps = steps[steps <= min(horizons)]
    arrays = {}
    for a in runs:
        arrays[a] = np.stack([np.stack([_run_curve(g, policy, steps) for g in runs[a][t]])
                              for t in mset.tasks], axis=1)
    ok = np.all([np.isfinite(arr).all(axis=(0, 1)) for arr in arrays.values()], axis=0)
    steps = steps[ok]
    arrays = {a: arr[..., ok] for a, arr in arrays.items()}
    if steps.size > max_points:
        keep = np.unique(np.round(np.linspace(0, steps.size - 1, max_points)).astype(int))
        steps = steps[keep]
        arrays = {a: arr[..., keep] for a, arr in arrays.items()}
    return steps, arrays


def iqm_curves(scores_df, mset: MatrixSet, reps=DEFAULT_REPS, seed=DEFAULT_SEED,
               policy=DIVERGED_POLICY, confidence=CONFIDENCE):
    """IQM of normalised score at each evaluation step with stratified-bootstrap CIs (tidy)."""
    cols = ["algo", "step", "iqm", "ci_low", "ci_high", "n_runs", "n_tasks"]
    steps, arrays = curve_arrays(scores_df, mset, policy)
    if steps.size == 0:
        return pd.DataFrame(columns=cols)
    points, intervals = seeded_interval_estimates(arrays, iqm_over_steps, reps, seed, confidence)
    frames = [pd.DataFrame({"algo": a, "step": steps.astype(np.int64), "iqm": points[a],
                            "ci_low": intervals[a][0], "ci_high": intervals[a][1],
                            "n_runs": int(arr.shape[0] * arr.shape[1]), "n_tasks": arr.shape[1]})
              for a, arr in arrays.items()]
    return pd.concat(frames, ignore_index=True)[cols]


def learning_curves(scores_df, reps=DEFAULT_REPS, seed=DEFAULT_SEED, confidence=CONFIDENCE):
    """Mean normalised return over seeds at every evaluation step of every (task, algorithm) of
    the scores (benchmark and audit tasks), with its interval
    (:func:`analysis.estimators.bootstrap.mean_bands`): columns ``task, algo, step, mean, ci_low,
    ci_high, n_seeds``. A seed counts at a step where its evaluation there is finite (a diverged
    run's curve ends at its last finite evaluation)."""
    cols = ["task", "algo", "step", "mean", "ci_low", "ci_high", "n_seeds"]
    finite = scores_df[np.isfinite(scores_df["normalized"].astype(float))]
    frames = []
    for (task, algo), runs in finite.groupby(["task", "algo"], sort=True):
        wide = runs.pivot_table(index="seed", columns="step", values="normalized",
                                aggfunc="last")
        mean, lo, hi, count = mean_bands(wide.to_numpy(dtype=float), reps=reps, seed=seed,
                                         confidence=confidence)
        frames.append(pd.DataFrame({"task": task, "algo": algo,
                                    "step": wide.columns.to_numpy().astype(np.int64),
                                    "mean": mean, "ci_low": lo, "ci_high": hi,
                                    "n_seeds": count.astype(np.int64)}))
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]



# ---------------------------------------------------------------------------------------------
# Final-score report
# ---------------------------------------------------------------------------------------------

def status_summary(statuses) -> str:
    """'3 complete, 1 diverged, 1 missing' in the canonical status order."""
    counts = pd.Series(list(statuses), dtype=object).value_counts()
    return ", ".join(f"{counts[s]} {s}" for s in RUN_STATUSES if s in counts) or "no runs"


def _fmt(x, digits):
    return "—" if not np.isfinite(x) else f"{x:.{digits}f}"


def final_scores_markdown(final_df, mset: MatrixSet | None = None) -> str:
    """Markdown report: the final-score definition, then one table per task."""
    lines = ["# Final scores", "", FINAL_SCORE_DEFINITION, ""]
    if mset is not None:
        lines += [mset.describe(), ""]
    if not len(final_df):
        lines.append("No runs found.")
        return "\n".join(lines) + "\n"
    for task in sorted(final_df["task"].unique()):
        sub = final_df[final_df["task"] == task]
        note = ""
        if mset is not None and task in mset.excluded_tasks:
            note = f" (not in aggregate statistics: {mset.excluded_tasks[task]})"
        lines += [f"## {task}{note}", "",
                  "Mean ± sample standard deviation (n − 1) over the scored runs (complete or "
                  "diverged) of each algorithm.", "",
                  "| algorithm | final return, mean ± std | final normalised score, mean ± std "
                  "| per-seed final return | runs |",
                  "|---|---|---|---|---|"]
        for algo in sorted(sub["algo"].unique()):
            g = sub[sub["algo"] == algo].sort_values("seed")
            sc = g[g["status"].isin(FINISHED_STATUSES)]
            r = sc["final_return"].to_numpy(float)
            z = sc["final_normalized"].to_numpy(float)
            if len(r):
                sd_r = np.std(r, ddof=1) if len(r) > 1 else np.nan
                sd_z = np.std(z, ddof=1) if len(z) > 1 else np.nan
                mean_r = f"{_fmt(r.mean(), 1)} ± {_fmt(sd_r, 1)}"
                mean_z = f"{_fmt(z.mean(), 3)} ± {_fmt(sd_z, 3)}"
            else:
                mean_r = mean_z = "—"
            per_seed = []
            for _, row in g.iterrows():
                if row["status"] == "complete":
                    per_seed.append(f"s{row['seed']}: {row['final_return']:.1f}")
                elif row["status"] == "diverged":
                    lf = row.get("last_finite_return", np.nan)
                    extra = (f"; last finite {lf:.1f} at step {int(row['last_finite_step'])}"
                             if np.isfinite(lf) else "")
                    per_seed.append(f"s{row['seed']}: {row['final_return']:.1f} (diverged{extra})")
                else:
                    per_seed.append(f"s{row['seed']}: {row['status']}")
            lines.append(f"| {algo} | {mean_r} | {mean_z} | {', '.join(per_seed)} "
                         f"| {status_summary(g['status'])} |")
        lines.append("")
    problems = final_df[~final_df["status"].isin(("complete",))]
    if len(problems):
        lines += ["## Runs that are not complete", "", "| algorithm | task | seed | status | detail |",
                  "|---|---|---|---|---|"]
        for _, r in problems.iterrows():
            detail = str(r.get("detail", "") or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r['algo']} | {r['task']} | {r['seed']} | {r['status']} | {detail} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------------------------

@dataclass
class StatsResult:
    final: pd.DataFrame
    matrices: MatrixSet
    aggregate: pd.DataFrame
    poi: pd.DataFrame
    profile: pd.DataFrame
    iqm_curve: pd.DataFrame
    curves: pd.DataFrame      # learning_curves(): mean over seeds per task and algorithm
    markdown: str
    params: dict = field(default_factory=dict)


def compute_all(scores_df, status_df=None, reps=DEFAULT_REPS, seed=DEFAULT_SEED,
                reference=DEFAULT_REFERENCE, policy=DIVERGED_POLICY, taus=DEFAULT_TAUS,
                tasks=None):
    final = final_score_table(scores_df, status_df, policy=policy)
    mset = build_matrices(final, tasks=tasks)
    return StatsResult(
        final=final, matrices=mset,
        aggregate=aggregate_metrics(mset, reps=reps, seed=seed),
        poi=probability_of_improvement(mset, reference=reference, reps=reps, seed=seed),
        profile=performance_profiles(mset, taus=taus, reps=reps, seed=seed),
        iqm_curve=iqm_curves(scores_df, mset, reps=reps, seed=seed, policy=policy),
        curves=learning_curves(scores_df, reps=reps, seed=seed),
        markdown=final_scores_markdown(final, mset),
        params={"reps": reps, "seed": seed, "reference": reference, "policy": policy,
                **({"tasks": list(tasks)} if tasks is not None else {})})


def provenance_of(manifest, status_df, module) -> Provenance:
    """The provenance of tables and figures computed from scores.csv: the manifest's scored roles,
    with the status each run was collected in (run_status.csv)."""
    prov = Provenance.of(manifest, SCORED_ROLES, module)
    if status_df is not None and len(status_df):
        prov.with_status(dict(zip(status_df["path"].astype(str), status_df["status"])))
    return prov


def paths_of(provenance: Provenance, keys) -> set:
    """Manifest paths of the runs (algo, task, seed) in `keys`."""
    keys = {(str(a), str(t), int(s)) for a, t, s in keys}
    return {r["path"] for r in provenance.runs
            if (r["algo"], r["task"], int(r["seed"])) in keys}


#: The tables of a StatsResult, in the order they are written, and the attribute each holds.
TABLES = {"aggregate.csv": "aggregate", "probability_of_improvement.csv": "poi",
          "performance_profile.csv": "profile", "iqm_curve.csv": "iqm_curve",
          "learning_curves.csv": "curves", "final_scores.csv": "final",
          "final_scores.md": "markdown"}
#: The sidecar key under which every table records the parameters of its statistics.
PARAMS_KEY = "statistics"


def write_tables(result: StatsResult, outdir, provenance: Provenance):
    """Write the tables of a :class:`StatsResult` into ``outdir``, each with its provenance
    sidecar (which also records the bootstrap's parameters); return the paths."""
    outdir = Path(outdir)
    in_matrices = paths_of(provenance, result.matrices.runs())
    fin = result.final
    scored = paths_of(provenance, fin.loc[fin["status"].isin(FINISHED_STATUSES),
                                          ["algo", "task", "seed"]].itertuples(index=False))
    used = {"final_scores.csv": scored, "final_scores.md": scored, "learning_curves.csv": scored}
    return {name: write_table(outdir / name, getattr(result, attr), provenance,
                              used.get(name, in_matrices), extra={PARAMS_KEY: result.params})
            for name, attr in TABLES.items()}


def read_tables(outdir) -> StatsResult:
    """The StatsResult that :func:`write_tables` wrote into ``outdir``, read back from the
    tables (the score matrices rebuilt from final_scores.csv by :func:`build_matrices`)."""
    outdir = Path(outdir)
    read = {}
    for name, attr in TABLES.items():
        path = outdir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such table (python -m analysis.benchmark.stats "
                                    "writes it)")
        read[attr] = (path.read_text() if name.endswith(".md") else
                      pd.read_csv(path, dtype={"algo": str, "task": str, "algo_x": str,
                                               "algo_y": str, "status": str, "role": str,
                                               "detail": str}, keep_default_na=False,
                                  na_values=[""]))
    read["final"]["detail"] = read["final"]["detail"].fillna("")
    side = json.loads(sidecar_path(outdir / "aggregate.csv").read_text())
    params = side[PARAMS_KEY]
    return StatsResult(matrices=build_matrices(read["final"], tasks=params.get("tasks")),
                       params=params, **read)


def load_inputs(scores_path, status_path=None):
    scores = read_scores(scores_path)
    status = read_status(status_path) if status_path else None
    if status is not None:  # runs of other configurations are listed for reference only
        status = status[status["status"] != NOT_IN_CONFIG].reset_index(drop=True)
    return scores, status


def add_common_args(ap):
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json the scores were collected from "
                         "(analysis/records/manifest.py)")
    ap.add_argument("--scores", required=True, help="scores.csv from analysis.benchmark.aggregate")
    ap.add_argument("--status", help="run_status.csv from analysis.benchmark.aggregate "
                                     "(default: the runs of scores.csv only; missing and invalid "
                                     "runs unlisted)")
    ap.add_argument("--reps", type=int, default=DEFAULT_REPS, help="bootstrap replications")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the bootstrap")
    ap.add_argument("--reference", default=DEFAULT_REFERENCE,
                    help="algorithm whose probability of improvement over the others is reported")
    return ap


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.benchmark.stats",
                                 description="Aggregate statistics with rliable.",
                                 formatter_class=HelpFormatter)
    add_common_args(ap)
    ap.add_argument("--outdir", required=True, help="folder for the tables (results/tables)")
    ap.add_argument("--tasks", nargs="+", default=None,
                    help="the tasks the statistics stratify over (default: the benchmark tasks "
                         "every algorithm has runs on)")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    scores, status = load_inputs(args.scores, args.status)
    result = compute_all(scores, status, reps=args.reps, seed=args.seed, reference=args.reference,
                         tasks=args.tasks)
    prov = provenance_of(load_manifest(args.manifest), status, "analysis.benchmark.stats")
    paths = write_tables(result, args.outdir, prov)
    print(result.matrices.describe(), file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
