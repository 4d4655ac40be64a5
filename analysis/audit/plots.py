"""The audit's figures (PNG and PDF): interior modes, mass on the action bounds, KL divergences,
action histograms, where the samples land on tasks with known optima, and one figure per sweep. The
learned policy and the behaviour distribution are drawn side by side in every figure (solid:
policy, hatched or dashed: behaviour). Every caption ends with the provenance footer
(analysis/records/provenance.py).

The figures draw the audit's tables: the summaries over seeds (modes_summary, kl, the sweeps'
tables) and, for what they show per seed and the seeds they count, the per-run table
(audit_runs.csv, :func:`analysis.audit.tables.run_table`). Two figures are pictures of the
probe samples themselves (action_histograms, toy_optima): they also take the runs' samples, as
:mod:`analysis.audit.load` read them through the manifest."""
from __future__ import annotations

import json

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from analysis.audit.load import DISTRIBUTIONS, task_optima  # noqa: E402
from analysis.audit.measure import subsample  # noqa: E402
from analysis.audit.tables import LEARNED_THRESHOLD, TOY_MIN_SHARE, TOY_RADIUS  # noqa: E402
from analysis.estimators.bootstrap import DEFAULT_SEED  # noqa: E402
from analysis.plotting import algo_color, finish_figure, no_data_panel  # noqa: E402
from analysis.records import catalogue  # noqa: E402
from analysis.records.outputs import counted  # noqa: E402

FIGURE_NAMES = tuple(catalogue.figures_of("audit", {}))  # and one per sweep
HATCH = {"policy": None, "behaviour": "////"}
LINESTYLE = {"policy": "-", "behaviour": "--"}
DIST_TEXT = ("policy = the learned policy (no exploration noise; TD3's is a point mass); "
             "behaviour = the actions as explored (QSM sampler + N(0, 0.1²), SAC "
             "tanh-Gaussian sample, TD3 μ + N(0, 0.1²), clipped)")
LEARNED_TEXT = (f"On tasks with known optima a seed 'learned the task' when its final return is at "
                f"least {LEARNED_THRESHOLD:g} of the optimum's; x markers: seeds that did not "
                f"(their modes are not evidence).")


def _save(fig, outdir, name, caption, provenance, runs, top_inches=0.6, entry=None):
    """analysis.plotting.finish_figure, with `top_inches` of room above the panels (the 2-line
    title, and a legend under it); `runs`: the per-run table of the runs drawn."""
    used = set(runs.loc[runs["audited"], "path"])
    return finish_figure(fig, outdir, name, caption, provenance, used,
                         top=1 - top_inches / fig.get_figheight(), dpi=130, entry=entry)


def _audited_seeds(runs, tasks=None) -> dict:
    """{algo: {task: number of audited seeds}} (one row per distribution: seeds, not rows)."""
    ok = runs[runs["audited"]]
    if tasks is not None:
        ok = ok[ok["task"].isin(list(tasks))]
    counts = ok.groupby(["algo", "task"])["seed"].nunique()
    out: dict[str, dict[str, int]] = {}
    for (algo, task), n in counts.items():
        out.setdefault(algo, {})[task] = int(n)
    return out


def _seeds_text(runs, tasks=None) -> str:
    """'qsm 3, sac 3 seeds' (audited seeds per algorithm, fewest over the tasks shown)."""
    per = _audited_seeds(runs, tasks)
    if not per:
        return "no audited runs"
    parts = []
    for a in sorted(per):
        lo, hi = min(per[a].values()), max(per[a].values())
        parts.append(f"{a} {lo}" if lo == hi else f"{a} {lo}-{hi}")
    return "seeds per task: " + ", ".join(parts)


def _algo_seeds(runs, algo) -> str:
    """'2-3 seeds': audited seeds per task of one algorithm."""
    per = _audited_seeds(runs).get(algo, {})
    if not per:
        return "0 seeds audited"
    lo, hi = min(per.values()), max(per.values())
    return (counted(lo, "seed") if lo == hi else f"{lo}-{hi} seeds") + " per task"


