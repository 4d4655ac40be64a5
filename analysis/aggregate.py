"""Collect every seed directory into two tidy tables: evaluation scores and run status.

Layout walked: ``{runs_root}/{algo}/{task}/seed{k}/`` (see ``qsm/rundir.py``).  Every directory
is read only through :func:`qsm.rundir.load_run`; a directory that breaks the contract is
reported with status ``invalid`` (and the validator's message) instead of stopping the analysis.

Python API
----------
``collect(runs_root, expected=None) -> (scores_df, status_df)``
    scores_df: one row per evaluation of every complete or diverged run, columns
    ``algo, task, seed, step, return, normalized, status`` (``normalized`` = return /
    ``config.env.max_return``; 1000 for DeepMind Control).  Running, failed, invalid and missing
    runs contribute no score rows.
    status_df: one row per (algo, task, seed), columns ``algo, task, seed, status, detail,
    last_step, budget_steps, max_return, path``; status is one of :data:`RUN_STATUSES`.
    ``expected``: optional iterable of (algo, task, seed); those with no directory are ``missing``.
``final_scores(scores_df, policy=DIVERGED_POLICY) -> DataFrame``
    The one place where the "final score" of a run is computed (see
    :data:`FINAL_SCORE_DEFINITION`).  One row per scored run.
``load_expected(path)``
    Reads an ``--expected-json`` file: either a list of ``[algo, task, seed]`` triples or an object
    ``{"algos": [...], "tasks": [...], "seeds": [...]}`` meaning their full cross product.

Command line
------------
::

    python -m analysis.aggregate --runs results/runs --out results/tables/scores.csv \\
        --status-out results/tables/run_status.csv [--expected-json FILE]
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from qsm.rundir import ContractError, find_seed_dirs, load_run

# ---------------------------------------------------------------------------------------------
# Definitions used by every table and figure
# ---------------------------------------------------------------------------------------------

#: How a diverged run is scored: "zero" (normalised score 0, i.e. return 0) or "last_finite"
#: (the return of its last evaluation with a finite value).
DIVERGED_POLICY = "zero"
DIVERGED_POLICIES = ("zero", "last_finite")

FINAL_SCORE_DEFINITION = (
    "Final score of a run = the mean evaluation return recorded in the LAST row of its eval.csv "
    "(the evaluation at the largest environment step; for a complete run this is the evaluation "
    "at the end of its step budget), divided by the task's maximum return (config env.max_return, "
    "1000 for DeepMind Control) to give the normalised score. "
    "A run that DIVERGED (status.json status 'diverged', e.g. non-finite losses or actions) is kept "
    "in every table and statistic with final return 0 (normalised score 0, the lowest return a "
    "DeepMind Control task can give), because its final policy is unusable; dropping it would "
    "flatter unstable algorithms. Its last finite evaluation is still listed for reference. "
    "Runs that are still running, failed, missing or invalid (break the run-directory contract) "
    "have no final score; they are counted and reported by status but not scored."
)

#: Every status a row of status_df can have, in the order reports list them.
RUN_STATUSES = ("complete", "diverged", "running", "failed", "missing", "invalid")
#: Statuses whose runs have a final score.
SCORED_STATUSES = ("complete", "diverged")

SCORE_COLUMNS = ["algo", "task", "seed", "step", "return", "normalized", "status"]
STATUS_COLUMNS = ["algo", "task", "seed", "status", "detail", "last_step", "budget_steps",
                  "max_return", "path"]
FINAL_COLUMNS = ["algo", "task", "seed", "status", "final_step", "final_return",
                 "final_normalized", "last_finite_step", "last_finite_return"]

_SEED_RE = re.compile(r"^seed(\d+)$")
_BUDGET_KEYS = ("env_steps", "total_env_steps", "total_steps", "steps", "max_steps",
                "num_steps", "train_steps", "frames")


# ---------------------------------------------------------------------------------------------
# Walking the run tree
# ---------------------------------------------------------------------------------------------

def _candidate_dirs(root: Path) -> list[Path]:
    """Seed directories: those the contract helper finds (hold config.json) plus every
    ``{algo}/{task}/seed{k}`` directory of the layout, even if it lacks config.json."""
    found = set(find_seed_dirs(root))
    if root.is_dir():
        for p in root.glob("*/*/seed*"):
            if p.is_dir() and _SEED_RE.match(p.name):
                found.add(p)
    return sorted(found)


def _identity_from_path(root: Path, d: Path):
    """(algo, task, seed) from the directory layout, with None for parts that cannot be read."""
    m = _SEED_RE.match(d.name)
    seed = int(m.group(1)) if m else None
    try:
        rel = d.relative_to(root).parts
    except ValueError:
        rel = d.parts
    algo = rel[-3] if len(rel) >= 3 else None
    task = rel[-2] if len(rel) >= 2 else None
    return algo, task, seed


def _identity_from_config(d: Path):
    try:
        with open(d / "config.json") as f:
            cfg = json.load(f)
        return cfg.get("algo"), cfg.get("task"), int(cfg.get("seed"))
    except Exception:
        return None, None, None


def _budget_steps(budget):
    """Environment-step budget from config['budget'] (an int, or a dict with a step count)."""
    if isinstance(budget, bool):
        return math.nan
    if isinstance(budget, (int, float)):
        return float(budget)
    if isinstance(budget, dict):
        for k in _BUDGET_KEYS:
            v = budget.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
    return math.nan


def collect(runs_root, expected=None):
    """Validate every seed directory under ``runs_root``; return ``(scores_df, status_df)``.

    Never raises for a bad run: contract violations become status ``invalid`` with the
    ContractError message as ``detail``; ``expected`` runs without a directory become ``missing``.
    """
    root = Path(runs_root)
    score_frames = []
    status_rows: dict[tuple, dict] = {}

    def add_status(key, row):
        if key in status_rows:  # two directories claim the same run: keep the first, say so
            status_rows[key]["detail"] = (status_rows[key]["detail"] + "; " if status_rows[key]["detail"]
                                          else "") + f"duplicate run also at {row['path']} (ignored)"
            return False
        status_rows[key] = row
        return True

    for d in _candidate_dirs(root):
        p_algo, p_task, p_seed = _identity_from_path(root, d)
        try:
            run = load_run(d)
            algo, task, seed = str(run.algo), str(run.task), int(run.seed)
            max_return = run.config["env"]["max_return"]
            try:
                max_return = float(max_return)
            except (TypeError, ValueError):
                max_return = math.nan
            if not (math.isfinite(max_return) and max_return > 0):
                raise ContractError(d / "config.json",
                                    f"env.max_return must be a positive number to normalise "
                                    f"returns, got {run.config['env']['max_return']!r}")
        except ContractError as e:
            c_algo, c_task, c_seed = _identity_from_config(d)
            key = (p_algo or c_algo or "?", p_task or c_task or "?",
                   p_seed if p_seed is not None else (c_seed if c_seed is not None else -1))
            add_status(key, {"status": "invalid", "detail": str(e), "last_step": math.nan,
                             "budget_steps": math.nan, "max_return": math.nan, "path": str(d)})
            continue
        except Exception as e:  # anything else the validator did not anticipate
            key = (p_algo or "?", p_task or "?", p_seed if p_seed is not None else -1)
            add_status(key, {"status": "invalid",
                             "detail": f"{d}: unreadable ({type(e).__name__}: {e})",
                             "last_step": math.nan, "budget_steps": math.nan,
                             "max_return": math.nan, "path": str(d)})
            continue

        st = run.status["status"]
        reason = str(run.status.get("reason", "") or "")
        last_step = run.status.get("step", math.nan)
        if st == "running":
            detail = f"still running (at step {last_step})"
        elif st in ("diverged", "failed"):
            detail = reason or f"{st} at step {last_step}"
        else:
            detail = reason
        key = (algo, task, seed)
        first = add_status(key, {"status": st, "detail": detail, "last_step": float(last_step)
                                 if isinstance(last_step, (int, float)) else math.nan,
                                 "budget_steps": _budget_steps(run.config.get("budget")),
                                 "max_return": max_return, "path": str(d)})
        if first and st in SCORED_STATUSES:
            ev = run.eval
            ret = pd.to_numeric(ev["return"], errors="coerce").astype(float)
            score_frames.append(pd.DataFrame({
                "algo": algo, "task": task, "seed": seed,
                "step": pd.to_numeric(ev["step"]).astype(np.int64),
                "return": ret, "normalized": ret / max_return, "status": st}))

    for item in expected or ():
        algo, task, seed = item
        key = (str(algo), str(task), int(seed))
        if key not in status_rows:
            status_rows[key] = {"status": "missing", "detail": "no run directory",
                                "last_step": math.nan, "budget_steps": math.nan,
                                "max_return": math.nan, "path": ""}

    if score_frames:
        scores = pd.concat(score_frames, ignore_index=True)[SCORE_COLUMNS]
        scores = scores.sort_values(["algo", "task", "seed", "step"], kind="stable",
                                    ignore_index=True)
    else:
        scores = _empty_scores()
    status = pd.DataFrame([{"algo": k[0], "task": k[1], "seed": k[2], **v}
                           for k, v in status_rows.items()], columns=STATUS_COLUMNS)
    status["seed"] = status["seed"].astype(np.int64)
    status = status.sort_values(["algo", "task", "seed"], kind="stable", ignore_index=True)
    return scores, status


def _empty_scores():
    return pd.DataFrame({"algo": pd.Series(dtype=str), "task": pd.Series(dtype=str),
                         "seed": pd.Series(dtype=np.int64), "step": pd.Series(dtype=np.int64),
                         "return": pd.Series(dtype=float), "normalized": pd.Series(dtype=float),
                         "status": pd.Series(dtype=str)})


# ---------------------------------------------------------------------------------------------
# The final score (defined once, here)
# ---------------------------------------------------------------------------------------------

def final_scores(scores_df, policy: str = DIVERGED_POLICY):
    """One row per scored run (complete or diverged) with its final score.

    See :data:`FINAL_SCORE_DEFINITION`.  ``policy`` decides a diverged run's score: ``"zero"``
    (default) gives return 0 / normalised 0; ``"last_finite"`` gives its last finite evaluation
    (0 if it never had one).  Columns: :data:`FINAL_COLUMNS`.
    """
    if policy not in DIVERGED_POLICIES:
        raise ValueError(f"policy must be one of {DIVERGED_POLICIES}, got {policy!r}")
    rows = []
    if len(scores_df):
        df = scores_df.sort_values(["algo", "task", "seed", "step"], kind="stable")
        for (algo, task, seed), g in df.groupby(["algo", "task", "seed"], sort=True):
            status = str(g["status"].iloc[-1]) if "status" in g else "complete"
            ret = g["return"].to_numpy(float)
            norm = g["normalized"].to_numpy(float)
            finite = np.flatnonzero(np.isfinite(ret))
            lf_step = float(g["step"].iloc[finite[-1]]) if finite.size else math.nan
            lf_ret = float(ret[finite[-1]]) if finite.size else math.nan
            lf_norm = float(norm[finite[-1]]) if finite.size else math.nan
            if status == "diverged":
                if policy == "zero" or not finite.size:
                    f_ret, f_norm = 0.0, 0.0
                else:
                    f_ret, f_norm = lf_ret, lf_norm
            else:
                f_ret, f_norm = float(ret[-1]), float(norm[-1])
            rows.append({"algo": algo, "task": task, "seed": int(seed), "status": status,
                         "final_step": float(g["step"].iloc[-1]), "final_return": f_ret,
                         "final_normalized": f_norm, "last_finite_step": lf_step,
                         "last_finite_return": lf_ret})
    out = pd.DataFrame(rows, columns=FINAL_COLUMNS)
    out["seed"] = out["seed"].astype(np.int64)
    return out


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def load_expected(path):
    """Expected (algo, task, seed) triples from a JSON file (list of triples or a cross product)."""
    with open(path) as f:
        obj = json.load(f)
    if isinstance(obj, dict):
        return [(a, t, int(s)) for a in obj["algos"] for t in obj["tasks"] for s in obj["seeds"]]
    return [(str(a), str(t), int(s)) for a, t, s in obj]


def write_tables(scores_df, status_df, out, status_out):
    for path, df in ((out, scores_df), (status_out, status_df)):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        df.to_csv(tmp, index=False)
        tmp.replace(path)


def read_scores(path):
    """Read a scores.csv written by this module with the right dtypes."""
    df = pd.read_csv(path, dtype={"algo": str, "task": str})
    if "status" not in df:
        df["status"] = "complete"
    return df


def read_status(path):
    """Read a run_status.csv written by this module with the right dtypes."""
    df = pd.read_csv(path, dtype={"algo": str, "task": str, "status": str, "detail": str,
                                  "path": str}, keep_default_na=False,
                     na_values={"last_step": [""], "budget_steps": [""], "max_return": [""]})
    return df


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m analysis.aggregate", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", required=True, help="root of the run tree (results/runs)")
    ap.add_argument("--out", required=True, help="scores CSV to write")
    ap.add_argument("--status-out", required=True, help="run-status CSV to write")
    ap.add_argument("--expected-json", help="JSON list of [algo, task, seed] (or algos/tasks/seeds)")
    args = ap.parse_args(argv)
    expected = load_expected(args.expected_json) if args.expected_json else None
    scores, status = collect(args.runs, expected)
    write_tables(scores, status, args.out, args.status_out)
    counts = status["status"].value_counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in RUN_STATUSES if s in counts)
    print(f"{len(status)} runs ({summary or 'none'}); {len(scores)} evaluation rows -> {args.out}",
          file=sys.stderr)
    for _, r in status[status["status"] == "invalid"].iterrows():
        print(f"invalid: {r['detail']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
