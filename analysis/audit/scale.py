"""The M_q at which a toy's score scale matches the benchmark tasks' (scale_match.csv).

M_q acts as an inverse temperature in units of Q, so M_q = 50 on a toy whose dQ/da is ten times
cheetah_run's is a far hotter setting. Per toy task (a task with known optima) and benchmark task,
the M_q at which the toy's end-of-training score-target RMS (M_q dQ/da against the sampler's unit
noise) equals the benchmark task's at its own setting, interpolated log-log between the toy's
audited M_q values (T = 5, the paper's target), and the toy's verdict at the nearest audited M_q.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.audit.tables import learned
from analysis.estimators.bootstrap import DEFAULT_REPS, DEFAULT_SEED, bootstrap_mean_ci
from analysis.estimators.mixed import bound_mass

SCALE_COLUMNS = ["algo", "task", "reference_task", "reference_rms", "n_reference_seeds",
                 "matched_M_q", "nearest_M_q", "toy_rms_at_nearest", "final_normalized",
                 "final_normalized_ci_low", "final_normalized_ci_high", "n_seeds", "n_learned",
                 "mass_any_bound", "note"]
SCALE_REFERENCE_ALL = "median of the benchmark tasks"


def setting(e) -> tuple | None:
    """(M_q, T, score target form) of a run of a QSM-like learner (one that declares M_q and T;
    runs recorded before the form existed used the constant one), else None."""
    h = e.hparams or {}
    if "M_q" not in h or "T" not in h:
        return None
    return float(h["M_q"]), int(h["T"]), str(h.get("score_target", "constant"))


def policy_runs(entries):
    """The audited policy entries, one per run (a run listed under two roles is one run)."""
    return list({e.path: e for e in entries if e.audited and e.distribution == "policy"}.values())


def mass_any_bound(e) -> float:
    """The run's mean over probe states of the share of samples with a coordinate on a bound."""
    return float(np.mean([bound_mass(x)["any_bound"] for x in e.actions]))


def scale_match_table(entries, reps=DEFAULT_REPS, seed=DEFAULT_SEED) -> pd.DataFrame:
    runs = [e for e in policy_runs(entries) if setting(e) is not None
            and math.isfinite(e.score_target_rms)]
    rows = []
    for algo in sorted({e.algo for e in runs}):
        mine = [e for e in runs if e.algo == algo]
        reference = {}
        for e in mine:
            if e.optima is None:
                reference.setdefault(e.task, []).append(e.score_target_rms)
        if not reference:
            continue
        targets = {task: float(np.median(v)) for task, v in sorted(reference.items())}
        counts = {task: len(v) for task, v in reference.items()}
        targets[SCALE_REFERENCE_ALL] = float(np.median(list(targets.values())))
        counts[SCALE_REFERENCE_ALL] = sum(counts.values())
        for toy in sorted({e.task for e in mine if e.optima is not None}):
            by_mq: dict[float, list] = {}
            for e in mine:
                if e.task == toy and setting(e)[1:] == (5, "constant"):
                    by_mq.setdefault(setting(e)[0], []).append(e)
            if not by_mq:
                continue
            mqs = np.array(sorted(by_mq))
            rms = np.array([np.median([e.score_target_rms for e in by_mq[m]]) for m in mqs])
            for ref, target in targets.items():
                matched, note = _interpolate(mqs, rms, target)
                nearest = float(mqs[np.argmin(np.abs(np.log(mqs) - math.log(matched)))]
                                if math.isfinite(matched) else
                                mqs[np.argmin(np.abs(np.log(rms) - math.log(target)))])
                at = by_mq[nearest]
                final = bootstrap_mean_ci([e.final_normalized for e in at], reps, seed)
                rows.append({"algo": algo, "task": toy, "reference_task": ref,
                             "reference_rms": target, "n_reference_seeds": counts[ref],
                             "matched_M_q": matched, "nearest_M_q": nearest,
                             "toy_rms_at_nearest": float(rms[list(mqs).index(nearest)]),
                             "final_normalized": final[0], "final_normalized_ci_low": final[1],
                             "final_normalized_ci_high": final[2], "n_seeds": len(at),
                             "n_learned": sum(1 for e in at if learned(e)),
                             "mass_any_bound": float(np.mean([mass_any_bound(e) for e in at])),
                             "note": note})
    return pd.DataFrame(rows, columns=SCALE_COLUMNS)


def _interpolate(mqs, rms, target) -> tuple[float, str]:
    """The M_q at which the score-target RMS reaches `target`, log-log between audited values;
    NaN with a note outside their range (a single value cannot be interpolated)."""
    if len(mqs) < 2:
        return math.nan, f"one audited M_q ({mqs[0]:g}): nothing to interpolate"
    order = np.argsort(rms)
    x, y = np.log(rms[order]), np.log(mqs[order])
    t = math.log(target)
    if not (x[0] <= t <= x[-1]):
        return math.nan, (f"the reference RMS {target:.3g} lies outside the toy's "
                          f"[{rms.min():.3g}, {rms.max():.3g}] over M_q {mqs.min():g} to "
                          f"{mqs.max():g}: nearest M_q given")
    return float(np.exp(np.interp(t, x, y))), ""