def _skipped_text(runs) -> str:
    bad = runs[~runs["audited"]].drop_duplicates("path")  # once per run
    if not len(bad):
        return ""
    counts = bad["status"].value_counts()
    return ("Not audited: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + " run(s) (see modes.csv).")


def _known_optima(runs) -> dict:
    """task -> its number of known optima, for the tasks with known optima."""
    known = runs[np.isfinite(runs["true_modes"].astype(float))]
    return {t: int(n) for t, n in known.groupby("task")["true_modes"].first().items()}


def _learned_flags(rows) -> list:
    """True / False / None per row of the per-run table (None: the task has no known optima)."""
    return [None if v == "" or (isinstance(v, float) and math.isnan(v)) else
            (v if isinstance(v, bool) else str(v) == "True") for v in rows["learned"]]


def _grid(n, ncols=4):
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    return nrows, ncols




def _distributions(runs):
    return [d for d in DISTRIBUTIONS if (runs["distribution"] == d).any()]


def _bar_layout(n_algos, n_dists):
    """x offsets of the bars of algorithm i, distribution j: algorithms 1 apart, distributions
    side by side within."""
    width = 0.8 / max(n_dists, 1)
    return width, lambda i, j: i + (j - (n_dists - 1) / 2) * width


def _interval(ax, x, mean, lo, hi):
    if np.isfinite(mean) and np.isfinite(lo):
        ax.errorbar(x, mean, yerr=[[mean - lo], [hi - mean]], color="k", capsize=3, lw=1.1)


def _seed_marks(ax, x, values, flags, width):
    """Per-seed values; x for seeds that did not learn the task."""
    if not len(values):
        return
    jitter = np.linspace(-0.3, 0.3, len(values)) * width if len(values) > 1 else [0.0]
    for dx, v, f in zip(jitter, values, flags):
        if np.isfinite(v):
            ax.plot(x + dx, v, "x" if f is False else "o", ms=4, color="k",
                    mfc="white", zorder=3)


def _dist_legend(ax, dists):
    handles = [Patch(facecolor="0.6", hatch=HATCH[d], alpha=0.8, label=d) for d in dists]
    handles += [h for h in ax.get_legend_handles_labels()[0]]  # e.g. the known optima line
    ax.legend(handles=handles, fontsize=6.5, loc="upper left", frameon=False,
              ncol=len(handles))


def _task_panels(tasks):
    """One panel per task in a grid; unused panels hidden, or a 'no runs' panel if none."""
    nrows, ncols = _grid(max(len(tasks), 1))
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(3.6 * ncols, 7.0), 3.0 * nrows + 1.4),
                             squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(tasks):]:
        ax.set_visible(False) if tasks else None
    if not tasks:
        no_data_panel(axes[0], "no runs found")
    return fig, axes


