"""Agreement of two implementations of one algorithm trained under the same protocol: the suite's
`qsm` (candidate) against the authors' `qsm_official` (reference), from the same scores.csv and
audit tables as every other figure.

What is compared, each with a 95% interval from rliable's bootstrap (fixed random state):

* final normalised score: the IQM of each implementation over its runs and tasks, and the
  difference IQM(candidate) - IQM(reference), runs of the two resampled independently within
  each task (rliable's StratifiedIndependentBootstrap);
* P(candidate > reference): rliable's probability of improvement, averaged over tasks;
* the learning curves, overlaid (mean over runs with its interval; fidelity_curves.csv);
* the multimodality audit of both at the probe states (modes_summary.csv: interior modes, mass
  on the bounds and in the corners, mixture components; policy and behaviour samples).

The equivalence margin is stated before looking: `--iqm-margin` m (default 0.05 normalised
score) and `--poi-margin` p (default 0.1). The verdict is

* **equivalent** when the interval of the IQM difference lies inside [-m, m] and the interval of
  P(candidate > reference) inside [0.5 - p, 0.5 + p];
* **different** when either interval lies entirely outside its band;
* **inconclusive** otherwise (with few seeds the intervals are wide: an honest answer), and
  always with fewer than MIN_SEEDS seeds per task on a side: a bootstrap over one seed is a
  point and over two has three distinct resamples, so its "interval" would decide on nothing.

    python -m analysis.training.fidelity --manifest results/tables/run_manifest.json \\
        --scores results/tables/scores.csv --status results/tables/run_status.csv \\
        --modes results/tables/modes_summary.csv --candidate qsm --reference qsm_official \\
        --tables results/tables --figures results/figures
"""
from __future__ import annotations

import argparse
import math
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.benchmark import stats  # noqa: E402
from analysis.estimators import bootstrap  # noqa: E402
from analysis.plotting import algo_color, finish_figure  # noqa: E402
from analysis.records.manifest import load_manifest  # noqa: E402
from analysis.records.outputs import counted, write_table  # noqa: E402
from qsm.declare.cli import HelpFormatter  # noqa: E402
from rliable import metrics  # noqa: E402

COLUMNS = ["quantity", "task", "algo", "estimate", "ci_low", "ci_high", "n_runs", "band_low",
           "band_high", "inside_band", "note"]
VERDICTS = ("equivalent", "different", "inconclusive")
MIN_SEEDS = 3  # per task and side, for a verdict other than inconclusive


def _iqm(scores):
    return np.array([metrics.aggregate_iqm(scores)])


def _iqm_difference(x, y):
    return np.array([metrics.aggregate_iqm(x) - metrics.aggregate_iqm(y)])


def _interval(point, interval):
    return float(np.ravel(point)[0]), float(np.ravel(interval)[0]), float(np.ravel(interval)[1])


