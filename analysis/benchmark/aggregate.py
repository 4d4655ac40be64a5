"""The runs a configuration asks for, collected into two tidy tables: evaluation scores and run status.

The runs come from the run manifest (``analysis/records/manifest.py``): exactly the runs of the
configuration, matched by identity. Every listed directory is read only through
:func:`qsm.contract.rundir.load_run`; one that breaks the contract (or holds another run than the
one listed) is reported with status ``invalid`` and the validator's message instead of stopping the
analysis. Directories under the manifest's runs root that the configuration does not ask for
(other budgets, hyperparameters or code versions) are listed as ``not in config`` and never scored.

Python API
----------
``collect(manifest) -> (scores_df, status_df)``
    scores_df: one row per evaluation of every complete or diverged run of the roles
    ``benchmark`` and ``audit``, columns ``algo, task, seed, role, step, return, normalized,
    status`` (``normalized`` = return / ``config.env.max_return``; 1000 for DeepMind Control).
    Running, failed, invalid and missing runs contribute no score rows.
    status_df: one row per listed run and per unlisted directory, columns ``algo, task, seed,
    role, run_id, status, detail, last_step, budget_steps, max_return, path``; status is one of
    :data:`RUN_STATUSES`.
``final_scores(scores_df, policy=DIVERGED_POLICY) -> DataFrame``
    The one place where the "final score" of a run is computed (see
    :data:`FINAL_SCORE_DEFINITION`).  One row per scored run.
``final_evaluation(evals) -> Series``
    Which of a run's evaluations gives its final score: the last. ``final_scores`` and the audit
    (``analysis/audit/load.py``) both take it from here.

Command line
------------
::

    python -m analysis.benchmark.aggregate --manifest results/tables/run_manifest.json \\
        --out results/tables/scores.csv --status-out results/tables/run_status.csv

Both tables get a provenance sidecar (``analysis/records/provenance.py``); run_status.csv's also
counts the directories of other configurations it lists.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.records.manifest import load_manifest, read_runs
from analysis.records.outputs import write_table
from analysis.records.provenance import Provenance
from qsm.contract.rundir import FINISHED_STATUSES, ContractError, load_run
from qsm.declare.cli import HelpFormatter

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

#: Every status a row of status_df can have, in the order reports list them. ``not in config``:
#: a directory of another configuration or code version, listed for reference only.
RUN_STATUSES = ("complete", "diverged", "running", "failed", "missing", "invalid",
                "not in config")
NOT_IN_CONFIG = "not in config"
#: Roles whose runs are scored (the T sweep's runs only measure cost).
SCORED_ROLES = ("benchmark", "audit")

SCORE_COLUMNS = ["algo", "task", "seed", "role", "step", "return", "normalized", "status"]
STATUS_COLUMNS = ["algo", "task", "seed", "role", "run_id", "status", "detail", "last_step",
                  "budget_steps", "max_return", "path"]
FINAL_COLUMNS = ["algo", "task", "seed", "role", "status", "final_step", "final_return",
                 "final_normalized", "last_finite_step", "last_finite_return"]


# ---------------------------------------------------------------------------------------------
# Reading the runs of the manifest
# ---------------------------------------------------------------------------------------------

def _max_return(run) -> float:
    value = run.config["env"]["max_return"]
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ContractError(run.path / "config.json", f"env.max_return must be a positive number "
                                                      f"to normalise returns, got {value!r}")
    return value


def collect(manifest):
    """``(scores_df, status_df)`` of the manifest's scored runs (a Manifest or a path to one).

    Never raises for a bad run: contract violations become status ``invalid`` with the
    ContractError message as ``detail``; listed runs without a directory become ``missing``;
    directories under the runs root that are not listed become ``not in config``.
    """
    if not hasattr(manifest, "runs"):
        manifest = load_manifest(manifest)
    score_frames, status_rows = [], []
    for listed in read_runs(manifest, SCORED_ROLES, read=_max_return):
        e, run = listed.entry, listed.run
        row = {"algo": e.algo, "task": e.task, "seed": e.seed, "role": e.role,
               "run_id": e.run_id, "status": listed.status, "detail": listed.detail,
               "last_step": math.nan, "budget_steps": math.nan, "max_return": math.nan,
               "path": e.path}
        if run is None:
            status_rows.append(row)
            continue
        max_return = listed.data
        status_rows.append({**row, "last_step": float(listed.last_step)
                            if listed.last_step is not None else math.nan,
                            "budget_steps": float(run.config["budget"]["steps"]),
                            "max_return": max_return})
        if listed.status in FINISHED_STATUSES:
            ret = pd.to_numeric(run.eval["return"], errors="coerce").astype(float)
            score_frames.append(pd.DataFrame({
                "algo": e.algo, "task": e.task, "seed": e.seed, "role": e.role,
                "step": pd.to_numeric(run.eval["step"]).astype(np.int64),
                "return": ret, "normalized": ret / max_return, "status": listed.status}))
    for d in manifest.unlisted_dirs():
        status_rows.append(_unlisted_row(d))

    if score_frames:
        scores = pd.concat(score_frames, ignore_index=True)[SCORE_COLUMNS]
        scores = scores.sort_values(["algo", "task", "seed", "step"], kind="stable",
                                    ignore_index=True)
    else:
        scores = _empty_scores()
    status = pd.DataFrame(status_rows, columns=STATUS_COLUMNS)
    status["seed"] = status["seed"].astype(np.int64)
    # the configuration's runs first, then directories of other configurations
    status = (status.assign(_other=status["status"] == NOT_IN_CONFIG)
              .sort_values(["_other", "algo", "task", "seed", "role", "path"], kind="stable")
              .drop(columns="_other").reset_index(drop=True))
    return scores, status


def _unlisted_row(d: Path) -> dict:
    """A directory of another configuration: what it is, as far as it can be read."""
    try:
        run = load_run(d, check_probes=False)
        cfg, st = run.config, run.status["status"]
        detail = (f"run {cfg.get('run_id')} ({st}, code {cfg.get('code_version')}) is not asked "
                  f"for by this configuration; never scored")
        ident = (str(cfg["algo"]), str(cfg["task"]), int(cfg["seed"]), str(cfg.get("run_id", "")))
    except (ContractError, KeyError, TypeError, ValueError) as err:
        detail = f"not asked for by this configuration, and unreadable: {err}"
        ident = ("?", "?", -1, "")
    return {"algo": ident[0], "task": ident[1], "seed": ident[2], "role": "", "run_id": ident[3],
            "status": NOT_IN_CONFIG, "detail": detail, "last_step": math.nan,
            "budget_steps": math.nan, "max_return": math.nan, "path": str(d)}


def _empty_scores():
    return pd.DataFrame({"algo": pd.Series(dtype=str), "task": pd.Series(dtype=str),
                         "seed": pd.Series(dtype=np.int64), "role": pd.Series(dtype=str),
                         "step": pd.Series(dtype=np.int64),
                         "return": pd.Series(dtype=float), "normalized": pd.Series(dtype=float),
                         "status": pd.Series(dtype=str)})


# ---------------------------------------------------------------------------------------------
# The final score (defined once, here)
# ---------------------------------------------------------------------------------------------

def final_evaluation(evals):
    """The evaluation whose return is a run's final score (:data:`FINAL_SCORE_DEFINITION`): the
    LAST row of its evaluations ``evals`` (a DataFrame of eval.csv's rows, or of scores_df's
    rows of one run, ordered by step: the evaluation at the largest step). IndexError when there
    is none; TypeError for None (a run whose eval.csv was not read: running or failed)."""
    if evals is None:
        raise TypeError("the run's evaluations were not read (it is running or failed)")
    return evals.iloc[-1]


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
            final = final_evaluation(g)
            if status == "diverged":
                if policy == "zero" or not finite.size:
                    f_ret, f_norm = 0.0, 0.0
                else:
                    f_ret, f_norm = lf_ret, lf_norm
            else:
                f_ret, f_norm = float(final["return"]), float(final["normalized"])
            rows.append({"algo": algo, "task": task, "seed": int(seed),
                         "role": str(g["role"].iloc[-1]), "status": status,
                         "final_step": float(final["step"]), "final_return": f_ret,
                         "final_normalized": f_norm, "last_finite_step": lf_step,
                         "last_finite_return": lf_ret})
    out = pd.DataFrame(rows, columns=FINAL_COLUMNS)
    out["seed"] = out["seed"].astype(np.int64)
    return out


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def provenance_of(manifest, status_df) -> Provenance:
    """Provenance of the two tables: the manifest's scored roles, with each run's status."""
    listed = status_df[status_df["status"] != NOT_IN_CONFIG]
    return Provenance.of(manifest, SCORED_ROLES, "analysis.benchmark.aggregate").with_status(
        dict(zip(listed["path"].astype(str), listed["status"])))


def write_tables(scores_df, status_df, out, status_out, provenance: Provenance):
    """scores.csv (used: the runs with evaluations) and run_status.csv (every listed run), each
    with its provenance sidecar."""
    listed = status_df[status_df["status"] != NOT_IN_CONFIG]
    scored = listed.loc[listed["status"].isin(FINISHED_STATUSES), "path"]
    write_table(out, scores_df, provenance, scored)
    write_table(status_out, status_df, provenance, listed["path"],
                extra={"not_in_config": int(len(status_df) - len(listed))})


def read_scores(path):
    """Read a scores.csv written by this module with the right dtypes."""
    df = pd.read_csv(path, dtype={"algo": str, "task": str})
    if "status" not in df:
        df["status"] = "complete"
    return df


def read_status(path):
    """Read a run_status.csv written by this module with the right dtypes."""
    df = pd.read_csv(path, dtype={"algo": str, "task": str, "role": str, "run_id": str,
                                  "status": str, "detail": str, "path": str},
                     keep_default_na=False,
                     na_values={"last_step": [""], "budget_steps": [""], "max_return": [""]})
    return df


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.benchmark.aggregate",
                                 description=__doc__.split("\n")[0], formatter_class=HelpFormatter)
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json (analysis/records/manifest.py)")
    ap.add_argument("--out", required=True, help="scores CSV to write")
    ap.add_argument("--status-out", required=True, help="run-status CSV to write")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    manifest = load_manifest(args.manifest)
    scores, status = collect(manifest)
    write_tables(scores, status, args.out, args.status_out, provenance_of(manifest, status))
    counts = status["status"].value_counts()
    summary = ", ".join(f"{counts[s]} {s}" for s in RUN_STATUSES if s in counts)
    print(f"{len(status)} runs ({summary or 'none'}); {len(scores)} evaluation rows -> {args.out}",
          file=sys.stderr)
    for _, r in status[status["status"] == "invalid"].iterrows():
        print(f"invalid: {r['detail']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