def _seed_bars(summary, runs, column, ylabel, headroom, guide=None, optima=False, na_text=None,
               pale_unlearned=False, near_bound=False):
    """Panels per task of bars per algorithm and distribution: `column`'s mean over seeds
    (`summary`) with its 95% interval, and the seeds' values (`runs`: x for a seed that did not
    learn the task). `headroom`: the y range over the tallest value (room for the legend);
    `guide`: a dotted line at that height; `optima`: the known optima as a dashed line;
    `na_text`: drawn where a bar has no value; `pale_unlearned`: pale bars where no seed learned
    the task; `near_bound`: mark bars whose modes mostly lie near a bound."""
    tasks = sorted(summary["task"].unique()) if len(summary) else []
    known = _known_optima(runs)
    dists = _distributions(runs)
    fig, axes = _task_panels(tasks)
    for ax, task in zip(axes, tasks):
        s = summary[summary["task"] == task]
        algos = sorted(s["algo"].unique())
        width, at = _bar_layout(len(algos), len(dists))
        ymax = 1.0
        for i, algo in enumerate(algos):
            for j, dist in enumerate(dists):
                r = s[(s["algo"] == algo) & (s["distribution"] == dist)]
                x = at(i, j)
                if not len(r) or not np.isfinite(r[column].iloc[0]):
                    if na_text:
                        ax.text(x, 0.05, na_text, ha="center", va="bottom", fontsize=7,
                                color="0.3", rotation=90)
                    continue
                r = r.iloc[0]
                unlearned = pale_unlearned and task in known and r["n_learned"] == 0
                ax.bar(x, r[column], width=width * 0.95, color=algo_color(algo),
                       alpha=0.25 if unlearned else 0.8, hatch=HATCH[dist], edgecolor="k",
                       lw=0.4)
                _interval(ax, x, r[column], r[f"{column}_ci_low"], r[f"{column}_ci_high"])
                seeds = runs[runs["audited"] & (runs["algo"] == algo) & (runs["task"] == task)
                             & (runs["distribution"] == dist)].sort_values("seed")
                vals = seeds[column].to_numpy(float)
                _seed_marks(ax, x, vals, _learned_flags(seeds), width)
                if near_bound and r[f"{column}_near_bound"] >= 0.5 * r[column]:
                    ax.text(x, r[column] / 2, "near\n\u00b11", ha="center", va="center",
                            fontsize=6, color="k")
                ymax = max(ymax, np.nanmax([r[column], r[f"{column}_ci_high"], *vals, 0]))
        if optima and task in known:
            ax.axhline(known[task], ls="--", color="k", lw=1.1,
                       label=f"true optima ({known[task]})")
            ymax = max(ymax, known[task])
        if guide is not None:
            ax.axhline(guide, color="0.5", lw=0.8, ls=":")
        ax.set_xticks(range(len(algos)))
        ax.set_xticklabels(algos, fontsize=8)
        ax.set_xlim(-0.6, len(algos) - 0.4)
        ax.set_ylim(0, ymax * headroom + 0.5)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(task, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        _dist_legend(ax, dists)
    return fig


def plot_mode_counts(summary, runs, outdir, provenance):
    """Interior modes per probe state, per task, algorithm and distribution."""
    fig = _seed_bars(summary, runs, "interior_modes", "interior modes per probe state",
                     headroom=1.6, optima=True, na_text="n/a", pale_unlearned=True,
                     near_bound=True)
    fig.suptitle(f"Modes of the interior part of the action distributions (no coordinate on a "
                 f"bound)\n({_seeds_text(runs)})", fontsize=11)
    cap = (f"{DIST_TEXT}. Bar = mean over seeds of each seed's mean over probe states of the "
           f"number of modes of the samples with no coordinate on an action bound "
           f"(analysis.estimators.mixed; mass on the bounds: figure bound_mass); n/a: the interior "
           f"part is too small to count modes; error bar = 95% bootstrap CI over seeds (rliable; "
           f"none with 1 seed); markers = seeds. Dashed: number of known optima. {LEARNED_TEXT} "
           f"Pale bars: no seed learned the task. 'near \u00b11': most of the bar's modes "
           f"lie within 0.1 of a bound (density piled against it, e.g. exploration noise around "
           f"an atom). "
           f"{_skipped_text(runs)}")
    return _save(fig, outdir, "mode_counts", cap, provenance, runs)


def plot_bound_mass(summary, runs, outdir, provenance):
    """Where the probability mass sits: inside the box, on faces, on corners."""
    tasks = sorted(summary["task"].unique()) if len(summary) else []
    dists = _distributions(runs)
    fig, axes = _task_panels(tasks)
    parts = (("mass_corner", 0.95, "corner (every coordinate on a bound)"),
             ("mass_face", 0.55, "face (some coordinates on a bound)"),
             ("mass_interior", 0.15, "interior (none)"))
    for ax, task in zip(axes, tasks):
        s = summary[summary["task"] == task]
        algos = sorted(s["algo"].unique())
        width, at = _bar_layout(len(algos), len(dists))
        for i, algo in enumerate(algos):
            for j, dist in enumerate(dists):
                r = s[(s["algo"] == algo) & (s["distribution"] == dist)]
                x = at(i, j)
                if not len(r) or not r["n_seeds"].iloc[0]:
                    continue
                r = r.iloc[0]
                bottom = 0.0
                for name, alpha, _ in parts:
                    v = float(r[name])
                    ax.bar(x, v, bottom=bottom, width=width * 0.95, color=algo_color(algo),
                           alpha=alpha, hatch=HATCH[dist], edgecolor="k", lw=0.4)
                    bottom += v
                _interval(ax, x, r["mass_any_bound"], r["mass_any_bound_ci_low"],
                          r["mass_any_bound_ci_high"])
        ax.set_xticks(range(len(algos)))
        ax.set_xticklabels(algos, fontsize=8)
        ax.set_ylim(0, 1.35)  # headroom for the legend
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_ylabel("probability mass", fontsize=8)
        ax.set_title(task, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    if tasks:
        axes[0].legend(handles=[Patch(facecolor="0.3", alpha=a, label=t) for _, a, t in parts]
                       + [Patch(facecolor="white", edgecolor="k", hatch=HATCH[d], label=d)
                          for d in dists], loc="upper left", fontsize=5.5, ncol=2,
                       frameon=False)
    fig.suptitle(f"Probability mass on the action bounds (atoms: clipped or saturated actions)\n"
                 f"({_seeds_text(runs)})", fontsize=11)
    cap = (f"{DIST_TEXT}. Stacked bars: share of samples with every coordinate on a bound "
           f"(darkest), some, none (lightest); mean over seeds of each seed's mean over probe "
           f"states. A coordinate is on a bound within 1e-6 of it. Error bar: 95% bootstrap CI "
           f"over seeds of the mass with at least one coordinate on a bound (the top of the two "
           f"darker segments). Per dimension and side: bound_mass.csv. "
           f"{_skipped_text(runs)}")
    return _save(fig, outdir, "bound_mass", cap, provenance, runs)


def plot_bound_patterns(summary, runs, outdir, provenance):
    """How many faces of the action box a policy uses: heavy bound patterns per probe state."""
    fig = _seed_bars(summary, runs, "n_heavy_patterns", "bound patterns holding ≥ 5% per state",
                     headroom=1.5, guide=1)
    fig.suptitle(f"Multimodality over the faces of the action box: bound patterns per probe "
                 f"state\n({_seeds_text(runs)})", fontsize=11)
    cap = (f"{DIST_TEXT}. A sample's bound pattern gives each coordinate as at -1, inside or at "
           f"+1; a probe state's law over patterns is multi-modal over the faces of the box when "
           f"several patterns each hold at least 5% of its samples (dotted line: one). Bar = "
           f"mean over seeds of each seed's mean over probe states of that number; error bar = "
           f"95% bootstrap CI over seeds; markers = seeds. The patterns themselves, per state: "
           f"bound_patterns.csv; their entropy: modes_summary.csv. {_skipped_text(runs)}")
    return _save(fig, outdir, "bound_patterns", cap, provenance, runs)


def plot_kl(kl_df, runs, outdir, provenance):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6.2), gridspec_kw={"width_ratios": [1.2, 1]})
    g = kl_df[kl_df["kind"] == "interior_gaussian_fit"]
    dists = _distributions(runs)
    tasks = sorted(g["task"].unique())
    algos = sorted(g["algo"].unique())
    if not len(g):
        no_data_panel(ax1, "no runs found")
    else:
        slots = [(a, d) for a in algos for d in dists]
        w = 0.8 / max(len(slots), 1)
        for k, (a, d) in enumerate(slots):
            gad = g[(g["algo"] == a) & (g["distribution"] == d)].set_index("task")
            for i, t in enumerate(tasks):
                x = i + (k - (len(slots) - 1) / 2) * w
                if t not in gad.index or not np.isfinite(gad.loc[t, "estimate"]):
                    if t in gad.index:
                        ax1.text(x, 0, "n/a", rotation=90, ha="center", va="bottom", fontsize=6,
                                 color=algo_color(a))
                    continue
                r = gad.loc[t]
                ax1.bar(x, r["estimate"], width=w, color=algo_color(a), alpha=0.8,
                        hatch=HATCH[d], edgecolor="k", lw=0.3)
                _interval(ax1, x, r["estimate"], r["ci_low"], r["ci_high"])
        ax1.set_xticks(range(len(tasks)))
        ax1.set_xticklabels(tasks, rotation=30, ha="right", fontsize=8)
        ax1.axhline(0, color="k", lw=0.8)
        ax1.legend(handles=[Patch(color=algo_color(a), alpha=0.8,
                                  label=f"{a} ({_algo_seeds(runs, a)})") for a in algos]
                   + [Patch(facecolor="white", edgecolor="k", hatch=HATCH[d], label=d)
                      for d in dists], fontsize=7)
        ax1.grid(axis="y", alpha=0.3)
    ax1.set_ylabel("KL(interior part || its Gaussian fit)  [nats]")
    ax1.set_title("Non-Gaussianity of the interior part (0 = Gaussian-shaped)\nn/a = point mass, "
                  "atoms inside the box, or too few interior samples", fontsize=9)

    b = kl_df[kl_df["kind"] == "between_algos"]
    if not len(b):
        no_data_panel(ax2, "no task with two audited algorithms")
    else:
        rows = sorted(set(zip(b["algo"], b["other_algo"], b["distribution"])),
                      key=lambda r: (DISTRIBUTIONS.index(r[2]), r[0], r[1]))
        btasks = sorted(b["task"].unique())
        mat = np.full((len(rows), len(btasks)), np.nan)
        text = np.full(mat.shape, "not run", dtype=object)
        for r in b.itertuples():
            i, j = rows.index((r.algo, r.other_algo, r.distribution)), btasks.index(r.task)
            mat[i, j] = r.estimate
            if np.isfinite(r.estimate):
                mark = (">=" if np.isfinite(r.covered_mass) and r.covered_mass < 0.999 else "")
                mark += "*" if np.isfinite(r.missing_mass) and r.missing_mass > 0 else ""
                text[i, j] = f"{mark}{r.estimate:.2g}\n({r.n_seeds})"
            else:
                text[i, j] = "n/a"
        finite = mat[np.isfinite(mat)]
        vmax = float(np.quantile(finite, 0.95)) if finite.size else 1.0
        vmax = vmax if vmax > 0 else 1.0
        cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
        im = ax2.imshow(np.ma.masked_invalid(mat), aspect="auto", cmap=cmap, vmin=0, vmax=vmax)
        for i in range(len(rows)):
            for j in range(len(btasks)):
                v = mat[i, j]
                ax2.text(j, i, text[i, j], ha="center", va="center", fontsize=6,
                         color="k" if (not np.isfinite(v) or v > 0.6 * vmax) else "w")
        ax2.set_xticks(range(len(btasks)))
        ax2.set_xticklabels(btasks, rotation=30, ha="right", fontsize=8)
        ax2.set_yticks(range(len(rows)))
        ax2.set_yticklabels([f"{d}: KL({a} || {o})" for a, o, d in rows], fontsize=7)
        fig.colorbar(im, ax=ax2, label="KL [nats] (mean over seeds)", shrink=0.85)
    ax2.set_title("Between algorithms at the same probe states, by the chain rule over bound "
                  "patterns\n(cell: estimate (seeds); >= lower bound; * the other never "
                  "produced some of this one's bound patterns)", fontsize=9)
    fig.suptitle(f"KL divergences of the action distributions, atoms treated as atoms\n"
                 f"({_seeds_text(runs)})", fontsize=11)
    cap = (f"{DIST_TEXT}. Left: KL of the interior part (samples with no coordinate on a bound) "
           f"to the Gaussian fitted to it (analysis.estimators.mixed.interior_gaussian_fit_kl); "
           f"never computed on samples with atoms, which have no density. Right: KL(P || Q) = "
           f"discrete KL of the bound patterns + sum over faces of P(face) KL of the parts on the "
           f"face (analysis.estimators.mixed.mixed_kl; faces too small to estimate are left out, "
           f"so the value is a lower bound: '>='). Per probe state, averaged over probe states per "
           f"seed, then over seeds; error bars: 95% bootstrap CI over seeds; colour scale clipped "
           f"at the 95th percentile. {_skipped_text(runs)}")
    return _save(fig, outdir, "kl_divergence", cap, provenance, runs)


