"""The audit's tables: per-state measurements, and per (algorithm, task) means over seeds with
intervals from the analysis's one bootstrap engine (analysis.stats.bootstrap_mean_ci)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.audit.load import RunEntry, task_optima
from analysis.audit.measure import (DEFAULT_KL_SAMPLES, between_kl, gaussian_kl, is_point_mass,
                                    mode_measure, subsample)
from analysis.stats import DEFAULT_REPS, DEFAULT_SEED, bootstrap_mean_ci

TOY_RADIUS = 0.15      # a sample is near an optimum within this Euclidean distance
TOY_MIN_SHARE = 0.05   # an optimum is covered when at least this share of samples is near it
POINT_MASS_BOUND_TOL = 1e-6  # a point mass is at a bound within the contract's tolerance

MODES_COLUMNS = ["algo", "task", "seed", "state", "n_modes", "n_bound_modes", "status",
                 "kl_gaussian_fit", "detail"]
SUMMARY_COLUMNS = ["algo", "task", "n_seeds", "n_states", "mean_modes", "ci_low", "ci_high",
                   "frac_multimodal", "frac_ci_low", "frac_ci_high", "mean_bound_modes",
                   "true_modes", "n_skipped", "note"]
KL_COLUMNS = ["kind", "algo", "other_algo", "task", "estimate", "ci_low", "ci_high", "n_seeds",
              "n_states", "note"]
TABLE_NAMES = ("modes.csv", "modes_summary.csv", "kl.csv", "toy_optima.csv")


def toy_columns(max_optima: int) -> list[str]:
    """toy_optima.csv's columns: one frac_opt<k> per optimum of the task with the most optima."""
    return (["algo", "task", "seed", "status", "n_samples", "optima"]
            + [f"frac_opt{k + 1}" for k in range(max_optima)]
            + ["frac_near_any", "optima_covered", "true_modes", "n_modes_median",
               "n_modes_mean", "detail"])


def _seed_note(n):
    if n == 0:
        return "no seed with a finite value"
    if n == 1:
        return "1 seed: no bootstrap CI (NaN)"
    if n <= 3:
        return f"only {n} seeds: bootstrap CI is coarse"
    return ""


def modes_table(entries, kl_samples=DEFAULT_KL_SAMPLES, seed=DEFAULT_SEED) -> pd.DataFrame:
    """One row per (audited run, probe state); one row without a state per run not audited."""
    rows = []
    for e in entries:
        base = {"algo": e.algo, "task": e.task, "seed": e.seed, "status": e.status}
        if not e.audited:
            rows.append({**base, "state": pd.NA, "n_modes": math.nan, "n_bound_modes": math.nan,
                         "kl_gaussian_fit": math.nan, "detail": e.detail})
            continue
        for s in range(e.actions.shape[0]):
            x = e.actions[s]
            notes = []
            try:
                n_modes, n_bound = mode_measure(x)
            except Exception as exc:
                if is_point_mass(x):  # one atom; at a bound if any coordinate is
                    n_modes = 1
                    n_bound = int(np.any(np.abs(x[0]) >= 1 - POINT_MASS_BOUND_TOL))
                    notes.append("point mass: 1 mode")
                else:
                    n_modes, n_bound = math.nan, math.nan
                    notes.append(f"mode count failed ({type(exc).__name__}: {exc})")
            v, note = gaussian_kl(subsample(x, kl_samples, f"g/{e.algo}/{e.task}/{e.seed}/{s}",
                                            seed), seed=seed)
            if note:
                notes.append(f"KL to Gaussian: {note}")
            rows.append({**base, "state": s, "n_modes": n_modes, "n_bound_modes": n_bound,
                         "kl_gaussian_fit": v, "detail": "; ".join(notes)})
    df = pd.DataFrame(rows, columns=MODES_COLUMNS)
    df["state"] = df["state"].astype("Int64")
    df["seed"] = df["seed"].astype(np.int64)
    return df.sort_values(["algo", "task", "seed", "state"], kind="stable", ignore_index=True)


def _groups(df):
    return sorted(set(map(tuple, df[["algo", "task"]].astype(str).to_numpy())))