def band_verdict(low, high, band_low, band_high):
    """'inside' / 'outside' / 'overlaps' for a confidence interval against an equivalence band."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "overlaps"
    if band_low <= low and high <= band_high:
        return "inside"
    if high < band_low or low > band_high:
        return "outside"
    return "overlaps"


def verdict(iqm_side, poi_side):
    if iqm_side == "inside" and poi_side == "inside":
        return "equivalent"
    if "outside" in (iqm_side, poi_side):
        return "different"
    return "inconclusive"


def compare(scores, status, candidate, reference, iqm_margin=0.05, poi_margin=0.1,
            reps=bootstrap.DEFAULT_REPS, seed=bootstrap.DEFAULT_SEED):
    """The agreement rows (a DataFrame with :data:`COLUMNS`), the verdict and the MatrixSet."""
    final = stats.final_score_table(scores, status)
    mset = stats.build_matrices(final, algos=[candidate, reference])
    mats = mset.matrices
    rows = []
    if candidate not in mats or reference not in mats:
        missing = [a for a in (candidate, reference) if a not in mats]
        rows.append({"quantity": "verdict", "algo": "", "task": "", "note":
                     f"no scored runs of {', '.join(missing)} on the shared tasks: nothing to "
                     f"compare", "inside_band": "inconclusive"})
        return pd.DataFrame(rows, columns=COLUMNS), "inconclusive", mset
    tasks = " ".join(mset.tasks)
    for algo in (candidate, reference):
        p, i = bootstrap.seeded_interval_estimates({algo: mats[algo]}, _iqm, reps, seed)
        est, lo, hi = _interval(p[algo], i[algo])
        rows.append({"quantity": "iqm", "task": tasks, "algo": algo, "estimate": est,
                     "ci_low": lo, "ci_high": hi, "n_runs": int(mats[algo].size)})
    pair = {"pair": [mats[candidate], mats[reference]]}
    p, i = bootstrap.seeded_interval_estimates(pair, _iqm_difference, reps, seed)
    d_est, d_lo, d_hi = _interval(p["pair"], i["pair"])
    iqm_side = band_verdict(d_lo, d_hi, -iqm_margin, iqm_margin)
    rows.append({"quantity": "iqm_difference", "task": tasks, "algo": f"{candidate} - {reference}",
                 "estimate": d_est, "ci_low": d_lo, "ci_high": d_hi,
                 "n_runs": int(mats[candidate].size + mats[reference].size),
                 "band_low": -iqm_margin, "band_high": iqm_margin, "inside_band": iqm_side})
    p, i = bootstrap.seeded_interval_estimates(pair, metrics.probability_of_improvement, reps, seed)
    p_est, p_lo, p_hi = _interval(p["pair"], i["pair"])
    poi_side = band_verdict(p_lo, p_hi, 0.5 - poi_margin, 0.5 + poi_margin)
    rows.append({"quantity": "probability_of_improvement", "task": tasks,
                 "algo": f"{candidate} > {reference}", "estimate": p_est, "ci_low": p_lo,
                 "ci_high": p_hi, "n_runs": int(mats[candidate].size + mats[reference].size),
                 "band_low": 0.5 - poi_margin, "band_high": 0.5 + poi_margin,
                 "inside_band": poi_side})
    sides = (mats[candidate].shape[0], mats[reference].shape[0])
    seeds = min(sides)
    result = verdict(iqm_side, poi_side) if seeds >= MIN_SEEDS else "inconclusive"
    counts = (f"{counted(seeds, 'seed')} per task" if sides[0] == sides[1] else
              f"seeds per task: {candidate} {sides[0]}, {reference} {sides[1]}")
    note = (f"margin stated up front: IQM difference within +-{iqm_margin:g}, P within "
            f"[{0.5 - poi_margin:g}, {0.5 + poi_margin:g}]; {counts}")
    if seeds < MIN_SEEDS:
        note += f" (under {MIN_SEEDS}: too few for a bootstrap interval to decide)"
    rows.append({"quantity": "verdict", "task": tasks, "algo": f"{candidate} vs {reference}",
                 "inside_band": result, "note": note})
    return pd.DataFrame(rows, columns=COLUMNS), result, mset


AUDIT_MEASURES = {  # modes_summary.csv's measures (analysis/audit/tables.py), as reported here
    "interior_modes": "modes of the interior part (samples off the bounds), mean over states and seeds",
    "mass_any_bound": "share of samples with some dimension at a bound",
    "mass_corner": "share of samples with every dimension at a bound",
    "components": "atoms and modes of every part (interior, faces, corners) holding >= 5% of samples",
}


def audit_quantity(distribution, measure):
    return f"audit {distribution}: {measure}"


def mode_rows(modes_summary, candidate, reference):
    """The multimodality audit of both implementations, as in modes_summary.csv: per algorithm,
    task and distribution (policy, behaviour), each of AUDIT_MEASURES with its 95% interval."""
    if modes_summary is None or not len(modes_summary):
        return pd.DataFrame(columns=COLUMNS)
    m = modes_summary[modes_summary["algo"].isin([candidate, reference])]
    rows = []
    for r in m.itertuples():
        for measure, meaning in AUDIT_MEASURES.items():
            estimate = getattr(r, measure)
            note = meaning if pd.notna(estimate) else f"not defined: {r.note}"
            rows.append({"quantity": audit_quantity(r.distribution, measure), "task": r.task,
                         "algo": r.algo, "estimate": estimate,
                         "ci_low": getattr(r, f"{measure}_ci_low"),
                         "ci_high": getattr(r, f"{measure}_ci_high"), "n_runs": r.n_seeds,
                         "note": note})
    return pd.DataFrame(rows, columns=COLUMNS)


def audit_text(table) -> str:
    """One line per implementation and task: the audit of its policy samples (what it learned)
    and of its behaviour samples (what it explores with)."""
    audit = table[table["quantity"].str.startswith("audit ")]
    parts = []
    for (algo, task), d in audit.groupby(["algo", "task"], sort=False):
        v = {q: e for q, e in zip(d["quantity"], d["estimate"])}

        def value(distribution, measure, fmt):
            x = v.get(audit_quantity(distribution, measure), np.nan)
            return format(x, fmt) if pd.notna(x) else "n/a"
        parts.append(f"{algo} on {task}: policy {value('policy', 'mass_any_bound', '.1%')} of samples "
                     f"on a bound, {value('policy', 'mass_corner', '.1%')} in a corner, "
                     f"{value('policy', 'components', '.1f')} components (atoms and modes); behaviour "
                     f"{value('behaviour', 'interior_modes', '.2f')} interior modes")
    return "; ".join(parts) or "no audit rows"


def markdown(table, result, candidate, reference) -> str:
    lines = [f"# Fidelity: {candidate} against {reference}", "",
             f"**Verdict: {result}.**", "",
             "| quantity | task | algo | estimate | 95% CI | band | inside |", "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        if r.quantity == "verdict":
            continue
        ci = (f"[{r.ci_low:.3f}, {r.ci_high:.3f}]" if pd.notna(r.ci_low) else "")
        band = (f"[{r.band_low:g}, {r.band_high:g}]" if pd.notna(r.band_low) else "")
        estimate = f"{r.estimate:.3f}" if pd.notna(r.estimate) else "n/a"
        lines.append(f"| {r.quantity} | {r.task} | {r.algo} | {estimate} | {ci} | {band} | "
                     f"{r.inside_band if isinstance(r.inside_band, str) else ''} |")
    note = table.loc[table["quantity"] == "verdict", "note"]
    if len(note):
        lines += ["", str(note.iloc[0])]
    return "\n".join(lines) + "\n"


def pooled_curves(scores, algos, reps=bootstrap.DEFAULT_REPS, seed=bootstrap.DEFAULT_SEED):
    """Mean normalised return over every benchmark run (tasks and seeds pooled) of each of
    `algos` at each evaluation step, with its interval (analysis.estimators.bootstrap.mean_bands):
    columns ``algo, step, mean, ci_low, ci_high, n_runs``."""
    cols = ["algo", "step", "mean", "ci_low", "ci_high", "n_runs"]
    frames = []
    for algo in algos:
        d = scores[(scores["algo"] == algo) & (scores["role"] == "benchmark")]
        if d.empty:
            continue
        wide = d.pivot_table(index=["task", "seed"], columns="step", values="normalized")
        mean, lo, hi, count = bootstrap.mean_bands(wide.to_numpy(), reps=reps, seed=seed)
        frames.append(pd.DataFrame({"algo": algo, "step": wide.columns.to_numpy().astype(np.int64),
                                    "mean": mean, "ci_low": lo, "ci_high": hi,
                                    "n_runs": count.astype(np.int64)}))
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def plot(table, curves, result, mset, candidate, reference, outdir, provenance, used,
         reps=bootstrap.DEFAULT_REPS, seed=bootstrap.DEFAULT_SEED):
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    # (a) learning curves, overlaid
    ax = axes[0]
    for algo in (candidate, reference):
        d = curves[curves["algo"] == algo]
        if d.empty:
            continue
        ax.plot(d["step"], d["mean"], color=algo_color(algo),
                label=f"{algo} ({int(d['n_runs'].max())} runs)")
        ax.fill_between(d["step"], d["ci_low"], d["ci_high"], color=algo_color(algo), alpha=0.2,
                        linewidth=0)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("normalised return (return / 1000)")
    ax.set_title("Learning curves (mean over runs, 95% CI)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    # (b) IQM difference and (c) P(candidate > reference), against their bands
    for ax, quantity, title in ((axes[1], "iqm_difference",
                                 f"IQM({candidate}) - IQM({reference})"),
                                (axes[2], "probability_of_improvement",
                                 f"P({candidate} > {reference})")):
        row = table[table["quantity"] == quantity]
        if row.empty:
            ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        r = row.iloc[0]
        ax.axvspan(r.band_low, r.band_high, color="0.85", label="equivalence band")
        ax.errorbar([r.estimate], [0], xerr=[[r.estimate - r.ci_low], [r.ci_high - r.estimate]],
                    fmt="o", color="black", capsize=4, label="estimate, 95% CI")
        ax.axvline(0.5 if quantity == "probability_of_improvement" else 0.0, color="0.5", lw=0.8)
        ax.set_yticks([])
        ax.set_title(f"{title}: CI {r.inside_band} the band", fontsize=10)
        ax.set_xlabel("normalised score" if quantity == "iqm_difference" else "probability")
        ax.legend(fontsize=8, frameon=False, loc="upper left")
    note = table.loc[table["quantity"] == "verdict", "note"]
    caption = (f"Verdict: {result}. {note.iloc[0] if len(note) else ''}. Final normalised "
               f"scores over tasks {', '.join(mset.tasks)}; intervals: rliable's stratified "
               f"bootstrap, {reps} resamples, seed {seed}. Audit at the probe states: {audit_text(table)}.")
    return finish_figure(fig, outdir, "fidelity", caption, provenance, used, width=190)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.training.fidelity",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=HelpFormatter)
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json (analysis/records/manifest.py)")
    ap.add_argument("--scores", required=True, help="scores.csv from analysis.benchmark.aggregate")
    ap.add_argument("--status", required=True,
                    help="run_status.csv from analysis.benchmark.aggregate")
    ap.add_argument("--modes", help="modes_summary.csv from the audit (default: no mode rows)")
    ap.add_argument("--candidate", required=True, help="the implementation under test (qsm)")
    ap.add_argument("--reference", required=True,
                    help="the implementation it is compared with (qsm_official)")
    ap.add_argument("--reps", type=int, default=bootstrap.DEFAULT_REPS,
                    help="bootstrap replications")
    ap.add_argument("--seed", type=int, default=bootstrap.DEFAULT_SEED,
                    help="seed of the bootstrap")
    ap.add_argument("--iqm-margin", type=float, default=0.05,
                    help="equivalence band of the IQM difference, +-m normalised score")
    ap.add_argument("--poi-margin", type=float, default=0.1,
                    help="equivalence band of P(candidate > reference), 0.5 +- p")
    ap.add_argument("--tables", required=True, help="folder for fidelity.csv and fidelity.md")
    ap.add_argument("--figures", required=True, help="folder for the fidelity figure")
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    if not (0 < a.poi_margin < 0.5) or a.iqm_margin <= 0:
        ap.error("--iqm-margin must be > 0 and --poi-margin in (0, 0.5)")
    scores, status = stats.load_inputs(a.scores, a.status)
    table, result, mset = compare(scores, status, a.candidate, a.reference, a.iqm_margin,
                                  a.poi_margin, a.reps, a.seed)
    modes = pd.read_csv(a.modes) if a.modes and Path(a.modes).is_file() else None
    table = pd.concat([table, mode_rows(modes, a.candidate, a.reference)],
                      ignore_index=True)
    prov = stats.provenance_of(load_manifest(a.manifest), status, "analysis.training.fidelity")
    used = stats.paths_of(prov, [k for k in mset.runs()
                                 if k[0] in (a.candidate, a.reference)])
    tables = Path(a.tables)
    write_table(tables / "fidelity.csv", table, prov, used, float_format="%.6g")
    write_table(tables / "fidelity.md", markdown(table, result, a.candidate, a.reference),
                prov, used)
    curves = pooled_curves(scores, (a.candidate, a.reference), a.reps, a.seed)
    write_table(tables / "fidelity_curves.csv", curves, prov, used)
    plot(table, curves, result, mset, a.candidate, a.reference, a.figures, prov, used,
         a.reps, a.seed)
    print(textwrap.indent(markdown(table, result, a.candidate, a.reference), "  "),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
