"""Validation shared by the audit's estimators (mode counter, KL): samples as an (n, d) float array."""
from __future__ import annotations

from typing import Any

import numpy as np


def sample_matrix(a: Any, name: str) -> np.ndarray:
    """`a` as a finite float64 array of shape (n, d), d >= 1 (1-D input is one dimension), or a
    ValueError naming `name` and what is wrong."""
    try:
        x = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n, d); got shape {x.shape}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one dimension; got shape {x.shape}")
    finite = np.isfinite(x)
    if not finite.all():
        raise ValueError(f"{name} contains {int((~finite).sum())} NaN or infinite value(s)")
    return x