def modes_summary(modes_df, entries, reps=DEFAULT_REPS, seed=DEFAULT_SEED) -> pd.DataFrame:
    """Per (algo, task): mean mode count and share of multimodal states over seeds, with
    intervals; the true number of modes where the task's optima are known (from the runs)."""
    optima = task_optima(entries)
    rows = []
    for algo, task in _groups(modes_df):
        g = modes_df[(modes_df["algo"] == algo) & (modes_df["task"] == task)]
        ok = g[(g["status"] == "complete") & g["state"].notna()]
        skipped = g[(g["status"] != "complete")]
        n_skipped = int(skipped[["seed"]].shape[0])
        ok = ok[np.isfinite(ok["n_modes"].astype(float))]
        per_seed = ok.groupby("seed").agg(m=("n_modes", "mean"),
                                          f=("n_modes", lambda v: float(np.mean(v > 1))),
                                          b=("n_bound_modes", "mean"), n=("n_modes", "size"))
        n = len(per_seed)
        m, lo, hi = bootstrap_mean_ci(per_seed["m"], reps, seed)
        f, flo, fhi = bootstrap_mean_ci(per_seed["f"], reps, seed)
        b = float(per_seed["b"].mean()) if n else math.nan
        states = sorted(set(per_seed["n"])) if n else []
        note = [_seed_note(n)]
        if len(states) > 1:
            note.append(f"seeds have different numbers of probe states {states}")
        if n_skipped:
            note.append(f"{n_skipped} run(s) not audited: " + ", ".join(
                f"seed {r.seed} {r.status}" for r in skipped.itertuples()))
        rows.append({"algo": algo, "task": task, "n_seeds": n,
                     "n_states": states[0] if len(states) == 1 else (max(states) if states else 0),
                     "mean_modes": m, "ci_low": lo, "ci_high": hi, "frac_multimodal": f,
                     "frac_ci_low": flo, "frac_ci_high": fhi, "mean_bound_modes": b,
                     "true_modes": len(optima[task]) if task in optima else math.nan,
                     "n_skipped": n_skipped, "note": "; ".join(x for x in note if x)})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _summarise_notes(notes, total):
    """'<note> at 8/8 state estimates' summary of per-state notes."""
    out = []
    for note in sorted(set(n for n in notes if n)):
        k = sum(1 for n in notes if n == note)
        out.append(f"{note}: {k}/{total} state estimates")
    return out


def kl_table(entries, modes_df, reps=DEFAULT_REPS, seed=DEFAULT_SEED,
             kl_samples=DEFAULT_KL_SAMPLES) -> pd.DataFrame:
    """KL to the fitted Gaussian per (algo, task), and between every two algorithms per task at
    the same probe states and seed; means over seeds with intervals."""
    rows = []
    # KL to the fitted Gaussian (computed per state in modes_df)
    for algo, task in _groups(modes_df):
        g = modes_df[(modes_df["algo"] == algo) & (modes_df["task"] == task)
                     & (modes_df["status"] == "complete") & modes_df["state"].notna()]
        per_seed = g.groupby("seed")["kl_gaussian_fit"].mean()  # NaN states are skipped
        est, lo, hi = bootstrap_mean_ci(per_seed.to_numpy(), reps, seed)
        n = int(np.isfinite(per_seed.to_numpy(dtype=float)).sum())
        notes = [d.split("KL to Gaussian: ", 1)[1].split(";")[0] if "KL to Gaussian: " in d else ""
                 for d in g["detail"].fillna("")]
        note = _summarise_notes(notes, len(g))
        note.insert(0, _seed_note(n))
        rows.append({"kind": "gaussian_fit", "algo": algo, "other_algo": "", "task": task,
                     "estimate": est, "ci_low": lo, "ci_high": hi, "n_seeds": n,
                     "n_states": int(np.isfinite(g["kl_gaussian_fit"].astype(float)).sum()),
                     "note": "; ".join(x for x in note if x)})
    # KL between algorithms at the same probe states
    by_task: dict[str, dict[str, dict[int, RunEntry]]] = {}
    for e in entries:
        if e.audited:
            by_task.setdefault(e.task, {}).setdefault(e.algo, {})[e.seed] = e
    for task in sorted(by_task):
        algos = sorted(by_task[task])
        for a in algos:
            for b in algos:
                if a != b:
                    rows.append(_between_row(task, a, b, by_task[task], reps, seed, kl_samples))
    return pd.DataFrame(rows, columns=KL_COLUMNS)


