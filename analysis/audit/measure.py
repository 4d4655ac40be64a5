"""Per-state measurements of an action distribution from its samples, treating it as what it is:
probability mass on the bounds of the action box (atoms: clipped or saturated actions) plus
parts with densities (analysis.estimators.mixed). Modes are counted and KL estimated on the parts
that have densities; the mass on the bounds is a measure of its own; the cases where an estimate is
undefined are named, not hidden."""
from __future__ import annotations

import math
import zlib

import numpy as np

from analysis.estimators import mixed
from analysis.estimators.bootstrap import DEFAULT_SEED

DEFAULT_KL_SAMPLES = 1000

NOTE_POINT_MASS = "point mass (deterministic): no density, KL undefined"


def is_point_mass(x) -> bool:
    """All samples identical (a deterministic policy): no density, so no kNN KL."""
    x = np.asarray(x)
    return bool(len(x) == 0 or np.all(x == x[:1]))


def subsample(x, max_n, key: str, seed: int):
    """At most `max_n` rows of x: a fixed random subset drawn from (seed, key), so every
    estimate is reproducible on its own."""
    if max_n is None or len(x) <= max_n:
        return x
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode())])
    return x[np.sort(rng.choice(len(x), size=max_n, replace=False))]


def state_measures(x) -> dict:
    """Bound masses and mode counts of the samples x (N, d) at one state
    (analysis.estimators.mixed):

    ``mass_interior / mass_face / mass_corner / mass_any_bound``: shares of samples with no /
    some but not all / every / at least one coordinate on a bound; ``lower``, ``upper`` (d,):
    per dimension the share on the lower / upper bound; ``n_heavy_corners``: corners holding at
    least 5 %, ``top_corner_mass`` the largest corner's share; ``interior_modes``: modes of the
    interior part (NaN when it has too few samples), ``interior_modes_near_bound`` those of them
    within 0.1 of a bound (density piled against it); ``components``: atoms and modes of every
    part holding >= 5 %; the bound patterns' law (analysis.estimators.mixed.pattern_law):
    ``patterns``, ``n_heavy_patterns`` (holding >= 5 %), ``pattern_entropy`` (bits),
    ``top_pattern_mass``; ``note``."""
    s = mixed.mixed_summary(x)
    law = mixed.pattern_law(x)
    notes = []
    if is_point_mass(x):
        notes.append("point mass: 1 mode")
    if s["interior_note"]:
        notes.append(f"interior part: {s['interior_note']}")
    return {"mass_interior": s["interior"], "mass_face": s["face"], "mass_corner": s["corner"],
            "mass_any_bound": s["any_bound"], "lower": s["lower"], "upper": s["upper"],
            "n_heavy_corners": s["n_heavy_corners"], "top_corner_mass": s["top_corner_mass"],
            "n_interior": s["n_interior"], "interior_modes": s["interior_modes"],
            "interior_modes_near_bound": s["interior_modes_near_bound"],
            "components": s["components"], "patterns": law["patterns"],
            "n_heavy_patterns": law["n_heavy_patterns"],
            "pattern_entropy": law["pattern_entropy"], "top_pattern_mass": law["top_pattern_mass"],
            "note": "; ".join(notes)}


def interior_gaussian_kl(x, seed=DEFAULT_SEED):
    """(value, note): KL(interior part of x || Gaussian fitted to it); NaN with a note where
    undefined (a point mass, atoms inside the box, too few interior samples). Never computed on
    samples with atoms: those have no density to compare with a Gaussian."""
    if is_point_mass(x):
        return math.nan, NOTE_POINT_MASS
    try:
        return mixed.interior_gaussian_fit_kl(x, seed=seed)
    except Exception as e:
        return math.nan, f"interior_gaussian_fit_kl failed ({type(e).__name__}: {e})"


def between_kl(x, y, seed=DEFAULT_SEED) -> dict:
    """KL(x || y) by the chain rule over bound patterns (analysis.estimators.mixed.mixed_kl):
    ``kl``, ``kl_pattern``, ``kl_interior``, ``covered_mass``, ``missing_mass``, ``note``; NaN with
    a note where undefined (a point mass on either side)."""
    empty = {"kl": math.nan, "kl_pattern": math.nan, "kl_interior": math.nan,
             "covered_mass": math.nan, "missing_mass": math.nan}
    if is_point_mass(x) or is_point_mass(y):  # a density against a point mass: infinite
        return {**empty, "note": NOTE_POINT_MASS}
    try:
        return mixed.mixed_kl(x, y, seed=seed)
    except Exception as e:
        return {**empty, "note": f"mixed_kl failed ({type(e).__name__}: {e})"}
