"""Training diagnostics of the configuration's runs: what each learner computed while it trained
(each run's ``metrics.csv``, the columns of :mod:`qsm.harness.metrics`), as one table of
end-of-training values and one figure per task of the diagnostics against environment steps.

Runs
----
The benchmark and audit runs of the run manifest (``analysis/records/manifest.py``), each read
through the contract validator (:func:`analysis.records.manifest.read_runs`). Metrics are read from
complete and diverged runs (a diverged run's rows end where it diverged). Every other listed run
(running, failed, missing, or ``invalid``: it breaks the run-directory contract, e.g. a run
written before ``metrics.csv`` was part of it) is listed in the table with its status and the
reason, and never stops the command; so is a run without ``metrics.csv`` or with no rows in it.

End of training
---------------
A run's metrics rows are ordered by step; of its n rows the last ``max(1, floor(n / 10))`` form
the end-of-training window (the last 10 % of the rows, at least one; with the default of about
200 rows, the last 20, i.e. the last 10 % of the learning steps). A metric's end-of-training
value is the mean of its finite values in that window (each row already being the mean over the
updates of its logging interval), empty where the window holds none (a column the learner does
not compute; a diverged run's column that is non-finite throughout the window). Defined once, in
:mod:`analysis.training.metrics`; the audit reads the score-target scale the same way.

Table ``diagnostics.csv`` (with its provenance sidecar ``diagnostics.csv.provenance.json``)
----------------------------------------------------------------------------------------
One row per listed run, columns :data:`TABLE_COLUMNS`: ``algo, task, seed, role, run_id,
status``; ``budget_steps`` and ``log_every`` (environment steps between metrics rows) from its
config; ``n_rows`` metrics rows found (empty where the file was not read); ``window_rows``,
``window_first_step``, ``last_step``: the end-of-training window; ``n_nonfinite`` the window's
non-finite cells of columns the learner computes, left out of the means; the end-of-training
value of every metric of :data:`qsm.harness.metrics.METRICS` (empty: not computed, or no metrics),
then of every column that a learner of the table's runs declares beyond them (e.g. dql's
``q_loss``); ``note``: why a run has no values, or what to know about them.

Figures ``training_diagnostics_<task>.png`` and ``.pdf``
-------------------------------------------------------
One per task (``--tasks``; by default every task of the manifest's benchmark and audit runs),
every algorithm of the task in its fixed colour (:func:`analysis.plotting.algo_color`), thin
lines one per seed and a thick line the mean over the seeds with a finite value at that step,
against environment steps: critic loss (log scale), mean Q, the score target's RMS M_q·dQ/da
beside the RMS of the denoiser's predicted noise with a reference line at 1 (the RMS of the
sampler's N(0, I) noise) for the algorithms that log a score target (the QSM family), and the
share of the sampler's action coordinates on a bound for the algorithms that log it. Legends
count the seeds with metrics and name the runs without; the caption ends with the provenance
footer (``analysis/records/provenance.py``).

Command line
------------
::

    python -m analysis.training.diagnostics --manifest results/tables/run_manifest.json \\
        --tables results/tables --figures results/figures [--tasks cheetah_run toy_bimodal ...]
"""
from __future__ import annotations

import argparse
import math
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis.benchmark.aggregate import RUN_STATUSES, SCORED_ROLES  # noqa: E402
from analysis.plotting import (algo_color, finish_figure, legend_handles,  # noqa: E402
                               no_data_panel, step_budget_text)
from analysis.records.manifest import Entry, ListedRun, load_manifest, read_runs  # noqa: E402
from analysis.records.outputs import write_table  # noqa: E402
from analysis.records.provenance import Provenance  # noqa: E402
from analysis.training.metrics import (METRICS_FILE, WINDOW_FIELDS,  # noqa: E402
                                       end_of_training, metric_columns, run_metrics)