def _histogram_seed(task_entries):
    """The seed audited for the most algorithms (ties: the lowest)."""
    count: dict[int, set] = {}
    for e in task_entries:
        count.setdefault(e.seed, set()).add(e.algo)
    return min(count, key=lambda s: (-len(count[s]), s))


def plot_action_histograms(entries, runs, outdir, provenance, n_states=3):
    audited = [e for e in entries if e.audited]
    tasks = sorted({e.task for e in audited})
    n_states = max(1, int(n_states))
    # per task: the panels (probe state, action dim), first 1-2 dims of the first n_states states
    layout = {}
    for task in tasks:
        te = [e for e in audited if e.task == task]
        seed = _histogram_seed(te)
        te = sorted([e for e in te if e.seed == seed],
                    key=lambda e: (e.algo, DISTRIBUTIONS.index(e.distribution)))
        P = min(n_states, max(e.actions.shape[0] for e in te))
        dims = min(2, max(e.actions.shape[2] for e in te))
        layout[task] = (seed, te, [(s, d) for s in range(P) for d in range(dims)])
    ncols = max([len(v[2]) for v in layout.values()] + [1])
    nrows = max(len(tasks), 1)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(max(2.3 * ncols, 6.5), max(1.95 * nrows + 2.2, 4.5)))
    for ax in axes.ravel():
        ax.set_visible(False)
    if not tasks:
        axes[0, 0].set_visible(True)
        no_data_panel(axes[0, 0], "no audited runs")
    bins = np.linspace(-1.0, 1.0, 41)
    shown = set()
    for row, task in enumerate(tasks):
        seed, te, panels = layout[task]
        for col, (s, dim) in enumerate(panels):
            ax = axes[row, col]
            ax.set_visible(True)
            bound_bits = []
            for e in te:
                if s >= e.actions.shape[0] or dim >= e.actions.shape[2]:
                    continue
                v = e.actions[s, :, dim]
                ax.hist(v, bins=bins, range=(-1, 1), density=True, histtype="step", lw=1.3,
                        color=algo_color(e.algo), ls=LINESTYLE[e.distribution])
                shown.add((e.algo, e.distribution))
                at_bound = float(np.mean(np.abs(v) >= 1 - 1e-6))
                if at_bound >= 0.01:
                    bound_bits.append(f"{e.algo}{'' if e.distribution == 'policy' else ' b'} "
                                      f"{at_bound:.0%}")
            if bound_bits:
                ax.text(0.02, 0.97, "on \u00b11: " + ", ".join(bound_bits),
                        transform=ax.transAxes, fontsize=5.5, va="top", ha="left",
                        bbox=dict(fc="white", ec="none", alpha=0.7, pad=1))
            ax.set_xlim(-1.05, 1.05)
            for xb in (-1, 1):
                ax.axvline(xb, color="0.6", lw=0.8, ls=":")
            ax.set_title(f"{task} (seed {seed})\nprobe state {s}, action dim {dim}", fontsize=7.5)
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel("density", fontsize=8)
            ax.set_xlabel("action", fontsize=7)
    if shown:  # one row under the title
        fig.legend(handles=[plt.Line2D([0], [0], color=algo_color(a), lw=2, ls=LINESTYLE[d],
                                       label=f"{a} {d}") for a, d in sorted(shown)],
                   loc="upper center", bbox_to_anchor=(0.5, 1 - 0.62 / fig.get_figheight()),
                   ncol=min(len(shown), 6), fontsize=7.5, frameon=False)
    fig.suptitle(f"Action samples at the first {n_states} probe states, policy (solid) and "
                 f"behaviour (dashed)\n(one seed per task shown; {_seeds_text(runs)})",
                 fontsize=11)
    cap = (f"{DIST_TEXT}. Per task the seed audited for the most algorithms (lowest on ties); "
           f"density histograms of the first 1-2 action dimensions over [-1, 1] (40 bins; dotted "
           f"lines: the bounds; an atom on a bound shows as a tall edge bin). 'on \u00b11': share "
           f"of samples on a bound (within 1e-6; shown from 1%; 'b': behaviour). "
           f"{_seeds_text(runs).capitalize()}. {_skipped_text(runs)}")
    return _save(fig, outdir, "action_histograms", cap, provenance, runs, top_inches=0.95)


