"""The plotting kit of the analysis: it takes tables (DataFrames) and figures, and draws and saves
figures; it computes no statistic and imports neither :mod:`analysis.benchmark.stats` nor rliable
(tested). Importing it selects matplotlib's Agg backend (files, no display).

This is the one plotting module of the analysis: every figure of every analysis (benchmark,
audit, diagnostics, profiles, fidelity, oracle, sweeps) takes its colours (:func:`algo_color`),
caption, footer, layout and files (:func:`finish_figure`), empty panels (:func:`no_data_panel`)
and legends (:func:`legend_handles`, :func:`legend_below`, :func:`run_label`,
:func:`step_budget_text`) from here. Colours are fixed per algorithm (:data:`PALETTE`, with a
deterministic fallback for new names, :func:`algo_color`).
"""
from __future__ import annotations

import hashlib
import textwrap

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis.benchmark.aggregate import RUN_STATUSES  # noqa: E402
from qsm.contract.rundir import FINISHED_STATUSES  # noqa: E402
from analysis.records.outputs import write_figure  # noqa: E402

#: Fixed colours (Okabe–Ito, colour-blind safe) for the algorithms we know about.
PALETTE = {
    "qsm": "#0072B2",     # blue
    "sac": "#D55E00",     # vermillion
    "td3": "#009E73",     # bluish green
    "dql": "#CC79A7",     # reddish purple
    "random": "#7F7F7F",  # grey
}
#: Colours for algorithms not in PALETTE, picked by a stable hash of the name.
FALLBACK_COLORS = ("#E69F00", "#56B4E9", "#F0E442", "#000000", "#8C564B", "#17BECF",
                   "#BCBD22", "#9467BD", "#1F3A93", "#A50026", "#4D9221", "#B35806")


def algo_color(algo: str) -> str:
    """Colour of an algorithm: fixed for known names, else a hash-based pick (same every run)."""
    if algo in PALETTE:
        return PALETTE[algo]
    h = int(hashlib.sha256(str(algo).encode()).hexdigest(), 16)
    return FALLBACK_COLORS[h % len(FALLBACK_COLORS)]


# ---------------------------------------------------------------------------------------------
# Labels and legends
# ---------------------------------------------------------------------------------------------

def step_budget_text(status_df, scores_df, tasks=None) -> str:
    """The environment-step budget, from config budgets when known, else the last eval step."""
    budgets = []
    if status_df is not None and "budget_steps" in status_df:
        st = status_df if tasks is None else status_df[status_df["task"].isin(tasks)]
        budgets = pd.to_numeric(st["budget_steps"], errors="coerce").dropna().unique().tolist()
    if not budgets and len(scores_df):
        sc = scores_df if tasks is None else scores_df[scores_df["task"].isin(tasks)]
        sc = sc[sc["status"] == "complete"] if "status" in sc else sc
        if len(sc):
            budgets = sc.groupby(["algo", "task", "seed"])["step"].max().unique().tolist()
    if not budgets:
        return "step budget unknown"
    lo, hi = min(budgets), max(budgets)
    if lo == hi:
        return f"step budget {int(lo):,} environment steps"
    return f"step budget {int(lo):,}–{int(hi):,} environment steps"


def run_label(algo, status_df, tasks=None, matrix_shape=None) -> str:
    """Legend label saying how many runs are shown and what happened to the others.

    One task: ``'sac (4/5 seeds; 1 diverged, 1 missing)'`` - 4 runs with evaluations (complete or
    diverged) out of the 5 known (any status).  Several tasks with ``matrix_shape`` = (seeds,
    tasks) of the statistic: ``'sac (12/15 runs: 4 seeds x 3 tasks; 1 diverged, 1 running,
    2 dropped)'`` where "dropped" = scored runs left out so every task has the same number of seeds.
    """
    if status_df is None or not len(status_df):
        return str(algo)
    st = status_df[status_df["algo"] == algo]
    if tasks is not None:
        st = st[st["task"].isin(list(tasks))]
    n = len(st)
    k = int(st["status"].isin(FINISHED_STATUSES).sum())
    counts = st["status"].value_counts()
    notes = [f"{counts[s]} {s}" for s in RUN_STATUSES if s != "complete" and s in counts]
    if matrix_shape is not None:
        used = int(matrix_shape[0] * matrix_shape[1])
        if used < k:
            notes.append(f"{k - used} dropped")
        head = f"{used}/{n} runs: {matrix_shape[0]} seeds × {matrix_shape[1]} tasks"
    elif st["task"].nunique() <= 1:
        head = f"{k}/{n} seeds"
    else:
        head = f"{k}/{n} runs over {st['task'].nunique()} tasks"
    return f"{algo} ({head}" + ("; " + ", ".join(notes) if notes else "") + ")"


def legend_handles(labels_colors):
    """Legend lines for (label, colour) pairs."""
    return [Line2D([0], [0], color=c, lw=2.5, label=l) for l, c in labels_colors]


def legend_below(ax, handles, fontsize=8):
    """Legend of (label, colour) pairs under the axes (so it never hides data)."""
    if handles:
        ax.legend(handles=legend_handles(handles), fontsize=fontsize, loc="upper center",
                  bbox_to_anchor=(0.5, -0.13), ncol=1, frameon=False)


# ---------------------------------------------------------------------------------------------
# Captions, empty panels, files
# ---------------------------------------------------------------------------------------------

def caption_with_footer(text, provenance, width) -> str:
    """The caption wrapped to `width` characters, its last line the provenance footer."""
    paragraphs = [p for p in text.split("\n") if p] + [provenance.footer()]
    return "\n".join(textwrap.fill(p, width) for p in paragraphs)


def finish_figure(fig, outdir, name, caption, provenance, used, width=None, top=0.97, dpi=150,
                  entry=None):
    """Every figure of the analysis ends here: the caption, its last line the provenance footer,
    at the bottom left (7.5 pt; wrapped to `width` characters, by default about 15 per inch of
    figure width); the panels laid out between it and `top` (a figure fraction: room for a title
    or legend above them); then PNG and PDF (analysis.records.outputs.write_figure). `used`:
    manifest paths of the runs drawn; `entry`: the figure's name in the catalogue
    (analysis/records/catalogue.py) where its file is named otherwise, e.g. "{sweep}" for a sweep's
    figure."""
    width = width or max(60, int(fig.get_figwidth() * 15.5))
    wrapped = caption_with_footer(caption, provenance, width)
    fig.text(0.01, 0.005, wrapped, ha="left", va="bottom", fontsize=7.5)
    lines = wrapped.count("\n") + 1
    bottom = min(0.5, (0.13 * lines + 0.12) / fig.get_figheight())  # about 0.13 inch per line
    fig.tight_layout(rect=(0, bottom, 1, top))
    return write_figure(fig, outdir, name, provenance, caption, used=used, dpi=dpi,
                        entry=entry)


def no_data_panel(ax, text="no data"):
    """Grey text in the middle of a panel that has nothing to draw, and no ticks."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11,
            color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