from qsm.contract.rundir import FINISHED_STATUSES, ContractError  # noqa: E402
from qsm.declare.cli import HelpFormatter  # noqa: E402
from qsm.harness.metrics import BOUND_TOLERANCE, METRICS  # noqa: E402

MODULE = "analysis.training.diagnostics"
#: The manifest's roles read: the benchmark and audit grids.
ROLES = SCORED_ROLES
TABLE_NAME = "diagnostics.csv"
FIGURE_TEMPLATE = "training_diagnostics_{task}"  # analysis/records/catalogue.py
TABLE_COLUMNS = (["algo", "task", "seed", "role", "run_id", "status", "budget_steps",
                  "log_every", *WINDOW_FIELDS] + list(METRICS) + ["note"])
#: The column that marks an algorithm of the QSM family (it trains a sampler on a score target).
SCORE_COLUMN = "score_target_rms"


@dataclass
class RunMetrics:
    """One listed run: its status, and its metrics where they were read."""
    entry: Entry
    status: str
    note: str = ""
    budget_steps: float = math.nan
    log_every: float = math.nan
    start_steps: float = math.nan
    metrics: pd.DataFrame | None = None  # qsm.harness.metrics.COLUMNS and its own columns, by step

    @property
    def has_rows(self) -> bool:
        return self.metrics is not None and len(self.metrics) > 0

    def has(self, column) -> bool:
        """Whether the run logged a finite value of `column` at some step."""
        return self.has_rows and bool(np.isfinite(self.metrics[column].to_numpy(float)).any())


def figure_name(task: str) -> str:
    return FIGURE_TEMPLATE.format(task=task)


# ---------------------------------------------------------------------------------------------
# Reading the runs
# ---------------------------------------------------------------------------------------------

def collect(manifest) -> list[RunMetrics]:
    """Every benchmark and audit run of the manifest (a Manifest or a path to one), with its
    metrics where it is complete or diverged and has them; never raises for a bad run."""
    return [_metrics_of(listed) for listed in read_runs(manifest, ROLES, check_probes=False)]


def _metrics_of(listed: ListedRun) -> RunMetrics:
    entry, run = listed.entry, listed.run
    if run is None:
        return RunMetrics(entry, listed.status, listed.detail)
    budget = run.config.get("budget", {})
    out = RunMetrics(entry, listed.status, budget_steps=_number(budget.get("steps")),
                     log_every=_number(budget.get("log_every")),
                     start_steps=_number(budget.get("start_steps")))
    if listed.status not in FINISHED_STATUSES:  # the partial files of an unfinished run are not trusted
        out.note = f"not read: {listed.detail or listed.status}"
        return out
    try:
        out.metrics = run_metrics(run)
    except ContractError as e:
        out.note = f"not read: {e}"
        return out
    notes = []
    if out.metrics is None:
        notes.append(f"no {METRICS_FILE}")
    elif not len(out.metrics):
        notes.append(f"{METRICS_FILE} has no rows (no learning steps logged)")
    if listed.status == "diverged":
        notes.append(f"diverged at step {listed.last_step}: its rows end there")
    out.note = "; ".join(notes)
    return out


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

