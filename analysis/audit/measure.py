"""Per-state measurements of an action distribution from its samples: mode counts (analysis.modes)
and KL estimates (analysis.kl), with the cases where they are undefined named, not hidden."""
from __future__ import annotations

import math
import zlib

import numpy as np

from analysis import kl, modes
from analysis.stats import DEFAULT_SEED

DEFAULT_KL_SAMPLES = 1000

NOTE_POINT_MASS = "point mass (deterministic): KL undefined, NaN, left out"
NOTE_ATOMS = ("atom (repeated samples, e.g. clipped to a bound): true KL infinite, estimate "
              "finite only via analysis.kl's 1e-6 jitter")
NOTE_ATOMS_BETWEEN = ("atom in the first distribution (repeated samples, e.g. clipped to a "
                      "bound): true KL infinite unless the other has the same atom; estimate via "
                      "analysis.kl's 1e-6 jitter")


def is_point_mass(x) -> bool:
    """All samples identical (a deterministic policy): no density, so no kNN KL."""
    x = np.asarray(x)
    return bool(len(x) == 0 or np.all(x == x[:1]))


def has_repeats(x) -> bool:
    """Some sample occurs more than once (an atom of the distribution)."""
    x = np.asarray(x)
    return bool(len(np.unique(x, axis=0)) < len(x))


def mode_measure(x) -> tuple[int, int]:
    """(number of modes, number of them at an action bound) of the samples x (N, d)."""
    summary = modes.mode_summary(x)
    return int(summary["n_modes"]), int(summary["n_bound_modes"])


def subsample(x, max_n, key: str, seed: int):
    """At most `max_n` rows of x: a fixed random subset drawn from (seed, key), so every
    estimate is reproducible on its own."""
    if max_n is None or len(x) <= max_n:
        return x
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode())])
    return x[np.sort(rng.choice(len(x), size=max_n, replace=False))]


def gaussian_kl(x, seed=DEFAULT_SEED):
    """(value, note): KL(x || Gaussian fitted to x); NaN with a note where undefined."""
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
    if is_point_mass(x) or is_point_mass(y):
        return math.nan, NOTE_POINT_MASS
    try:
        v = float(kl.kl_divergence(x, y, seed=seed))
    except Exception as e:
        return math.nan, f"kl_divergence failed ({type(e).__name__}: {e}), NaN, left out"
    if not math.isfinite(v):
        return math.nan, "non-finite estimate, NaN, left out"
    return v, (NOTE_ATOMS_BETWEEN if has_repeats(x) else "")
