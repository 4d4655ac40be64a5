"""Multimodality audit: how many modes the agents' action distributions have at the probe states,
how far they are from Gaussian, how they differ between algorithms, and (on the toy bandits with
known optima) which optima they cover.

Every seed directory under ``--runs`` is read through :func:`qsm.rundir.load_run`.  Only runs with
status ``complete`` are audited; every other directory (diverged, running, failed, or ``invalid``:
it breaks the run-directory contract) is still listed in ``modes.csv``, ``modes_summary.csv``
(``n_skipped``) and ``toy_optima.csv`` with its status and the reason, and never stops the audit.

The audited distribution is chosen with ``--distribution``:

* ``behaviour``: the actions as the agent explores (QSM sampler + N(0, 0.1), SAC tanh-Gaussian
  sample, TD3 mu + N(0, 0.1), clipped to [-1, 1]);
* ``policy``: the learned policy without exploration noise (TD3's is a point mass).

Tables (``--tables``)
---------------------
``modes.csv``: one row per (run, probe state); a run that was not audited has one row with an
empty ``state``.  Columns: ``algo, task, seed, state`` (probe-state index), ``n_modes``
(:func:`analysis.modes.count_modes` via ``mode_summary``), ``n_bound_modes`` (modes that sit at an
action bound, from ``mode_summary``), ``status`` (run status: complete / diverged / running /
failed / invalid), ``kl_gaussian_fit`` (KL(samples || Gaussian fitted to them) at that state,
:func:`analysis.kl.gaussian_fit_kl`; NaN for a point mass), ``detail`` (why a run or state has no
numbers).

``modes_summary.csv``: one row per (algo, task).  ``n_seeds`` audited seeds, ``n_states`` probe
states per seed, ``mean_modes`` = mean over seeds of the per-seed mean mode count over probe states,
``ci_low, ci_high`` its 95% bootstrap interval over seeds, ``frac_multimodal`` = same for the
fraction of probe states with more than one mode (``frac_ci_low, frac_ci_high``),
``mean_bound_modes`` mean number of modes at the bounds, ``true_modes`` the number of optima of a
toy task (NaN for DeepMind Control tasks), ``n_skipped`` runs of this (algo, task) that were not
audited, ``note``.

``kl.csv``: ``kind`` is ``gaussian_fit`` (KL(algo || Gaussian fitted to it), ``other_algo`` empty)
or ``between_algos`` (KL(algo || other_algo) at the same probe states and seed).  Per seed the
estimate is the mean over probe states; ``estimate`` is the mean over seeds, ``ci_low, ci_high``
its 95% bootstrap interval over seeds, ``n_seeds`` the seeds with a finite estimate (for
between_algos: among the seeds audited for both algorithms), ``n_states`` finite state estimates
used, ``note`` (point masses, atoms, failed estimates, few seeds).

``toy_optima.csv``: one row per run of a toy task (``qsm.envs.ToyBandit.VARIANTS``), samples pooled
over the probe states (the context does not move the optima).  ``n_samples``, ``optima`` (their
locations, in the order of the ``frac_opt<k>`` columns), ``frac_opt1 .. frac_opt4`` fraction of
samples within Euclidean distance ``TOY_RADIUS`` = 0.15 of optimum k (NaN where the task has fewer
optima), ``frac_near_any``, ``optima_covered`` = optima with at least ``TOY_MIN_SHARE`` = 5% of the
samples, ``true_modes``, ``n_modes_median`` / ``n_modes_mean`` = the mode counter's count over the
probe states, ``status``, ``detail``.

Intervals
---------
Seeds are the unit of replication: per (algo, task) each seed gives one number (its mean over
probe states) and the interval is the percentile bootstrap of the mean over seeds: ``--reps``
resamples of the seeds with replacement, drawn with ``numpy.random.default_rng(--seed)`` (a fresh
generator for every row, so each row is reproducible on its own), 2.5% and 97.5% quantiles.  With
one seed the interval is NaN (the note says so); with 2-3 seeds it is coarse (few distinct
resampled means) and the note says that too.

Cost
----
Mode counting uses every sample.  The kNN KL estimates use at most ``--kl-samples`` (default
1000) samples per distribution, a fixed random subset (``default_rng(--seed)``) where there are
more; ``--seed`` is also passed to :mod:`analysis.kl` (its bias-correction references and jitter).
On the default demo grid (3 algorithms x 8 tasks x 2-3 seeds x 8 probe states x 1000 samples, up
to 12 action dimensions) the whole audit takes under a minute on one core.

Special distributions
---------------------
* A deterministic point mass (every sample identical, e.g. TD3's ``policy``) has no density: its
  KL entries (to its Gaussian fit and to or from any other algorithm) are NaN with a note and are
  left out of the means; its mode count is 1.
* Repeated samples that are not a point mass (an atom, e.g. actions clipped exactly to a bound in
  1-D) make the true KL infinite; :mod:`analysis.kl` jitters them by 1e-6 and returns a large
  finite value.  Those estimates are kept, and the note column says at how many states it
  happened.

Figures (``--figures``, PNG and PDF): ``mode_counts``, ``kl_divergence``, ``action_histograms``,
``toy_optima``.

Command line
------------
::

    python -m analysis.audit --manifest results/tables/run_manifest.json --tables results/tables \\
        --figures results/figures --distribution behaviour --histogram-states 3 \\
        --reps 2000 --seed 0 [--kl-samples 1000]
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import textwrap
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from analysis.figures import algo_color  # noqa: E402
from qsm.envs import ToyBandit  # noqa: E402
from analysis.manifest import load_entry, load_manifest  # noqa: E402
from qsm.rundir import ContractError  # noqa: E402

DISTRIBUTIONS = ("behaviour", "policy")
DISTRIBUTION_TEXT = {
    "behaviour": "behaviour distribution (actions as explored: QSM sampler + N(0,0.1), "
                 "SAC tanh-Gaussian sample, TD3 \u03bc + N(0,0.1))",
    "policy": "policy distribution (learned policy without exploration noise; "
              "TD3's is a point mass)",
}
CONFIDENCE = 0.95
DEFAULT_REPS = 2000
DEFAULT_SEED = 0
DEFAULT_KL_SAMPLES = 1000
TOY_RADIUS = 0.15
TOY_MIN_SHARE = 0.05
MAX_TOY_OPTIMA = max(len(v) for v in ToyBandit.VARIANTS.values())
BOUND_TOL = 1e-6

MODES_COLUMNS = ["algo", "task", "seed", "state", "n_modes", "n_bound_modes", "status",
                 "kl_gaussian_fit", "detail"]
SUMMARY_COLUMNS = ["algo", "task", "n_seeds", "n_states", "mean_modes", "ci_low", "ci_high",
                   "frac_multimodal", "frac_ci_low", "frac_ci_high", "mean_bound_modes",
                   "true_modes", "n_skipped", "note"]
KL_COLUMNS = ["kind", "algo", "other_algo", "task", "estimate", "ci_low", "ci_high", "n_seeds",
              "n_states", "note"]
TOY_COLUMNS = (["algo", "task", "seed", "status", "n_samples", "optima"]
               + [f"frac_opt{k + 1}" for k in range(MAX_TOY_OPTIMA)]
               + ["frac_near_any", "optima_covered", "true_modes", "n_modes_median",
                  "n_modes_mean", "detail"])
FIGURE_NAMES = ("mode_counts", "kl_divergence", "action_histograms", "toy_optima")
TABLE_NAMES = ("modes.csv", "modes_summary.csv", "kl.csv", "toy_optima.csv")

_SEED_RE = re.compile(r"^seed(\d+)$")


# ---------------------------------------------------------------------------------------------
# Reading the runs
# ---------------------------------------------------------------------------------------------

@dataclass
class RunEntry:
    algo: str
    task: str
    seed: int
    status: str            # complete / diverged / running / failed / invalid
    detail: str
    path: str
    states: np.ndarray | None = None    # (P, obs_dim)
    actions: np.ndarray | None = None   # (P, N, act_dim), float64, in [-1, 1]

    @property
    def audited(self) -> bool:
        return self.actions is not None


def _check_actions(states, actions, act_dim):
    actions = np.asarray(actions, dtype=np.float64)
    states = np.asarray(states)
    if actions.ndim != 3 or states.ndim != 2 or actions.shape[0] != states.shape[0]:
        return f"probe actions have shape {actions.shape} for states {states.shape}"
    if act_dim is not None and actions.shape[2] != act_dim:
        return f"probe actions have {actions.shape[2]} dims, config says act_dim = {act_dim}"
    if actions.shape[0] == 0 or actions.shape[1] == 0:
        return f"probe actions are empty (shape {actions.shape})"
    if not np.isfinite(actions).all():
        return "probe actions contain NaN/inf"
    if np.abs(actions).max() > 1 + BOUND_TOL:
        return "probe actions lie outside [-1, 1]"
    return None


def load_entries(manifest, distribution: str = "behaviour") -> list[RunEntry]:
    """Every benchmark and audit run of the manifest (a Manifest or a path to one) as a
    :class:`RunEntry`; never raises for a bad run."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if not hasattr(manifest, "runs"):
        manifest = load_manifest(manifest)
    entries: list[RunEntry] = []
    for listed in manifest.select("benchmark", "audit"):
        algo, task, seed, d = listed.algo, listed.task, listed.seed, Path(listed.path)
        if not d.is_dir():
            entries.append(RunEntry(algo, task, seed, "missing", "no run directory", str(d)))
            continue
        try:
            run = load_entry(listed)
        except ContractError as e:
            entries.append(RunEntry(algo, task, seed, "invalid", str(e), str(d)))
            continue
        except Exception as e:  # anything the validator did not anticipate
            entries.append(RunEntry(algo, task, seed, "invalid",
                                    f"{d}: unreadable ({type(e).__name__}: {e})", str(d)))
            continue
        status = str(run.status["status"])
        reason = str(run.status.get("reason", "") or "")
        if status != "complete":
            detail = reason or f"{status} at step {run.status.get('step')}"
            entries.append(RunEntry(algo, task, seed, status, f"not audited: {detail}", str(d)))
            continue
        try:
            states, actions = run.probe_actions(distribution)
            try:
                act_dim = int(run.config["env"]["act_dim"])
            except (TypeError, ValueError):
                act_dim = None
            problem = _check_actions(states, actions, act_dim)
            if problem:
                raise ContractError(run.probe_file, f"{distribution}: {problem}")
        except ContractError as e:
            entries.append(RunEntry(algo, task, seed, "invalid", str(e), str(d)))
            continue
        except Exception as e:
            entries.append(RunEntry(algo, task, seed, "invalid",
                                    f"{run.probe_file}: unreadable ({type(e).__name__}: {e})",
                                    str(d)))
            continue
        entries.append(RunEntry(algo, task, seed, "complete", "", str(d),
                                np.asarray(states, np.float64),
                                np.clip(np.asarray(actions, np.float64), -1.0, 1.0)))
    return entries