def diagnostics_table(runs) -> pd.DataFrame:
    """One row per run: its end-of-training values (see the module docstring)."""
    rows = []
    for r in runs:
        e = r.entry
        row = {"algo": e.algo, "task": e.task, "seed": e.seed, "role": e.role,
               "run_id": e.run_id, "status": r.status, "budget_steps": r.budget_steps,
               "log_every": r.log_every, "note": r.note}
        if r.metrics is not None:
            values = end_of_training(r.metrics)
            row.update(values)
            if values["n_nonfinite"]:
                row["note"] = "; ".join(x for x in (r.note, (
                    f"{values['n_nonfinite']} non-finite value(s) in the end-of-training window, "
                    f"left out of its means")) if x)
        rows.append(row)
    own = list(dict.fromkeys(c for r in runs if r.metrics is not None
                             for c in metric_columns(r.metrics) if c not in METRICS))
    df = pd.DataFrame(rows, columns=[*TABLE_COLUMNS[:-1], *own, TABLE_COLUMNS[-1]])
    for c in ("budget_steps", "log_every", "n_rows", "window_rows", "window_first_step",
              "last_step", "n_nonfinite"):
        df[c] = pd.array(pd.to_numeric(df[c]).round(), dtype="Int64")  # empty where not read
    df["seed"] = df["seed"].astype(np.int64)
    for m in [*METRICS, *own]:
        df[m] = df[m].astype(float)
    return df.sort_values(["algo", "task", "seed", "role"], kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------

def _seed_curves(runs, column):
    """(steps, (n_runs, n_steps) values with NaN where a run has no finite value)."""
    series = {i: r.metrics.set_index("step")[column] for i, r in enumerate(runs)}
    wide = pd.DataFrame(series).sort_index()  # steps x runs, aligned on the union of steps
    values = wide.to_numpy(dtype=float).T
    return wide.index.to_numpy(dtype=float), np.where(np.isfinite(values), values, np.nan)


def _mean_over_seeds(curves):
    """Mean over the runs with a finite value at each step (NaN where none has one)."""
    have = np.isfinite(curves)
    count = have.sum(axis=0)
    total = np.where(have, curves, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _draw(ax, runs, column, color, ls="-", positive=False) -> bool:
    """Thin per-seed lines and the thick mean over seeds of one column; x at the last finite
    row of a diverged run. False when nothing finite was there to draw."""
    runs = [r for r in runs if r.has(column)]
    if not runs:
        return False
    steps, curves = _seed_curves(runs, column)
    if positive:  # a log axis: values <= 0 are not drawn
        curves = np.where(curves > 0, curves, np.nan)
    for curve in curves:
        ax.plot(steps, curve, color=color, lw=0.6, alpha=0.4, ls=ls)
    ax.plot(steps, _mean_over_seeds(curves), color=color, lw=1.9, ls=ls)
    for r, curve in zip(runs, curves):
        finite = np.flatnonzero(np.isfinite(curve))
        if r.status == "diverged" and finite.size:
            ax.plot(steps[finite[-1]], curve[finite[-1]], marker="x", ms=7, mew=1.8,
                    color=color, ls="none")
    return bool(np.isfinite(curves).any())


def _algo_label(algo, runs) -> str:
    """'qsm (2/3 seeds with metrics; 1 diverged, 1 missing)'."""
    mine = [r for r in runs if r.entry.algo == algo]
    k = sum(r.has_rows for r in mine)
    counts = {s: sum(r.status == s for r in mine) for s in RUN_STATUSES}
    notes = [f"{counts[s]} {s}" for s in RUN_STATUSES if s != "complete" and counts[s]]
    unlogged = sum(r.status in FINISHED_STATUSES and not r.has_rows for r in mine)
    if unlogged:
        notes.append(f"{unlogged} without metrics rows")
    return f"{algo} ({k}/{len(mine)} seeds with metrics" + (
        "; " + ", ".join(notes) if notes else "") + ")"


def _schedule_text(runs) -> str:
    """'one metrics row every 50 environment steps of learning, after 1,000 random steps'
    (several values joined by '/' where the runs differ; empty where unknown)."""
    every = sorted({r.log_every for r in runs if r.has_rows and math.isfinite(r.log_every)})
    start = sorted({r.start_steps for r in runs if r.has_rows and math.isfinite(r.start_steps)})
    if not every:
        return ""
    text = "one metrics row every " + "/".join(f"{int(v):,}" for v in every) + \
        " environment steps of learning"
    if start:
        text += ", after " + "/".join(f"{int(v):,}" for v in start) + " random steps"
    return text


PANELS = (
    ("critic_loss", "critic loss [(reward units)², log scale]", "Critic loss"),
    ("q_mean", "mean Q(s, a) over the batch\n[discounted return, reward units]", "Mean Q"),
    (SCORE_COLUMN, "RMS per action coordinate\n[units of the sampler's N(0, I) noise, log scale]",
     "Score target M_q·dQ/da vs the sampler's noise scale"),
    ("bound_share", f"share of action coordinates\nwithin {BOUND_TOLERANCE:g} of ±1",
     "Sampler's actions on a bound"),
)


def plot_task(task, runs, table, outdir, provenance) -> list[Path]:
    """The training-diagnostics figure of one task (PNG and PDF)."""
    runs = [r for r in runs if r.entry.task == task]
    algos = sorted({r.entry.algo for r in runs})
    by_algo = {a: [r for r in runs if r.entry.algo == a] for a in algos}
    score_algos = [a for a in algos if any(r.has(SCORE_COLUMN) for r in by_algo[a])]
    bound_algos = [a for a in algos if any(r.has("bound_share") for r in by_algo[a])]
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 8.6))
    for ax, (column, ylabel, title) in zip(axes.ravel(), PANELS):
        drawn = False
        if column == SCORE_COLUMN:
            for a in score_algos:
                drawn |= _draw(ax, by_algo[a], SCORE_COLUMN, algo_color(a), positive=True)
                drawn |= _draw(ax, by_algo[a], "eps_pred_rms", algo_color(a), ls="--",
                               positive=True)
            if drawn:
                ax.axhline(1.0, color="0.25", ls=":", lw=1.3)
                ax.legend(handles=[
                    Line2D([0], [0], color="0.2", lw=1.8, label="score target M_q·dQ/da"),
                    Line2D([0], [0], color="0.2", lw=1.8, ls="--",
                           label="predicted noise ε_θ(s, ã, t)"),
                    Line2D([0], [0], color="0.25", lw=1.3, ls=":",
                           label="1 = RMS of the sampler's N(0, I) noise")],
                    fontsize=7, loc="best", framealpha=0.8)
        else:
            for a in (bound_algos if column == "bound_share" else algos):
                drawn |= _draw(ax, by_algo[a], column, algo_color(a),
                               positive=column == "critic_loss")
        if drawn and column in ("critic_loss", SCORE_COLUMN):
            ax.set_yscale("log")
        if column == "bound_share":
            ax.set_ylim(-0.02, 1.02)
        if not drawn:
            no_data_panel(ax, _empty_text(column, runs))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(ylabel, fontsize=8.5)
        ax.grid(alpha=0.3)
    audit_only = bool(runs) and all(r.entry.role == "audit" for r in runs)
    budget = step_budget_text(table[table["task"] == task], pd.DataFrame(), [task])
    fig.suptitle(f"Training diagnostics on {task}" + (" (audit task)" if audit_only else "")
                 + f": {budget}\n(thin: one seed; thick: mean over seeds; x: last row of a "
                 f"diverged run)", fontsize=11)
    handles = legend_handles([(_algo_label(a, runs), algo_color(a)) for a in algos])
    ncol = max(1, min(len(handles), 3))
    legend_rows = math.ceil(len(handles) / ncol) if handles else 0
    height = fig.get_figheight()
    if handles:
        fig.legend(handles=handles, loc="upper center", ncol=ncol, fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 1 - 0.55 / height))
    caption = _caption_text(runs, score_algos, bound_algos)
    top = 1 - (0.2 + 0.2 * legend_rows) / height  # the layout itself makes room for the title
    used = {r.entry.path for r in runs if r.has_rows}
    return finish_figure(fig, outdir, figure_name(task), caption, provenance, used, top=top,
                         entry=FIGURE_TEMPLATE)


