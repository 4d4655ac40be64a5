"""The audit's tables: per-state measurements, and per (algorithm, task, distribution) means over
seeds with intervals from the analysis's one bootstrap engine
(analysis.estimators.bootstrap.bootstrap_mean_ci).

Every probe state is measured once (:func:`measure_entries`); the tables are views of those
measurements."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.audit.load import RunEntry, task_optima
from analysis.records import catalogue
from analysis.audit.measure import (DEFAULT_KL_SAMPLES, between_kl, interior_gaussian_kl,
                                    state_measures, subsample)
from analysis.estimators.bootstrap import DEFAULT_REPS, DEFAULT_SEED, bootstrap_mean_ci

TOY_RADIUS = 0.15      # a sample is near an optimum within this Euclidean distance
TOY_MIN_SHARE = 0.05   # an optimum is covered when at least this share of samples is near it
# A run of a task with known optima has learned it when its final evaluation return is at least
# this share of the optimum's. Reference points on the toy bandits (reward 1 at an optimum): a
# uniform-random policy earns 0.68 (1-D) and 0.46 (2-D), a policy on the bounds 0.25 and 0.06.
LEARNED_THRESHOLD = 0.8

MODES_COLUMNS = ["algo", "task", "seed", "distribution", "state", "status", "interior_modes",
                 "interior_modes_near_bound", "n_interior", "components", "mass_interior",
                 "mass_face", "mass_corner", "mass_any_bound", "n_heavy_corners",
                 "top_corner_mass", "n_heavy_patterns", "pattern_entropy",
                 "kl_interior_gaussian_fit", "detail"]
# measures summarised over seeds (mean with a bootstrap interval), and their column prefixes;
# the score-target scale sits beside the mass on the bounds, so that the two read together
SUMMARY_MEASURES = ("interior_modes", "frac_multimodal", "mass_any_bound", "score_target_rms",
                    "mass_corner", "components", "final_normalized", "mass_face",
                    "mass_interior", "n_heavy_patterns", "pattern_entropy")
SUMMARY_COLUMNS = (["algo", "task", "distribution", "n_seeds", "n_states"]
                   + [f"{m}{s}" for m in SUMMARY_MEASURES for s in ("", "_ci_low", "_ci_high")]
                   + ["interior_modes_near_bound", "true_modes", "n_learned", "n_skipped",
                      "note"])
BOUND_COLUMNS = ["algo", "task", "distribution", "dim", "n_seeds", "lower", "lower_ci_low",
                 "lower_ci_high", "upper", "upper_ci_low", "upper_ci_high", "balance"]
#: bound_patterns.csv: per run, distribution and probe state, every bound pattern holding at least
#: PATTERN_MIN_SHARE of the samples ('-' lower bound, '0' inside, '+' upper bound per coordinate)
PATTERN_MIN_SHARE = 0.05
PATTERN_COLUMNS = ["algo", "task", "seed", "distribution", "state", "rank", "pattern", "share",
                   "n_heavy_patterns", "pattern_entropy"]
#: initial_state.csv: per run, distribution and action dimension, the mass at -1, at +1 and inside
#: at probe state 0 (the task's initial state, where the paper pictures its policy)
INITIAL_COLUMNS = ["algo", "task", "seed", "distribution", "dim", "lower", "upper", "inside",
                   "interior_modes", "n_heavy_patterns"]
KL_COLUMNS = ["kind", "algo", "other_algo", "task", "distribution", "estimate", "ci_low",
              "ci_high", "kl_pattern", "kl_interior", "covered_mass", "missing_mass", "n_seeds",
              "n_states", "note"]
SWEEP_MEASURES = ("final_normalized", "interior_modes", "mass_any_bound", "optima_covered",
                  "mass_corner", "score_target_rms")
#: Measures of a run (each its mean over the probe states) in the per-run table.
RUN_MEASURES = ("interior_modes", "interior_modes_near_bound", "frac_multimodal",
                "mass_interior", "mass_face", "mass_corner", "mass_any_bound", "components",
                "kl_interior_gaussian_fit", "n_heavy_patterns", "pattern_entropy",
                "top_pattern_mass")
RUN_COLUMNS = (["algo", "task", "seed", "role", "value", "distribution", "status", "audited",
                "learned", "true_modes", "final_normalized", "score_target_rms"]
               + list(RUN_MEASURES) + ["optima_covered", "path", "detail"])
TABLE_NAMES = tuple(catalogue.tables_of("audit", {}))  # and one per sweep


def sweep_columns(hparam: str) -> list[str]:
    """A sweep table's columns: the swept hyperparameter's own name holds its value."""
    return (["algo", "task", hparam, "distribution", "n_seeds"]
            + [f"{m}{s}" for m in SWEEP_MEASURES for s in ("", "_ci_low", "_ci_high")]
            + ["true_modes", "n_learned", "n_skipped", "note"])


#: The M_q sweep's table (the columns every sweep's table has, with M_q as the value's).
SWEEP_COLUMNS = sweep_columns("M_q")


def toy_columns(max_optima: int) -> list[str]:
    """toy_optima.csv's columns: one frac_opt<k> per optimum of the task with the most optima."""
    return (["algo", "task", "seed", "distribution", "status", "final_normalized", "learned",
             "n_samples", "optima"]
            + [f"frac_opt{k + 1}" for k in range(max_optima)]
            + ["frac_near_any", "optima_covered", "true_modes", "interior_modes_mean",
               "components_mean", "mass_any_bound", "detail"])