# ---------------------------------------------------------------------------------------------
# Per-state measurements
# ---------------------------------------------------------------------------------------------

def is_point_mass(x) -> bool:
    """All samples identical (a deterministic policy): no density, so no kNN KL."""
    x = np.asarray(x)
    return bool(len(x) == 0 or np.all(x == x[:1]))


def _bound_count(summary: dict) -> int:
    """Number of modes at an action bound, from analysis.modes.mode_summary's dict."""
    for key in ("n_bound_modes", "n_at_bounds", "n_at_bound", "n_modes_at_bounds",
                "n_boundary_modes"):
        if key in summary:
            return int(summary[key])
    for key in ("at_bounds", "at_bound", "bound", "boundary", "on_bound"):
        if key in summary:
            v = summary[key]
            if isinstance(v, (bool, np.bool_, int, np.integer)):
                return int(v)
            arr = np.asarray(v)
            if arr.ndim == 2:  # per mode, per dimension
                arr = arr.any(axis=1)
            return int(np.count_nonzero(arr))
    raise KeyError(f"mode_summary returned no bound information (keys: {sorted(summary)})")


def mode_measure(x):
    """(n_modes, n_bound_modes) of the samples x (N, d)."""
    from analysis import modes
    summary = modes.mode_summary(x)
    n = summary.get("n_modes") if isinstance(summary, dict) else None
    if n is None:
        n = modes.count_modes(x)
    return int(n), _bound_count(summary)