def _empty_text(column, runs) -> str:
    if not runs:
        return "no runs of this task in the run manifest"
    if not any(r.has_rows for r in runs):
        return "no run of this task has metrics rows"
    if column == SCORE_COLUMN:
        return "no algorithm on this task logs a score target\n(QSM family only)"
    if column == "bound_share":
        return "no algorithm on this task logs bound_share\n(samplers: QSM family, dql)"
    return f"no algorithm on this task logs {column}"


def _caption_text(runs, score_algos, bound_algos) -> str:
    schedule = _schedule_text(runs)
    without = [r for r in runs if not r.has_rows]
    without_text = ("Runs without metrics rows (diagnostics.csv says why): " + ", ".join(
        f"{r.entry.algo} seed {r.entry.seed} ({r.status})" for r in without) + "."
                    if without else "")
    return "\n".join(x for x in (
        "Every point is one metrics.csv row of one seed: the mean over the updates of its "
        "logging interval" + (f" ({schedule})" if schedule else "") + ". Thick lines: mean "
        "over the seeds with a finite value at that step.",
        "Critic loss: QSM and dql log the sum over their two critics, SAC and TD3 the mean (so "
        "at equal per-critic error the former read about twice as high); values <= 0 are not "
        "drawn on the log axis. Mean Q: Q(s, a) over the batch and both critics, in the task's "
        "reward units (a discounted return).",
        f"Score target vs noise (algorithms that log a score target: "
        f"{', '.join(score_algos) or 'none on this task'}): solid = RMS of the score target "
        f"M_q·dQ/da at the noised replay actions the sampler is trained on; dashed = RMS of the "
        f"denoiser's predicted noise ε_θ(s, ã, t), which is regressed onto -M_q·dQ/da; dotted "
        f"= 1, the RMS of the N(0, I) noise the sampler draws and the scale its denoising steps "
        f"assume ε_θ to have, so a score target far above 1 makes steps larger than the noise "
        f"schedule's. Bound share (algorithms that log it: "
        f"{', '.join(bound_algos) or 'none on this task'}): share of the sampler's action "
        f"coordinates at the batch's next states within {BOUND_TOLERANCE:g} of -1 or 1.",
        without_text) if x)