def learned(entry: RunEntry):
    """True / False for a run of a task with known optima (final return vs LEARNED_THRESHOLD);
    None where the task has none or the return is unknown."""
    if entry.optima is None or not math.isfinite(entry.final_normalized):
        return None
    return bool(entry.final_normalized >= LEARNED_THRESHOLD)


def _seed_note(n):
    if n == 0:
        return "no seed with a finite value"
    if n == 1:
        return "1 seed: no bootstrap CI (NaN)"
    if n <= 3:
        return f"only {n} seeds: bootstrap CI is coarse"
    return ""


def _learned_note(entries) -> str:
    flags = [learned(e) for e in entries if e.audited]
    flags = [f for f in flags if f is not None]
    missed = sum(1 for f in flags if not f)
    if not missed:
        return ""
    return (f"{missed} of {len(flags)} seeds did not learn the task (final return < "
            f"{LEARNED_THRESHOLD:g} of the optimum's): their mode counts are not evidence")


# ---------------------------------------------------------------------------------------------
# Measuring every probe state once
# ---------------------------------------------------------------------------------------------

def measure_entries(entries, kl_samples=DEFAULT_KL_SAMPLES, seed=DEFAULT_SEED,
                    measured=None) -> dict:
    """(path, distribution) -> [per-state measures (state_measures + ``kl_interior_gaussian_fit``
    and ``kl_note``)] for every audited entry; entries already in `measured` are not redone."""
    measured = {} if measured is None else measured
    for e in entries:
        key = (e.path, e.distribution)
        if not e.audited or key in measured:
            continue
        states = []
        for s in range(e.actions.shape[0]):
            x = e.actions[s]
            m = state_measures(x)
            m["kl_interior_gaussian_fit"], m["kl_note"] = interior_gaussian_kl(
                subsample(x, kl_samples, f"g/{e.algo}/{e.task}/{e.seed}/{e.distribution}/{s}",
                          seed), seed=seed)
            states.append(m)
        measured[key] = states
    return measured