def _subsample(x, max_n, key: str, seed: int):
    if max_n is None or len(x) <= max_n:
        return x
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode())])
    return x[np.sort(rng.choice(len(x), size=max_n, replace=False))]


NOTE_POINT_MASS = "point mass (deterministic): KL undefined, NaN, left out"
NOTE_ATOMS = ("atom (repeated samples, e.g. clipped to a bound): true KL infinite, estimate "
              "finite only via analysis.kl's 1e-6 jitter")
NOTE_ATOMS_BETWEEN = ("atom in the first distribution (repeated samples, e.g. clipped to a "
                      "bound): true KL infinite unless the other has the same atom; estimate via "
                      "analysis.kl's 1e-6 jitter")


def has_repeats(x) -> bool:
    """Some sample occurs more than once (an atom of the distribution)."""
    x = np.asarray(x)
    return bool(len(np.unique(x, axis=0)) < len(x))


def gaussian_kl(x, seed=DEFAULT_SEED):
    """(value, note): KL(x || Gaussian fitted to x); NaN with a note where undefined."""
    from analysis import kl
    if is_point_mass(x):
        return math.nan, NOTE_POINT_MASS
    try:
        v = float(kl.gaussian_fit_kl(x, seed=seed))
    except Exception as e:
        return math.nan, f"gaussian_fit_kl failed ({type(e).__name__}: {e}), NaN, left out"
    if not math.isfinite(v):
        return math.nan, "non-finite estimate, NaN, left out"
    return v, (NOTE_ATOMS if has_repeats(x) else "")