def plot_toy_optima(entries, runs, toy_df, outdir, provenance, max_points=1500,
                    seed=DEFAULT_SEED):
    audited = [e for e in entries if e.audited and e.optima is not None]
    tasks = sorted({e.task for e in audited})
    shown = runs[runs["audited"] & np.isfinite(runs["true_modes"].astype(float))]
    dists = _distributions(shown)
    columns = [(a, d) for a in sorted({e.algo for e in audited}) for d in dists]
    nrows, ncols = max(len(tasks), 1), max(len(columns), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 3.9 * nrows + 1.6),
                             squeeze=False)
    if not tasks:
        no_data_panel(axes[0, 0], "no audited run of a task with known optima")
    for row, task in enumerate(tasks):
        optima = task_optima(audited)[task]
        for col, (algo, dist) in enumerate(columns):
            ax = axes[row, col]
            samples = sorted([e for e in audited if e.task == task and e.algo == algo
                              and e.distribution == dist], key=lambda e: e.seed)
            c = algo_color(algo)
            if not samples:
                no_data_panel(ax)
                ax.set_title(f"{task}\n{algo}, {dist}", fontsize=8)
                continue
            t = toy_df[(toy_df["task"] == task) & (toy_df["algo"] == algo)
                       & (toy_df["distribution"] == dist) & (toy_df["status"] == "complete")]
            cov = ",".join(str(int(v)) for v in t["optima_covered"].dropna())
            returns = ",".join(f"{v:.2f}" for v in t["final_normalized"])
            n_learned = sum(1 for f in _learned_flags(t) if f)
            if optima.shape[1] == 1:
                bins = np.linspace(-1, 1, 61)
                styles = ["-", "--", ":", "-."]
                for i, e in enumerate(samples):
                    ax.hist(e.actions[:, :, 0].ravel(), bins=bins, density=True, histtype="step",
                            color=c, lw=1.2, ls=styles[i % len(styles)], label=f"seed {e.seed}")
                for o in optima[:, 0]:
                    ax.axvline(o, color="k", ls="--", lw=1)
                ax.set_xlabel("action", fontsize=8)
                ax.set_ylabel("density", fontsize=8)
                ax.legend(fontsize=6, frameon=False)
            else:
                markers = ["o", "s", "^", "D", "v", "P"]
                for i, e in enumerate(samples):
                    x = e.actions.reshape(-1, e.actions.shape[-1])
                    x = subsample(x, max_points, f"toyfig/{algo}/{task}/{dist}/{e.seed}", seed)
                    ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.25, color=c,
                               marker=markers[i % len(markers)], lw=0)
                for o in optima:
                    ax.add_patch(plt.Circle(o, TOY_RADIUS, fill=False, ls="--", color="k", lw=1))
                ax.plot(optima[:, 0], optima[:, 1], "kx", ms=7, mew=1.5)
                ax.set_aspect("equal")
                ax.set_ylim(-1.05, 1.05)
                ax.set_xlabel("action dim 0", fontsize=8)
                ax.set_ylabel("action dim 1", fontsize=8)
            ax.set_xlim(-1.05, 1.05)
            ax.tick_params(labelsize=7)
            if n_learned == 0:
                ax.set_facecolor("0.93")
            ax.set_title(f"{task}: {algo}, {dist}\nreturn {returns or 'n/a'} (learned "
                         f"{n_learned}/{len(samples)})\noptima covered {cov or 'n/a'} of "
                         f"{len(optima)}", fontsize=7.5)
    fig.suptitle(f"Tasks with known optima: where the samples land\n"
                 f"({_seeds_text(runs, set(_known_optima(runs)))})", fontsize=11)
    cap = (f"{DIST_TEXT}. Samples pooled over the probe states (the context does not move the "
           f"optima); 1-D: histogram per seed (line style), 2-D: scatter (up to {max_points} "
           f"points per seed, marker per seed). Dashed: true optima (2-D: circles of radius "
           f"{TOY_RADIUS}). An optimum is covered when at least {TOY_MIN_SHARE:.0%} of the "
           f"samples lie within {TOY_RADIUS} of it. Titles: final return per seed (share of the "
           f"optimum's). Grey panels: no seed learned the task (final return < "
           f"{LEARNED_THRESHOLD:g} of the optimum's); their samples show a policy that has not "
           f"learned, not the algorithm's multimodality. {_skipped_text(runs)}")
    return _save(fig, outdir, "toy_optima", cap, provenance, shown)