def _between_row(task, a, b, runs, reps, seed, kl_samples) -> dict:
    common = sorted(set(runs[a]) & set(runs[b]))
    per_seed, notes, extra, n_states = [], [], [], 0
    for s in common:
        ea, eb = runs[a][s], runs[b][s]
        if ea.states.shape != eb.states.shape or not np.allclose(ea.states, eb.states, atol=1e-5):
            extra.append(f"seed {s}: probe states differ between {a} and {b} (seed left out)")
            per_seed.append(math.nan)
            continue
        vals = []
        for p in range(ea.actions.shape[0]):
            x = subsample(ea.actions[p], kl_samples, f"k/{a}/{task}/{s}/{p}", seed)
            y = subsample(eb.actions[p], kl_samples, f"k/{b}/{task}/{s}/{p}", seed)
            v, note = between_kl(x, y, seed=seed)
            vals.append(v)
            notes.append(note)
        vals = np.asarray(vals)
        n_states += int(np.isfinite(vals).sum())
        per_seed.append(float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan)
    est, lo, hi = bootstrap_mean_ci(per_seed, reps, seed)
    n = int(np.isfinite(np.asarray(per_seed, dtype=float)).sum())
    note = [_seed_note(n)]
    if not common:
        note.append(f"no seed audited for both {a} and {b}")
    note += extra + _summarise_notes(notes, len(notes))
    return {"kind": "between_algos", "algo": a, "other_algo": b, "task": task, "estimate": est,
            "ci_low": lo, "ci_high": hi, "n_seeds": n, "n_states": n_states,
            "note": "; ".join(x for x in note if x)}


def _optima_text(optima):
    return " ".join("(" + ",".join(f"{v:g}" for v in o) + ")" for o in optima)


def toy_table(entries, modes_df) -> pd.DataFrame:
    """One row per run of a task with known optima (config.json env.optima): the share of its
    samples near each optimum, pooled over probe states, beside the mode counter's count."""
    with_optima = [e for e in entries if e.optima is not None]
    max_optima = max([len(e.optima) for e in with_optima], default=0)
    rows = []
    for e in with_optima:
        optima = e.optima
        row = {"algo": e.algo, "task": e.task, "seed": e.seed, "status": e.status,
               "optima": _optima_text(optima), "true_modes": len(optima), "detail": e.detail,
               "n_samples": 0, "frac_near_any": math.nan, "optima_covered": math.nan,
               "n_modes_median": math.nan, "n_modes_mean": math.nan}
        for k in range(max_optima):
            row[f"frac_opt{k + 1}"] = math.nan
        if e.audited:
            x = e.actions.reshape(-1, e.actions.shape[-1])
            dist = np.sqrt(((x[:, None, :] - optima[None, :, :]) ** 2).sum(-1))
            near = dist <= TOY_RADIUS
            frac = near.mean(axis=0)
            for k, v in enumerate(frac):
                row[f"frac_opt{k + 1}"] = float(v)
            row["n_samples"] = int(len(x))
            row["frac_near_any"] = float(near.any(axis=1).mean())
            row["optima_covered"] = int(np.count_nonzero(frac >= TOY_MIN_SHARE))
            m = modes_df[(modes_df["algo"] == e.algo) & (modes_df["task"] == e.task)
                         & (modes_df["seed"] == e.seed) & (modes_df["status"] == "complete")]
            counts = m["n_modes"].astype(float).dropna()
            if len(counts):
                row["n_modes_median"] = float(counts.median())
                row["n_modes_mean"] = float(counts.mean())
        rows.append(row)
    df = pd.DataFrame(rows, columns=toy_columns(max_optima))
    if len(df):
        df = df.sort_values(["task", "algo", "seed"], kind="stable", ignore_index=True)
    return df
