"""The audit's figures (PNG and PDF): mode counts, KL divergences, action histograms, and where
the samples land on tasks with known optima. Every caption ends with the provenance footer
(analysis/provenance.py)."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from analysis.audit.load import DISTRIBUTION_TEXT, task_optima  # noqa: E402
from analysis.audit.measure import subsample  # noqa: E402
from analysis.audit.tables import TOY_MIN_SHARE, TOY_RADIUS  # noqa: E402
from analysis.figures import algo_color, caption_with_footer  # noqa: E402
from analysis.outputs import write_figure  # noqa: E402
from analysis.stats import DEFAULT_SEED  # noqa: E402

FIGURE_NAMES = ("mode_counts", "kl_divergence", "action_histograms", "toy_optima")


def _save(fig, outdir, name, caption, provenance, shown):
    """Caption with the provenance footer, layout, PNG and PDF; `shown`: the runs drawn."""
    width = max(60, int(fig.get_figwidth() * 15.5))  # 7.5 pt text: ~15 characters/inch
    wrapped = caption_with_footer(caption, provenance, width)
    lines = wrapped.count("\n") + 1
    fig.text(0.01, 0.005, wrapped, ha="left", va="bottom", fontsize=7.5)
    bottom = min(0.45, (0.14 * lines + 0.1) / fig.get_figheight())
    try:
        fig.tight_layout(rect=(0, bottom, 1, 1 - 0.6 / fig.get_figheight()))  # 2-line title
    except Exception:
        pass
    used = {e.path for e in shown if e.audited}
    return write_figure(fig, outdir, name, provenance, used=used, dpi=130)


def _no_data(ax, text="no data"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11,
            color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _seeds_text(entries, tasks=None) -> str:
    """'qsm 3, sac 3 seeds' (audited seeds per algorithm, fewest over the tasks shown)."""
    per: dict[str, dict[str, int]] = {}
    for e in entries:
        if e.audited and (tasks is None or e.task in tasks):
            per.setdefault(e.algo, {}).setdefault(e.task, 0)
            per[e.algo][e.task] += 1
    if not per:
        return "no audited runs"
    parts = []
    for a in sorted(per):
        lo, hi = min(per[a].values()), max(per[a].values())
        parts.append(f"{a} {lo}" if lo == hi else f"{a} {lo}-{hi}")
    return "seeds per task: " + ", ".join(parts)


def _algo_seeds(entries, algo) -> str:
    """'2-3 seeds': audited seeds per task of one algorithm."""
    per: dict[str, int] = {}
    for e in entries:
        if e.audited and e.algo == algo:
            per[e.task] = per.get(e.task, 0) + 1
    if not per:
        return "0 seeds audited"
    lo, hi = min(per.values()), max(per.values())
    return (_n_seeds(lo) if lo == hi else f"{lo}-{hi} seeds") + " per task"


def _skipped_text(entries) -> str:
    bad = [e for e in entries if not e.audited]
    if not bad:
        return ""
    counts: dict[str, int] = {}
    for e in bad:
        counts[e.status] = counts.get(e.status, 0) + 1
    return ("Not audited: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + " run(s) (see modes.csv).")


def _n_seeds(n) -> str:
    return f"{int(n)} seed" + ("" if int(n) == 1 else "s")


def _grid(n, ncols=4):
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    return nrows, ncols


def plot_mode_counts(summary, modes_df, entries, distribution, outdir, provenance):
    tasks = sorted(summary["task"].unique()) if len(summary) else []
    optima = task_optima(entries)
    nrows, ncols = _grid(max(len(tasks), 1))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows + 1.0), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(tasks):]:
        ax.set_visible(False) if tasks else None
    if not tasks:
        _no_data(axes[0], "no runs found")
    for ax, task in zip(axes, tasks):
        s = summary[summary["task"] == task].sort_values("algo")
        ok = modes_df[(modes_df["task"] == task) & (modes_df["status"] == "complete")
                      & modes_df["state"].notna()]
        ymax = 1.0
        for i, r in enumerate(s.itertuples()):
            c = algo_color(r.algo)
            if r.n_seeds == 0 or not np.isfinite(r.mean_modes):
                ax.text(i, 0.05, "no\ndata", ha="center", va="bottom", fontsize=7, color="0.4")
                continue
            ax.bar(i, r.mean_modes, color=c, alpha=0.75, width=0.7)
            if np.isfinite(r.ci_low):
                ax.errorbar(i, r.mean_modes, yerr=[[r.mean_modes - r.ci_low],
                                                   [r.ci_high - r.mean_modes]],
                            color="k", capsize=4, lw=1.2)
            seed_means = ok[ok["algo"] == r.algo].groupby("seed")["n_modes"].mean()
            jitter = np.linspace(-0.15, 0.15, len(seed_means)) if len(seed_means) > 1 else [0.0]
            ax.plot(i + np.asarray(jitter), seed_means.to_numpy(), "o", ms=3.5, color="k",
                    mfc="white", zorder=3)
            ymax = max(ymax, float(np.nanmax([r.mean_modes, r.ci_high if np.isfinite(r.ci_high)
                                              else 0, seed_means.max()])))
        tm = len(optima[task]) if task in optima else math.nan
        if np.isfinite(tm):
            ax.axhline(tm, ls="--", color="k", lw=1.2, label=f"true optima ({tm:g})")
            ax.legend(fontsize=7, loc="upper right")
            ymax = max(ymax, tm)
        ax.set_xticks(range(len(s)))
        ax.set_xticklabels([f"{a}\n({_n_seeds(n)})" for a, n in zip(s["algo"], s["n_seeds"])],
                           fontsize=8)
        ax.set_ylim(0, ymax * 1.25 + 0.2)
        ax.set_ylabel("modes per probe state")
        ax.set_title(task, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Number of action modes at the probe states — {distribution} distribution\n"
                 f"({_seeds_text(entries)})", fontsize=11)
    cap = (f"Audited: {DISTRIBUTION_TEXT[distribution]}; {_seeds_text(entries)}. Bar = mean over "
           f"seeds of each seed's mean mode count over probe states; error bar = 95% percentile "
           f"bootstrap CI over seeds (rliable; none with 1 seed); circles = individual seeds. "
           f"Dashed line: true number of optima (tasks with known optima). "
           f"{_skipped_text(entries)}")
    return _save(fig, outdir, "mode_counts", cap, provenance, entries)


def plot_kl(kl_df, entries, distribution, outdir, provenance):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.6), gridspec_kw={"width_ratios": [1.2, 1]})
    g = kl_df[kl_df["kind"] == "gaussian_fit"]
    tasks = sorted(g["task"].unique())
    algos = sorted(g["algo"].unique())
    if not len(g):
        _no_data(ax1, "no runs found")
    else:
        w = 0.8 / max(len(algos), 1)
        for j, a in enumerate(algos):
            ga = g[g["algo"] == a].set_index("task")
            xs, ys, lo, hi, na = [], [], [], [], []
            for i, t in enumerate(tasks):
                x = i + (j - (len(algos) - 1) / 2) * w
                if t not in ga.index or not np.isfinite(ga.loc[t, "estimate"]):
                    if t in ga.index:
                        na.append(x)
                    continue
                r = ga.loc[t]
                xs.append(x)
                ys.append(r["estimate"])
                lo.append(r["estimate"] - r["ci_low"] if np.isfinite(r["ci_low"]) else 0.0)
                hi.append(r["ci_high"] - r["estimate"] if np.isfinite(r["ci_high"]) else 0.0)
            ax1.bar(xs, ys, width=w, color=algo_color(a), alpha=0.8)
            if xs:
                ax1.errorbar(xs, ys, yerr=[lo, hi], fmt="none", ecolor="k", capsize=2, lw=1)
            for x in na:
                ax1.text(x, 0, "n/a", rotation=90, ha="center", va="bottom", fontsize=7,
                         color=algo_color(a))
        ax1.set_xticks(range(len(tasks)))
        ax1.set_xticklabels(tasks, rotation=30, ha="right", fontsize=8)
        ax1.axhline(0, color="k", lw=0.8)
        ax1.legend(handles=[Patch(color=algo_color(a), alpha=0.8,
                                  label=f"{a} ({_algo_seeds(entries, a)})") for a in algos],
                   fontsize=8)
        ax1.grid(axis="y", alpha=0.3)
    ax1.set_ylabel("KL(actions || fitted Gaussian)  [nats]")
    ax1.set_title("Non-Gaussianity (0 = Gaussian-shaped); n/a = point mass / undefined",
                  fontsize=10)

    b = kl_df[kl_df["kind"] == "between_algos"]
    if not len(b):
        _no_data(ax2, "no task with two audited algorithms")
    else:
        pairs = sorted(set(zip(b["algo"], b["other_algo"])))
        btasks = sorted(b["task"].unique())
        mat = np.full((len(pairs), len(btasks)), np.nan)
        nse = np.zeros_like(mat, dtype=int)
        present = np.zeros_like(mat, dtype=bool)
        for r in b.itertuples():
            mat[pairs.index((r.algo, r.other_algo)), btasks.index(r.task)] = r.estimate
            nse[pairs.index((r.algo, r.other_algo)), btasks.index(r.task)] = r.n_seeds
            present[pairs.index((r.algo, r.other_algo)), btasks.index(r.task)] = True
        finite = mat[np.isfinite(mat)]
        vmax = float(np.quantile(finite, 0.95)) if finite.size else 1.0
        vmax = vmax if vmax > 0 else 1.0
        cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
        im = ax2.imshow(np.ma.masked_invalid(mat), aspect="auto", cmap=cmap, vmin=0, vmax=vmax)
        for i in range(len(pairs)):
            for j in range(len(btasks)):
                v = mat[i, j]
                txt = (f"{v:.2g}\n({nse[i, j]})" if np.isfinite(v)
                       else "n/a" if present[i, j] else "not run")
                ax2.text(j, i, txt, ha="center", va="center", fontsize=6.5,
                         color="k" if (not np.isfinite(v) or v > 0.6 * vmax) else "w")
        ax2.set_xticks(range(len(btasks)))
        ax2.set_xticklabels(btasks, rotation=30, ha="right", fontsize=8)
        ax2.set_yticks(range(len(pairs)))
        ax2.set_yticklabels([f"KL({a} || {o})" for a, o in pairs], fontsize=8)
        fig.colorbar(im, ax=ax2, label="KL [nats] (mean over seeds)", shrink=0.85)
    ax2.set_title("Between algorithms at the same probe states\n(cell: estimate (seeds); "
                  "n/a = undefined, e.g. a point mass)",
                  fontsize=10)
    fig.suptitle(f"KL divergence of the action distributions — {distribution} distribution\n"
                 f"({_seeds_text(entries)})", fontsize=11)
    cap = (f"Audited: {DISTRIBUTION_TEXT[distribution]}; {_seeds_text(entries)}. kNN KL "
           f"estimates (analysis.kl) per probe state, averaged over probe states per seed, then "
           f"over seeds; error bars: 95% percentile bootstrap CI over seeds. Deterministic point "
           f"masses have no density: n/a. Colour scale clipped at the 95th percentile. "
           f"{_skipped_text(entries)}")
    return _save(fig, outdir, "kl_divergence", cap, provenance, entries)


def _histogram_seed(task_entries):
    """The seed audited for the most algorithms (ties: the lowest)."""
    count: dict[int, int] = {}
    for e in task_entries:
        count[e.seed] = count.get(e.seed, 0) + 1
    return min(count, key=lambda s: (-count[s], s))


def plot_action_histograms(entries, distribution, outdir, provenance, n_states=3):
    audited = [e for e in entries if e.audited]
    tasks = sorted({e.task for e in audited})
    n_states = max(1, int(n_states))
    # per task: the panels (probe state, action dim), first 1-2 dims of the first n_states states
    layout = {}
    for task in tasks:
        te = [e for e in audited if e.task == task]
        seed = _histogram_seed(te)
        te = sorted([e for e in te if e.seed == seed], key=lambda e: e.algo)
        P = min(n_states, max(e.actions.shape[0] for e in te))
        dims = min(2, max(e.actions.shape[2] for e in te))
        layout[task] = (seed, te, [(s, d) for s in range(P) for d in range(dims)])
    ncols = max([len(v[2]) for v in layout.values()] + [1])
    nrows = max(len(tasks), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(2.3 * ncols, 6.5), 1.95 * nrows + 1.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    if not tasks:
        axes[0, 0].set_visible(True)
        _no_data(axes[0, 0], "no audited runs")
    bins = np.linspace(-1.0, 1.0, 41)
    algos_shown = set()
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
                ax.hist(v, bins=bins, range=(-1, 1), density=True, histtype="step", lw=1.4,
                        color=algo_color(e.algo))
                algos_shown.add(e.algo)
                at_bound = float(np.mean(np.abs(v) >= 1 - 1e-3))
                if at_bound >= 0.01:
                    bound_bits.append(f"{e.algo} {at_bound:.0%}")
            if bound_bits:
                ax.text(0.02, 0.97, "at ±1: " + ", ".join(bound_bits), transform=ax.transAxes,
                        fontsize=6, va="top", ha="left",
                        bbox=dict(fc="white", ec="none", alpha=0.7, pad=1))
            ax.set_xlim(-1.05, 1.05)
            for xb in (-1, 1):
                ax.axvline(xb, color="0.6", lw=0.8, ls=":")
            ax.set_title(f"{task} (seed {seed})\nprobe state {s}, action dim {dim}", fontsize=7.5)
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel("density", fontsize=8)
            ax.set_xlabel("action", fontsize=7)
    if algos_shown:
        fig.legend(handles=[plt.Line2D([0], [0], color=algo_color(a), lw=2, label=a)
                            for a in sorted(algos_shown)],
                   loc="upper right", ncol=len(algos_shown), fontsize=9, frameon=False)
    fig.suptitle(f"Action samples at the first {n_states} probe states — {distribution} "
                 f"distribution\n(one seed per task shown; {_seeds_text(entries)})", fontsize=11)
    cap = (f"Audited: {DISTRIBUTION_TEXT[distribution]}. Per task the seed audited for the most "
           f"algorithms (lowest on ties); density histograms of the first 1-2 action dimensions "
           f"over [-1, 1] (40 bins; dotted lines: the bounds). 'at ±1': share of samples "
           f"within 0.001 of a bound (shown from 1%). {_seeds_text(entries).capitalize()}. "
           f"{_skipped_text(entries)}")
    return _save(fig, outdir, "action_histograms", cap, provenance, entries)


def plot_toy_optima(entries, toy_df, distribution, outdir, provenance, max_points=1500,
                    seed=DEFAULT_SEED):
    audited = [e for e in entries if e.audited and e.optima is not None]
    tasks = sorted({e.task for e in audited})
    algos = sorted({e.algo for e in audited})
    nrows, ncols = max(len(tasks), 1), max(len(algos), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.3 * nrows + 1.2),
                             squeeze=False)
    if not tasks:
        _no_data(axes[0, 0], "no audited run of a task with known optima")
    for row, task in enumerate(tasks):
        optima = task_optima(audited)[task]
        for col, algo in enumerate(algos):
            ax = axes[row, col]
            runs = sorted([e for e in audited if e.task == task and e.algo == algo],
                          key=lambda e: e.seed)
            c = algo_color(algo)
            t = toy_df[(toy_df["task"] == task) & (toy_df["algo"] == algo)
                       & (toy_df["status"] == "complete")]
            cov = ",".join(str(int(v)) for v in t["optima_covered"].dropna())
            if not runs:
                _no_data(ax)
                ax.set_title(f"{task} — {algo}", fontsize=9)
                continue
            if optima.shape[1] == 1:
                bins = np.linspace(-1, 1, 61)
                styles = ["-", "--", ":", "-."]
                for i, e in enumerate(runs):
                    ax.hist(e.actions[:, :, 0].ravel(), bins=bins, density=True, histtype="step",
                            color=c, lw=1.3, ls=styles[i % len(styles)], label=f"seed {e.seed}")
                for o in optima[:, 0]:
                    ax.axvline(o, color="k", ls="--", lw=1)
                ax.set_xlabel("action", fontsize=8)
                ax.set_ylabel("density", fontsize=8)
                ax.legend(fontsize=6.5, frameon=False)
            else:
                markers = ["o", "s", "^", "D", "v", "P"]
                for i, e in enumerate(runs):
                    x = e.actions.reshape(-1, e.actions.shape[-1])
                    x = subsample(x, max_points, f"toyfig/{algo}/{task}/{e.seed}", seed)
                    ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.25, color=c,
                               marker=markers[i % len(markers)], lw=0,
                               label=f"seed {e.seed}")
                for o in optima:
                    ax.add_patch(plt.Circle(o, TOY_RADIUS, fill=False, ls="--", color="k", lw=1))
                ax.plot(optima[:, 0], optima[:, 1], "kx", ms=7, mew=1.5, label="true optima")
                ax.set_aspect("equal")
                ax.set_ylim(-1.05, 1.4)  # room for the legend above the action square
                ax.set_xlabel("action dim 0", fontsize=8)
                ax.set_ylabel("action dim 1", fontsize=8)
                handles = [plt.Line2D([0], [0], ls="", marker=markers[i % len(markers)], color=c,
                                      ms=4, label=f"seed {e.seed}") for i, e in enumerate(runs)]
                handles.append(plt.Line2D([0], [0], ls="", marker="x", color="k", ms=5,
                                          label="true optima"))
                ax.legend(handles=handles, fontsize=6.5, frameon=False, loc="upper center",
                          ncol=min(len(handles), 4), columnspacing=0.8, handletextpad=0.2)
            ax.set_xlim(-1.05, 1.05)
            ax.tick_params(labelsize=7)
            ax.set_title(f"{task} — {algo} ({_n_seeds(len(runs))})\noptima covered per seed: "
                         f"{cov or 'n/a'} of {len(optima)}", fontsize=8.5)
    fig.suptitle(f"Tasks with known optima — {distribution} distribution\n"
                 f"({_seeds_text(entries, set(task_optima(entries)))})", fontsize=11)
    cap = (f"Audited: {DISTRIBUTION_TEXT[distribution]}. Samples pooled over the probe states "
           f"(the context does not move the optima); 1-D: histogram per seed, 2-D: scatter "
           f"(up to {max_points} points per seed). Dashed: true optima (2-D: circles of radius "
           f"{TOY_RADIUS}). An optimum is covered when at least {TOY_MIN_SHARE:.0%} of the "
           f"samples lie within {TOY_RADIUS} of it. {_skipped_text(entries)}")
    return _save(fig, outdir, "toy_optima", cap, provenance, audited)


