"""A run's training diagnostics (its ``metrics.csv``: the columns
:data:`qsm.harness.metrics.COLUMNS`, and any its learner declares beyond them) as the analysis reads
them, and their end-of-training values.

``metrics.csv`` holds one row every ``log_every`` environment steps of learning (and one at the
last step), each row the mean over the updates since the previous row; an empty cell is a column
the learner does not compute (SAC has no ``dq_da_rms``, TD3 no ``alpha``, ...).

End of training
---------------
The rows are ordered by step. Of a run's n rows, the last ``max(1, floor(n / 10))`` form the
end-of-training window (the last 10 % of the rows, at least one; with 200 rows: the last 20). A
column's end-of-training value is the mean of its finite values in that window, and empty (NaN)
where the window holds none: a column the learner does not compute, or one that only turned
non-finite (a diverged run's last rows). ``n_nonfinite`` counts the window's cells that are not
finite in the columns the learner computes (those holding a number somewhere in the run), so that
such a mean is never read without knowing what was left out.

Light at import (numpy and pandas only): the audit reads a run's end-of-training score-target
scale through it without importing any plotting code.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from qsm.contract.rundir import ContractError
from qsm.harness.metrics import COLUMNS, METRICS

METRICS_FILE = "metrics.csv"
END_SHARE = 10  # the end-of-training window is the last 1/END_SHARE of a run's rows
#: The facts end_of_training gives besides the metrics themselves.
WINDOW_FIELDS = ("n_rows", "window_rows", "window_first_step", "last_step", "n_nonfinite")


def window_size(n_rows: int) -> int:
    """Rows in the end-of-training window of a run with n_rows rows (0 for none)."""
    return max(1, n_rows // END_SHARE) if n_rows > 0 else 0


def metric_columns(metrics: pd.DataFrame) -> list[str]:
    """The metrics of a run's table: :data:`qsm.harness.metrics.METRICS`, then the columns its
    learner declares beyond them (e.g. dql's ``q_loss``), in the file's order."""
    return [*METRICS, *(c for c in metrics.columns if c != "step" and c not in METRICS)]


def run_metrics(run):
    """The metrics of a validated run (a ``qsm.contract.rundir.Run``) as a DataFrame with every
    column of :data:`qsm.harness.metrics.COLUMNS` (NaN: not computed) and the file's other columns,
    ordered by step; None where the run has no metrics.csv. A validator that already read the file
    hands over its table (``run.metrics``); otherwise the file is read here. ContractError (naming
    the file) for a file that cannot be read as metrics."""
    table = getattr(run, "metrics", None)
    if table is None:
        path = run.path / METRICS_FILE
        if not path.is_file():
            return None
        table = read_metrics_file(path)
    return normalise(table, run.path / METRICS_FILE)


def read_metrics_file(path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)  # empty cells -> NaN
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise ContractError(path, f"cannot be parsed as CSV ({type(e).__name__}: {e})") from None


def normalise(table: pd.DataFrame, path) -> pd.DataFrame:
    """Every column of COLUMNS (a column the file lacks is all NaN), then the file's other
    columns, as floats, sorted by step."""
    if "step" not in table.columns:
        raise ContractError(path, f"has no column 'step' (has {list(table.columns)})")
    columns = [*COLUMNS, *(c for c in table.columns if c not in COLUMNS)]
    out = pd.DataFrame({c: (pd.to_numeric(table[c], errors="coerce").astype(float)
                            if c in table.columns else np.full(len(table), np.nan))
                        for c in columns})
    if out["step"].isna().any():
        raise ContractError(path, "has a row without a numeric step")
    return out.sort_values("step", kind="stable", ignore_index=True)


def end_of_training(metrics: pd.DataFrame | None) -> dict:
    """The run's end-of-training values (see the module docstring): every metric of
    :data:`qsm.harness.metrics.METRICS` and of its learner's own columns (:func:`metric_columns`),
    and the window's facts (:data:`WINDOW_FIELDS`)."""
    n = 0 if metrics is None else len(metrics)
    k = window_size(n)
    out = {"n_rows": n, "window_rows": k, "window_first_step": pd.NA, "last_step": pd.NA,
           "n_nonfinite": 0, **{m: math.nan for m in METRICS}}
    if not k:
        return out
    window = metrics.iloc[n - k:]
    out["window_first_step"] = int(window["step"].iloc[0])
    out["last_step"] = int(window["step"].iloc[-1])
    for m in metric_columns(metrics):
        v = window[m].to_numpy(dtype=float)
        finite = np.isfinite(v)
        # empty cells read as NaN: a NaN counts as non-finite only in a column the learner
        # computes (one holding a number somewhere in the run)
        computed = not metrics[m].isna().all()
        out["n_nonfinite"] += int((~finite).sum()) if computed else 0
        out[m] = float(v[finite].mean()) if finite.any() else math.nan
    return out


def end_of_training_value(run, column: str) -> float:
    """One metric's end-of-training value of a validated run; NaN where the run has no metrics
    or the learner does not compute the column (never raises for an unreadable file)."""
    try:
        return float(end_of_training(run_metrics(run))[column])
    except ContractError:
        return math.nan