def _run_mean(measured, e, name) -> float:
    """Mean over the probe states of one run's measure (NaN states skipped)."""
    v = np.array([m[name] for m in measured[(e.path, e.distribution)]], dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan


def _frac_multimodal(measured, e) -> float:
    """Share of the run's probe states whose interior part has several modes."""
    return float(np.mean([m["interior_modes"] > 1 for m in measured[(e.path, e.distribution)]
                          if math.isfinite(m["interior_modes"])] or [math.nan]))


def run_table(entries, measured) -> pd.DataFrame:
    """One row per listed run (of any role: a sweep's runs carry their swept value) and
    distribution: its status, whether it learned a task with known optima, its final return and
    score-target scale, and each measure as its mean over the probe states. What the figures
    show per seed, and what they count seeds and runs from."""
    rows = []
    for e in entries:
        flag = learned(e)
        row = {"algo": e.algo, "task": e.task, "seed": e.seed, "role": e.role,
               "value": e.sweep_value, "distribution": e.distribution, "status": e.status,
               "audited": e.audited, "learned": "" if flag is None else flag,
               "true_modes": len(e.optima) if e.optima is not None else math.nan,
               "final_normalized": e.final_normalized, "score_target_rms": e.score_target_rms,
               "path": e.path, "detail": e.detail}
        if e.audited:
            row.update({name: _run_mean(measured, e, name) for name in RUN_MEASURES
                        if name != "frac_multimodal"})
            row["frac_multimodal"] = _frac_multimodal(measured, e)
            if e.optima is not None:
                row["optima_covered"] = optima_coverage(e.actions, e.optima)[2]
        rows.append(row)
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    df["seed"] = df["seed"].astype(np.int64)
    df["audited"] = df["audited"].astype(bool)
    return df


def modes_table(entries, measured) -> pd.DataFrame:
    """One row per (audited run, distribution, probe state); one row without a state per run
    and distribution not audited."""
    rows = []
    for e in entries:
        base = {"algo": e.algo, "task": e.task, "seed": e.seed, "distribution": e.distribution,
                "status": e.status}
        if not e.audited:
            rows.append({**base, "state": pd.NA, "detail": e.detail})
            continue
        for s, m in enumerate(measured[(e.path, e.distribution)]):
            notes = [m["note"]] + ([f"KL: {m['kl_note']}"] if m["kl_note"] else [])
            rows.append({**base, "state": s, **{k: m[k] for k in MODES_COLUMNS if k in m},
                         "detail": "; ".join(n for n in notes if n)})
    df = pd.DataFrame(rows, columns=MODES_COLUMNS)
    df["state"] = df["state"].astype("Int64")
    df["seed"] = df["seed"].astype(np.int64)
    return df.sort_values(["algo", "task", "distribution", "seed", "state"], kind="stable",
                          ignore_index=True)


def _key(value):
    # NaN (an M_q unknown because the run could not be read) is one group, not one per run
    return None if isinstance(value, float) and math.isnan(value) else value


def _groups(entries, *keys):
    """Entries grouped by the attributes `keys`, sorted (numbers numerically, unknowns last)."""
    out: dict[tuple, list] = {}
    for e in entries:
        out.setdefault(tuple(_key(getattr(e, k)) for k in keys), []).append(e)
    def order(item):
        return tuple((v is None, v if isinstance(v, (int, float)) else 0, str(v))
                     for v in item[0])
    return dict(sorted(out.items(), key=order))


def _ci_columns(name, values, reps, seed) -> dict:
    m, lo, hi = bootstrap_mean_ci(values, reps, seed)
    return {name: m, f"{name}_ci_low": lo, f"{name}_ci_high": hi}


def _skipped_note(group) -> tuple[int, str]:
    skipped = [e for e in group if not e.audited]
    if not skipped:
        return 0, ""
    return len(skipped), (f"{len(skipped)} run(s) not audited: "
                          + ", ".join(f"seed {e.seed} {e.status}" for e in skipped))


def modes_summary(entries, measured, reps=DEFAULT_REPS, seed=DEFAULT_SEED) -> pd.DataFrame:
    """Per (algo, task, distribution): means over seeds with intervals of the interior modes, the
    share of probe states with several interior modes, the mass on the bounds and on corners,
    the end-of-training score-target scale (empty for learners that log none), the components,
    and the final return; the true number of modes and the seeds that learned the task where its
    optima are known."""
    optima = task_optima(entries)
    rows = []
    for (algo, task, dist), group in _groups(entries, "algo", "task", "distribution").items():
        ok = [e for e in group if e.audited]
        per_seed = {name: [_run_mean(measured, e, name) for e in ok]
                    for name in ("interior_modes", "mass_any_bound", "mass_corner", "components",
                                 "mass_face", "mass_interior", "n_heavy_patterns",
                                 "pattern_entropy")}
        per_seed["frac_multimodal"] = [_frac_multimodal(measured, e) for e in ok]
        per_seed["final_normalized"] = [e.final_normalized for e in ok]
        per_seed["score_target_rms"] = [e.score_target_rms for e in ok]
        row = {"algo": algo, "task": task, "distribution": dist, "n_seeds": len(ok),
               "n_states": max((e.actions.shape[0] for e in ok), default=0),
               "true_modes": len(optima[task]) if task in optima else math.nan}
        for name in SUMMARY_MEASURES:
            row.update(_ci_columns(name, per_seed[name], reps, seed))
        near = [_run_mean(measured, e, "interior_modes_near_bound") for e in ok]
        row["interior_modes_near_bound"] = (float(np.nanmean(near)) if np.isfinite(near).any()
                                            else math.nan)
        flags = [learned(e) for e in ok]
        row["n_learned"] = (sum(1 for f in flags if f) if task in optima else math.nan)
        row["n_skipped"], skipped = _skipped_note(group)
        note = [_seed_note(row["n_seeds"]), _learned_note(ok), skipped]
        counted = int(np.isfinite(per_seed["interior_modes"]).sum())
        if counted < len(ok):
            note.append(f"{len(ok) - counted} seed(s) without an interior part large enough to "
                        f"count its modes at any probe state")
        row["note"] = "; ".join(x for x in note if x)
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def bound_mass_table(entries, measured, reps=DEFAULT_REPS, seed=DEFAULT_SEED) -> pd.DataFrame:
    """Per (algo, task, distribution, action dimension): the probability of the lower and of the
    upper bound, mean over seeds (each seed: mean over probe states) with intervals."""
    rows = []
    for (algo, task, dist), group in _groups(entries, "algo", "task", "distribution").items():
        ok = [e for e in group if e.audited]
        if not ok:
            continue
        per_run = {side: np.array([np.mean([m[side] for m in measured[(e.path, dist)]], axis=0)
                                   for e in ok]) for side in ("lower", "upper")}
        for dim in range(per_run["lower"].shape[1]):
            row = {"algo": algo, "task": task, "distribution": dist, "dim": dim,
                   "n_seeds": len(ok)}
            for side in ("lower", "upper"):
                row.update(_ci_columns(side, per_run[side][:, dim], reps, seed))
            on_bound = row["lower"] + row["upper"]
            # the share of the dimension's bound mass on the upper bound: 0.5 an even split
            row["balance"] = row["upper"] / on_bound if on_bound > 0 else math.nan
            rows.append(row)
    return pd.DataFrame(rows, columns=BOUND_COLUMNS)


def pattern_table(entries, measured) -> pd.DataFrame:
    """Per audited run, distribution and probe state: every bound pattern holding at least
    PATTERN_MIN_SHARE of the samples, heaviest first (rank 1), with the state's number of such
    patterns and its pattern entropy (bits). Several heavy patterns are a multi-modal law over
    the faces of the action box, whatever the interior holds."""
    rows = []
    for e in entries:
        if not e.audited:
            continue
        for s, m in enumerate(measured[(e.path, e.distribution)]):
            heavy = [(p, w) for p, w in m["patterns"].items() if w >= PATTERN_MIN_SHARE]
            for rank, (pattern, share) in enumerate(heavy, start=1):
                rows.append({"algo": e.algo, "task": e.task, "seed": e.seed,
                             "distribution": e.distribution, "state": s, "rank": rank,
                             "pattern": pattern, "share": share,
                             "n_heavy_patterns": m["n_heavy_patterns"],
                             "pattern_entropy": m["pattern_entropy"]})
    df = pd.DataFrame(rows, columns=PATTERN_COLUMNS)
    return df.sort_values(["algo", "task", "distribution", "seed", "state", "rank"],
                          kind="stable", ignore_index=True)


def initial_state_table(entries, measured) -> pd.DataFrame:
    """Per audited run, distribution and action dimension: the share of probe state 0's samples
    at the lower bound, at the upper bound and inside, with the state's interior modes and heavy
    bound patterns: what the paper's picture of a policy at the initial state shows."""
    rows = []
    for e in entries:
        if not e.audited:
            continue
        m = measured[(e.path, e.distribution)][0]
        for dim in range(e.actions.shape[-1]):
            lower, upper = float(m["lower"][dim]), float(m["upper"][dim])
            rows.append({"algo": e.algo, "task": e.task, "seed": e.seed,
                         "distribution": e.distribution, "dim": dim, "lower": lower,
                         "upper": upper, "inside": 1.0 - lower - upper,
                         "interior_modes": m["interior_modes"],
                         "n_heavy_patterns": m["n_heavy_patterns"]})
    df = pd.DataFrame(rows, columns=INITIAL_COLUMNS)
    return df.sort_values(["algo", "task", "distribution", "seed", "dim"], kind="stable",
                          ignore_index=True)


def _summarise_notes(notes, total):
    """'<note>: 8/8 state estimates' summary of per-state notes."""
    out = []
    for note in sorted(set(n for n in notes if n)):
        k = sum(1 for n in notes if n == note)
        out.append(f"{note}: {k}/{total} state estimates")
    return out


def kl_table(entries, measured, reps=DEFAULT_REPS, seed=DEFAULT_SEED,
             kl_samples=DEFAULT_KL_SAMPLES) -> pd.DataFrame:
    """Per (algo, task, distribution) the interior part's KL to its Gaussian fit, and between
    every two algorithms at the same probe states and seed the KL by the chain rule over bound
    patterns; means over seeds with intervals."""
    rows = []
    for (algo, task, dist), group in _groups(entries, "algo", "task", "distribution").items():
        ok = [e for e in group if e.audited]
        per_seed = [_run_mean(measured, e, "kl_interior_gaussian_fit") for e in ok]
        states = [m for e in ok for m in measured[(e.path, dist)]]
        est, lo, hi = bootstrap_mean_ci(per_seed, reps, seed)
        n = int(np.isfinite(np.asarray(per_seed, dtype=float)).sum())
        note = [_seed_note(n)] + _summarise_notes([m["kl_note"] for m in states], len(states))
        rows.append({"kind": "interior_gaussian_fit", "algo": algo, "other_algo": "",
                     "task": task, "distribution": dist, "estimate": est, "ci_low": lo,
                     "ci_high": hi, "n_seeds": n,
                     "n_states": int(sum(math.isfinite(m["kl_interior_gaussian_fit"])
                                         for m in states)),
                     "note": "; ".join(x for x in note if x)})
    by_task: dict[tuple, dict[str, dict[int, RunEntry]]] = {}
    for e in entries:
        if e.audited:
            by_task.setdefault((e.task, e.distribution), {}).setdefault(e.algo, {})[e.seed] = e
    for (task, dist) in sorted(by_task):
        runs = by_task[(task, dist)]
        for a in sorted(runs):
            for b in sorted(runs):
                if a != b:
                    rows.append(_between_row(task, dist, a, b, runs, reps, seed, kl_samples))
    return pd.DataFrame(rows, columns=KL_COLUMNS)


def _between_row(task, dist, a, b, runs, reps, seed, kl_samples) -> dict:
    common = sorted(set(runs[a]) & set(runs[b]))
    per_seed = {k: [] for k in ("kl", "kl_pattern", "kl_interior", "covered_mass",
                                "missing_mass")}
    notes, extra, n_states = [], [], 0
    for s in common:
        ea, eb = runs[a][s], runs[b][s]
        if ea.states.shape != eb.states.shape or not np.allclose(ea.states, eb.states, atol=1e-5):
            extra.append(f"seed {s}: probe states differ between {a} and {b} (seed left out)")
            continue
        vals = {k: [] for k in per_seed}
        for p in range(ea.actions.shape[0]):
            x = subsample(ea.actions[p], kl_samples, f"k/{a}/{task}/{dist}/{s}/{p}", seed)
            y = subsample(eb.actions[p], kl_samples, f"k/{b}/{task}/{dist}/{s}/{p}", seed)
            r = between_kl(x, y, seed=seed)
            for k in vals:
                vals[k].append(r[k])
            notes.append(r["note"])
        n_states += int(np.isfinite(vals["kl"]).sum())
        for k, v in vals.items():
            v = np.asarray(v, dtype=float)
            per_seed[k].append(float(np.nanmean(v)) if np.isfinite(v).any() else math.nan)
    est, lo, hi = bootstrap_mean_ci(per_seed["kl"], reps, seed)
    n = int(np.isfinite(np.asarray(per_seed["kl"], dtype=float)).sum())
    note = [_seed_note(n)]
    if not common:
        note.append(f"no seed audited for both {a} and {b}")
    note += extra + _summarise_notes(notes, len(notes))

    def mean(k):
        v = np.asarray(per_seed[k], dtype=float)
        return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan

    return {"kind": "between_algos", "algo": a, "other_algo": b, "task": task,
            "distribution": dist, "estimate": est, "ci_low": lo, "ci_high": hi,
            "kl_pattern": mean("kl_pattern"), "kl_interior": mean("kl_interior"),
            "covered_mass": mean("covered_mass"), "missing_mass": mean("missing_mass"),
            "n_seeds": n, "n_states": n_states, "note": "; ".join(x for x in note if x)}


def _optima_text(optima):
    return " ".join("(" + ",".join(f"{v:g}" for v in o) + ")" for o in optima)


def optima_coverage(actions, optima) -> tuple[np.ndarray, float, int]:
    """Samples (P, N, d) pooled over probe states: share near each optimum, share near any, and
    how many optima hold at least TOY_MIN_SHARE."""
    x = actions.reshape(-1, actions.shape[-1])
    near = np.sqrt(((x[:, None, :] - optima[None, :, :]) ** 2).sum(-1)) <= TOY_RADIUS
    frac = near.mean(axis=0)
    return frac, float(near.any(axis=1).mean()), int(np.count_nonzero(frac >= TOY_MIN_SHARE))


def toy_table(entries, measured) -> pd.DataFrame:
    """One row per run and distribution of a task with known optima (config.json env.optima):
    its final return and whether it learned the task, the share of its samples near each
    optimum (pooled over probe states), beside its interior modes and mass on the bounds."""
    with_optima = [e for e in entries if e.optima is not None]
    max_optima = max([len(e.optima) for e in with_optima], default=0)
    rows = []
    for e in with_optima:
        flag = learned(e)
        row = {"algo": e.algo, "task": e.task, "seed": e.seed, "distribution": e.distribution,
               "status": e.status, "final_normalized": e.final_normalized,
               "learned": "" if flag is None else flag, "optima": _optima_text(e.optima),
               "true_modes": len(e.optima), "detail": e.detail, "n_samples": 0}
        if e.audited:
            frac, near_any, covered = optima_coverage(e.actions, e.optima)
            for k, v in enumerate(frac):
                row[f"frac_opt{k + 1}"] = float(v)
            row.update(n_samples=int(np.prod(e.actions.shape[:2])), frac_near_any=near_any,
                       optima_covered=covered,
                       interior_modes_mean=_run_mean(measured, e, "interior_modes"),
                       components_mean=_run_mean(measured, e, "components"),
                       mass_any_bound=_run_mean(measured, e, "mass_any_bound"))
            if flag is False:
                row["detail"] = (f"did not learn the task (final return "
                                 f"{e.final_normalized:.2f} < {LEARNED_THRESHOLD:g})")
        rows.append(row)
    df = pd.DataFrame(rows, columns=toy_columns(max_optima))
    if len(df):
        df = df.sort_values(["task", "algo", "distribution", "seed"], kind="stable",
                            ignore_index=True)
    return df


def sweep_table(entries, measured, hparam="M_q", reps=DEFAULT_REPS,
                seed=DEFAULT_SEED) -> pd.DataFrame:
    """A sweep (the runs of one sweep's role): per (algo, task, value of `hparam`, distribution)
    the final return, interior modes, mass on the bounds and in the corners, optima covered and
    the score target's scale, means over seeds with intervals."""
    optima = task_optima(entries)
    rows = []
    for (algo, task, value, dist), group in _groups(entries, "algo", "task", "sweep_value",
                                                    "distribution").items():
        ok = [e for e in group if e.audited]
        per_seed = {"final_normalized": [e.final_normalized for e in ok],
                    "interior_modes": [_run_mean(measured, e, "interior_modes") for e in ok],
                    "mass_any_bound": [_run_mean(measured, e, "mass_any_bound") for e in ok],
                    "mass_corner": [_run_mean(measured, e, "mass_corner") for e in ok],
                    "score_target_rms": [e.score_target_rms for e in ok],
                    "optima_covered": [optima_coverage(e.actions, e.optima)[2]
                                       if e.optima is not None else math.nan for e in ok]}
        row = {"algo": algo, "task": task, hparam: math.nan if value is None else value,
               "distribution": dist, "n_seeds": len(ok),
               "true_modes": len(optima[task]) if task in optima else math.nan}
        for name in SWEEP_MEASURES:
            row.update(_ci_columns(name, per_seed[name], reps, seed))
        row["n_learned"] = (sum(1 for e in ok if learned(e)) if task in optima else math.nan)
        row["n_skipped"], skipped = _skipped_note(group)
        row["note"] = "; ".join(x for x in (_seed_note(len(ok)), _learned_note(ok), skipped) if x)
        rows.append(row)
    return pd.DataFrame(rows, columns=sweep_columns(hparam))