def make_outputs(manifest, tables, figures, tasks=None, log=None) -> list[Path]:
    """diagnostics.csv (with its sidecar) and one figure per task; returns the written paths."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not hasattr(manifest, "runs"):
        manifest = load_manifest(manifest)
    runs = collect(manifest)
    prov = Provenance.of(manifest, ROLES, MODULE).with_status(
        {r.entry.path: r.status for r in runs})
    table = diagnostics_table(runs)
    with_rows = sum(r.has_rows for r in runs)
    log(f"diagnostics: {len(runs)} runs listed in {manifest.source}, {with_rows} with metrics "
        f"rows")
    for r in runs:
        if not r.has_rows:
            log(f"  no metrics: {r.entry.algo}/{r.entry.task}/seed{r.entry.seed} "
                f"({r.entry.role}) [{r.status}] {r.note}")
    paths = [write_table(Path(tables) / TABLE_NAME, table, prov,
                         {r.entry.path for r in runs if r.has_rows})]
    tasks = list(dict.fromkeys(r.entry.task for r in runs)) if tasks is None else list(tasks)
    for task in tasks:
        paths += plot_task(task, runs, table, figures, prov)
    log(f"diagnostics: wrote {len(paths)} files")
    return paths


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.training.diagnostics",
                                 description=textwrap.dedent(__doc__.split("\n\n")[0]),
                                 formatter_class=HelpFormatter)
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json: the runs to read (analysis/records/manifest.py)")
    ap.add_argument("--tables", required=True, help=f"folder for {TABLE_NAME}")
    ap.add_argument("--figures", required=True, help="folder for the PNG/PDF figures")
    ap.add_argument("--tasks", nargs="*",
                    help="one figure per task given (also for a task without runs); default: "
                         "every task of the manifest's benchmark and audit runs")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    make_outputs(args.manifest, args.tables, args.figures, tasks=args.tasks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