SWEEP_PANELS = (("interior_modes", "interior modes per probe state"),
                ("mass_any_bound", "mass on the bounds"),
                ("mass_corner", "mass in the corners"),
                ("optima_covered", "optima covered"),
                ("score_target_rms", "score-target RMS (QSM)"),
                ("final_normalized", "final return (share of max)"))


def value_label(value) -> str:
    """A swept value as an axis label: numbers as %g, widths as 64x64."""
    if isinstance(value, str) and value.startswith("["):
        return "x".join(str(v) for v in json.loads(value))
    return f"{float(value):g}" if isinstance(value, (int, float)) else str(value)


def plot_sweep(sweep_df, runs, outdir, provenance, *, name="mq_sweep", hparam="M_q",
               values=(), default=None):
    """The audit's measures and the return against the value of one sweep's hyperparameter:
    numbers on a (log, when they span a factor of 10 or more) numeric axis, other values
    (network widths) in the configuration's order."""
    df = sweep_df[sweep_df[hparam].notna()] if len(sweep_df) else sweep_df
    tasks = sorted(df["task"].unique()) if len(df) else []
    nrows, ncols = max(len(tasks), 1), len(SWEEP_PANELS)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.5 * nrows + 1.5),
                             squeeze=False)
    if not tasks:
        no_data_panel(axes[0, 0], f"no run of the sweep {name} could be audited")
        for ax in axes[0, 1:]:
            ax.set_visible(False)
    found = list(dict.fromkeys(df[hparam])) if len(df) else []
    numeric = bool(found) and all(isinstance(v, (int, float)) for v in found)
    if numeric:
        position = {v: float(v) for v in found}
        ticks = sorted(found)
        log = min(ticks) > 0 and max(ticks) / min(ticks) >= 10
    else:  # categories, in the order the configuration lists them
        labels = [json.dumps(v) if isinstance(v, (list, tuple)) else v for v in values]
        ordered = [v for v in labels if v in found] + [v for v in found if v not in labels]
        position = {v: i for i, v in enumerate(ordered)}
        ticks, log = ordered, False
    optima = _known_optima(runs)
    for row, task in enumerate(tasks):
        t = df[df["task"] == task]
        for col, (measure, label) in enumerate(SWEEP_PANELS):
            ax = axes[row, col]
            if measure == "optima_covered" and task not in optima:
                no_data_panel(ax, "no known optima")
                ax.set_title(f"{task}", fontsize=8)
                continue
            drawn = False
            for (algo, dist), g in t.groupby(["algo", "distribution"], sort=True):
                if measure in ("final_normalized", "score_target_rms") and dist == "behaviour":
                    continue  # the run's, the same for both distributions
                g = g.assign(_x=g[hparam].map(position)).sort_values("_x")
                y = g[measure].to_numpy(float)
                if not np.isfinite(y).any():
                    continue
                lo = np.nan_to_num(y - g[f"{measure}_ci_low"].to_numpy(float))
                hi = np.nan_to_num(g[f"{measure}_ci_high"].to_numpy(float) - y)
                ax.errorbar(g["_x"].to_numpy(float), y, yerr=[lo, hi], color=algo_color(algo),
                            ls=LINESTYLE[dist], marker="o", ms=3.5, capsize=3, lw=1.2,
                            label=f"{algo} {dist}" if measure not in (
                                "final_normalized", "score_target_rms") else algo)
                drawn = True
            if not drawn:
                no_data_panel(ax, "not logged" if measure == "score_target_rms" else "no value")
            if log:
                ax.set_xscale("log")
            ax.set_xticks([position[v] for v in ticks])
            ax.set_xticklabels([value_label(v) for v in ticks], fontsize=7)
            ax.xaxis.set_minor_formatter(NullFormatter())
            if default is not None and default in position:
                ax.axvline(position[default], color="0.5", ls=":", lw=1)
            if measure == "optima_covered":
                ax.axhline(optima[task], color="k", ls="--", lw=1)
            if measure == "final_normalized" and task in optima:
                ax.axhline(LEARNED_THRESHOLD, color="k", ls="--", lw=1)
            if measure == "score_target_rms" and drawn:
                ax.axhline(1.0, color="k", ls=":", lw=1)
                ax.set_yscale("log")
            if measure in ("mass_any_bound", "mass_corner", "final_normalized"):
                ax.set_ylim(-0.03, 1.05)
            ax.set_xlabel(hparam, fontsize=8)
            ax.set_ylabel(label, fontsize=8)
            ax.set_title(task, fontsize=8.5)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if row == 0 and col == 0 and drawn:
                ax.legend(fontsize=6.5, frameon=False)
    seeds = sorted(set(df["n_seeds"])) if len(df) else []
    default_text = (f"; dotted: the default {hparam} = {value_label(default)}"
                    if default is not None else "")
    algos = ", ".join(sorted(df["algo"].unique())) if len(df) else "none"
    fig.suptitle(f"Sweep {name}: {hparam} of {algos} against modes, mass on the bounds, optima, "
                 f"score scale and return\n(seeds per point: {', '.join(map(str, seeds)) or 'none'}"
                 f"{default_text})", fontsize=11)
    cap = (f"{DIST_TEXT}. Runs of the sweep {name} (config sweeps): identical but for {hparam}; "
           f"a point whose configuration is the audit's or benchmark's run is that run itself. "
           f"Per point: mean over seeds (each seed: mean over probe states) with 95% bootstrap "
           f"CIs over seeds. Interior modes: modes of the samples with no coordinate on a bound "
           f"(missing where that part is too small); mass on the bounds: share of samples with "
           f"a coordinate on one; in the corners: with every coordinate on one; optima covered "
           f"(dashed: all): >= {TOY_MIN_SHARE:.0%} of samples within {TOY_RADIUS}; score-target "
           f"RMS: of M_q dQ/da over training's last tenth (dotted: 1, the sampler noise's); "
           f"return: final evaluation return over the task's maximum (dashed: the "
           f"{LEARNED_THRESHOLD:g} threshold for 'learned'). {_skipped_text(runs)}")
    return _save(fig, outdir, name, cap, provenance, runs, entry="{sweep}")