def between_kl(x, y, seed=DEFAULT_SEED):
    """(value, note): KL(x || y); NaN with a note where undefined."""
    from analysis import kl
    if is_point_mass(x) or is_point_mass(y):
        return math.nan, NOTE_POINT_MASS
    try:
        v = float(kl.kl_divergence(x, y, seed=seed))
    except Exception as e:
        return math.nan, f"kl_divergence failed ({type(e).__name__}: {e}), NaN, left out"
    if not math.isfinite(v):
        return math.nan, "non-finite estimate, NaN, left out"
    return v, (NOTE_ATOMS_BETWEEN if has_repeats(x) else "")


# ---------------------------------------------------------------------------------------------
# Bootstrap over seeds
# ---------------------------------------------------------------------------------------------

def bootstrap_mean_ci(values, reps=DEFAULT_REPS, seed=DEFAULT_SEED, confidence=CONFIDENCE):
    """(mean, ci_low, ci_high) of the finite values (one per seed): percentile bootstrap,
    resampling seeds with replacement with ``numpy.random.default_rng(seed)``.  NaN interval
    for fewer than two values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    est = float(v.mean())
    if len(v) < 2 or reps < 1:
        return est, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boot = v[rng.integers(0, len(v), size=(int(reps), len(v)))].mean(axis=1)
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot, [a, 1.0 - a])
    return est, float(lo), float(hi)


def _seed_note(n):
    if n == 0:
        return "no seed with a finite value"
    if n == 1:
        return "1 seed: no bootstrap CI (NaN)"
    if n <= 3:
        return f"only {n} seeds: bootstrap CI is coarse"
    return ""


def true_modes(task):
    return len(ToyBandit.VARIANTS[task]) if task in ToyBandit.VARIANTS else math.nan


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def modes_table(entries, kl_samples=DEFAULT_KL_SAMPLES, seed=DEFAULT_SEED) -> pd.DataFrame:
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
                    n_modes, n_bound = 1, int(np.any(np.abs(x[0]) >= 1 - BOUND_TOL))
                    notes.append("point mass: 1 mode")
                else:
                    n_modes, n_bound = math.nan, math.nan
                    notes.append(f"mode count failed ({type(exc).__name__}: {exc})")
            v, note = gaussian_kl(_subsample(x, kl_samples, f"g/{e.algo}/{e.task}/{e.seed}/{s}",
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


def modes_summary(modes_df, reps=DEFAULT_REPS, seed=DEFAULT_SEED) -> pd.DataFrame:
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
                     "true_modes": true_modes(task), "n_skipped": n_skipped,
                     "note": "; ".join(x for x in note if x)})
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
    audited = [e for e in entries if e.audited]
    by_task: dict[str, dict[str, dict[int, RunEntry]]] = {}
    for e in audited:
        by_task.setdefault(e.task, {}).setdefault(e.algo, {})[e.seed] = e
    for task in sorted(by_task):
        algos = sorted(by_task[task])
        for a in algos:
            for b in algos:
                if a == b:
                    continue
                common = sorted(set(by_task[task][a]) & set(by_task[task][b]))
                per_seed, notes, extra, n_states = [], [], [], 0
                for s in common:
                    ea, eb = by_task[task][a][s], by_task[task][b][s]
                    if (ea.states.shape != eb.states.shape
                            or not np.allclose(ea.states, eb.states, atol=1e-5)):
                        extra.append(f"seed {s}: probe states differ between {a} and {b} "
                                     f"(seed left out)")
                        per_seed.append(math.nan)
                        continue
                    vals = []
                    for p in range(ea.actions.shape[0]):
                        x = _subsample(ea.actions[p], kl_samples, f"k/{a}/{task}/{s}/{p}", seed)
                        y = _subsample(eb.actions[p], kl_samples, f"k/{b}/{task}/{s}/{p}", seed)
                        v, note = between_kl(x, y, seed=seed)
                        vals.append(v)
                        notes.append(note)
                    vals = np.asarray(vals)
                    n_states += int(np.isfinite(vals).sum())
                    per_seed.append(float(np.nanmean(vals)) if np.isfinite(vals).any()
                                    else math.nan)
                est, lo, hi = bootstrap_mean_ci(per_seed, reps, seed)
                n = int(np.isfinite(np.asarray(per_seed, dtype=float)).sum())
                note = [_seed_note(n)]
                if not common:
                    note.append(f"no seed audited for both {a} and {b}")
                note += extra + _summarise_notes(notes, len(notes))
                rows.append({"kind": "between_algos", "algo": a, "other_algo": b, "task": task,
                             "estimate": est, "ci_low": lo, "ci_high": hi, "n_seeds": n,
                             "n_states": n_states, "note": "; ".join(x for x in note if x)})
    return pd.DataFrame(rows, columns=KL_COLUMNS)


def _optima_text(optima):
    return " ".join("(" + ",".join(f"{v:g}" for v in o) + ")" for o in optima)


def toy_table(entries, modes_df) -> pd.DataFrame:
    rows = []
    for e in entries:
        if e.task not in ToyBandit.VARIANTS:
            continue
        optima = ToyBandit.VARIANTS[e.task].astype(np.float64)
        row = {"algo": e.algo, "task": e.task, "seed": e.seed, "status": e.status,
               "optima": _optima_text(optima), "true_modes": len(optima), "detail": e.detail,
               "n_samples": 0, "frac_near_any": math.nan, "optima_covered": math.nan,
               "n_modes_median": math.nan, "n_modes_mean": math.nan}
        for k in range(MAX_TOY_OPTIMA):
            row[f"frac_opt{k + 1}"] = math.nan
        if e.audited:
            x = e.actions.reshape(-1, e.actions.shape[-1])
            if x.shape[1] != optima.shape[1]:
                row["detail"] = (f"actions have {x.shape[1]} dims, the task's optima "
                                 f"{optima.shape[1]}")
            else:
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
    df = pd.DataFrame(rows, columns=TOY_COLUMNS)
    if len(df):
        df = df.sort_values(["task", "algo", "seed"], kind="stable", ignore_index=True)
    return df


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def _save(fig, outdir, name, caption=""):
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    bottom = 0.0
    if caption:
        width = max(60, int(fig.get_figwidth() * 15.5))  # 7.5 pt text: ~15 characters/inch
        wrapped = "\n".join(textwrap.fill(p, width) for p in caption.split("\n") if p)
        lines = wrapped.count("\n") + 1
        fig.text(0.01, 0.005, wrapped, ha="left", va="bottom", fontsize=7.5)
        bottom = min(0.45, (0.14 * lines + 0.1) / fig.get_figheight())
    try:
        fig.tight_layout(rect=(0, bottom, 1, 1 - 0.6 / fig.get_figheight()))  # 2-line title
    except Exception:
        pass
    from analysis.figures import write_figure
    return write_figure(fig, outdir, name, dpi=130)


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


def plot_mode_counts(summary, modes_df, entries, distribution, outdir):
    tasks = sorted(summary["task"].unique()) if len(summary) else []
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
        tm = true_modes(task)
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
           f"bootstrap CI over seeds (none with 1 seed); circles = individual seeds. Dashed line: "
           f"true number of optima (toy tasks). {_skipped_text(entries)}")
    return _save(fig, outdir, "mode_counts", cap)


def plot_kl(kl_df, entries, distribution, outdir):
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
    return _save(fig, outdir, "kl_divergence", cap)


def _histogram_seed(task_entries):
    """The seed audited for the most algorithms (ties: the lowest)."""
    count: dict[int, int] = {}
    for e in task_entries:
        count[e.seed] = count.get(e.seed, 0) + 1
    return min(count, key=lambda s: (-count[s], s))


def plot_action_histograms(entries, distribution, outdir, n_states=3):
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
    return _save(fig, outdir, "action_histograms", cap)


def plot_toy_optima(entries, toy_df, distribution, outdir, max_points=1500, seed=DEFAULT_SEED):
    audited = [e for e in entries if e.audited and e.task in ToyBandit.VARIANTS]
    tasks = sorted({e.task for e in audited})
    algos = sorted({e.algo for e in audited})
    nrows, ncols = max(len(tasks), 1), max(len(algos), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.3 * nrows + 1.2),
                             squeeze=False)
    if not tasks:
        _no_data(axes[0, 0], "no toy-task runs audited")
    for row, task in enumerate(tasks):
        optima = ToyBandit.VARIANTS[task]
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
                    x = _subsample(x, max_points, f"toyfig/{algo}/{task}/{e.seed}", seed)
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
    fig.suptitle(f"Toy bandits with known optima — {distribution} distribution\n"
                 f"({_seeds_text(entries, set(ToyBandit.VARIANTS))})", fontsize=11)
    cap = (f"Audited: {DISTRIBUTION_TEXT[distribution]}. Samples pooled over the probe states "
           f"(the context does not move the optima); 1-D: histogram per seed, 2-D: scatter "
           f"(up to {max_points} points per seed). Dashed: true optima (2-D: circles of radius "
           f"{TOY_RADIUS}). An optimum is covered when at least {TOY_MIN_SHARE:.0%} of the "
           f"samples lie within {TOY_RADIUS} of it. {_skipped_text(entries)}")
    return _save(fig, outdir, "toy_optima", cap)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def write_csv(df, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(path)
    return path


def run_audit(manifest, tables, figures, distribution="behaviour", histogram_states=3,
              reps=DEFAULT_REPS, seed=DEFAULT_SEED, kl_samples=DEFAULT_KL_SAMPLES, log=None):
    """Compute every table and figure; return the list of written paths."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    entries = load_entries(manifest, distribution)
    n_ok = sum(e.audited for e in entries)
    log(f"audit: {len(entries)} runs listed in {manifest}, {n_ok} audited "
        f"({distribution} distribution)")
    for e in entries:
        if not e.audited:
            log(f"  not audited: {e.algo}/{e.task}/seed{e.seed} [{e.status}] {e.detail}")
    modes_df = modes_table(entries, kl_samples=kl_samples, seed=seed)
    log(f"audit: mode counts and Gaussian KL done ({time.perf_counter() - t0:.1f} s)")
    summary = modes_summary(modes_df, reps=reps, seed=seed)
    kl_df = kl_table(entries, modes_df, reps=reps, seed=seed, kl_samples=kl_samples)
    log(f"audit: between-algorithm KL done ({time.perf_counter() - t0:.1f} s)")
    toy_df = toy_table(entries, modes_df)
    tables = Path(tables)
    paths = [write_csv(modes_df, tables / "modes.csv"),
             write_csv(summary, tables / "modes_summary.csv"),
             write_csv(kl_df, tables / "kl.csv"),
             write_csv(toy_df, tables / "toy_optima.csv")]
    paths += plot_mode_counts(summary, modes_df, entries, distribution, figures)
    paths += plot_kl(kl_df, entries, distribution, figures)
    paths += plot_action_histograms(entries, distribution, figures, histogram_states)
    paths += plot_toy_optima(entries, toy_df, distribution, figures, seed=seed)
    log(f"audit: wrote {len(paths)} files in {time.perf_counter() - t0:.1f} s")
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m analysis.audit",
                                 description="Multimodality audit of the probe-state action "
                                             "samples: mode counts, KL estimates, toy optima.")
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json: the runs to audit (analysis/manifest.py)")
    ap.add_argument("--tables", required=True, help="folder for the CSV tables")
    ap.add_argument("--figures", required=True, help="folder for the PNG/PDF figures")
    ap.add_argument("--distribution", choices=DISTRIBUTIONS, default="behaviour",
                    help="which probe samples to audit (default: behaviour)")
    ap.add_argument("--histogram-states", type=int, default=3,
                    help="probe states shown in action_histograms (default: 3)")
    ap.add_argument("--reps", type=int, default=DEFAULT_REPS,
                    help="bootstrap resamples of the seeds (default: 2000)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED,
                    help="seed of the bootstrap and subsampling generators (default: 0)")
    ap.add_argument("--kl-samples", type=int, default=DEFAULT_KL_SAMPLES,
                    help="at most this many samples per distribution in the kNN KL estimates "
                         "(default: 1000)")
    args = ap.parse_args(argv)
    run_audit(args.manifest, args.tables, args.figures, distribution=args.distribution,
              histogram_states=args.histogram_states, reps=args.reps, seed=args.seed,
              kl_samples=args.kl_samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
