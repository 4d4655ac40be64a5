"""Action distributions with atoms: mass on the bounds of the box, and the parts with densities.

Policies act in the box ``[-1, 1]^d`` and many put *probability mass* (not just density) on its
boundary: QSM's sampler clips to the box after every denoising step, exploration noise is
clipped, and a float32 ``tanh`` saturates to exactly +-1.  Such a distribution is a mixture over
the faces of the box: every sample has a **bound pattern** ``b in {-1, 0, +1}^d`` (coordinate i at
the lower bound, inside, or at the upper bound), and

    P = sum_b  P(b) * P_b,

where ``P_b`` lives on the face ``{a : a_i = b_i where b_i != 0}`` and has a density in the face's
free coordinates (those with ``b_i = 0``).  The *interior part* is ``b = 0`` (no coordinate on a
bound): the only part with a d-dimensional density.  A *corner* (every coordinate on a bound) is a
point mass.  Mode counts and KL estimates are defined part by part; mixing parts of different
dimension in one density estimate (what a kNN estimator does when it meets ties) measures the ties,
not the policy.

Why faces and not per-dimension conditioning: conditioning each coordinate on "not at a bound"
keeps only marginals, so a 2-D distribution with modes at the 4 points (+-0.5, +-0.5) would read
as 2 modes per axis and its joint structure would be lost; the face decomposition keeps the joint
distribution of every part.  Its cost: in d dimensions with coordinates on the bound half the
time, few samples are fully interior (0.5^6 = 1.6 % in 6-D), so the interior part of a saturated
6-D policy is often too small to analyse, and the tables say so (``NaN``, ``n_interior``).

Measures (all from samples ``x`` of shape ``(n, d)`` in the box):

* ``bound_mass(x)``: per dimension P(a_i = -1) and P(a_i = +1); P(interior), P(corner) (all
  coordinates on a bound), P(face) (some but not all); the number of distinct corners and the
  largest corner's mass.  A coordinate is on a bound when it lies within ``ATOM_TOL = 1e-6`` of it
  (clipped actions are exactly +-1; a density puts mass ~1e-6 there).
* ``pattern_law(x)``: the distribution over bound patterns: how many patterns hold >= 5 %, its
  entropy in bits, and per coordinate the balance between the lower and the upper bound.
* ``mixed_summary(x)``: the above plus the modes of the interior part
  (:func:`analysis.estimators.modes.mode_summary` on the interior samples; needs
  ``MIN_PART_SAMPLES``) and of every face part holding at least ``MIN_PART_WEIGHT = 5 %`` of the
  samples (counted in its free coordinates; a corner is one mode), and the whole distribution's
  count of *components* = sum over those parts of their modes.
* ``interior_gaussian_fit_kl(x)``: KL(interior part || Gaussian fitted to it) in nats
  (:func:`analysis.estimators.kl.gaussian_fit_kl`), or NaN with the reason: too few interior
  samples, or atoms inside the box (repeated samples, e.g. a deterministic policy).
* ``mixed_kl(p, q)``: KL(P || Q) by the chain rule over bound patterns, exact for mixtures over
  disjoint faces::

      KL(P || Q) = KL(pattern law of P || pattern law of Q) + sum_b P(b) KL(P_b || Q_b).

  The first term is a discrete KL (defined with atoms; plug-in frequencies, Q's smoothed by adding
  1/2 to every pattern seen in either sample, so a pattern Q never produced costs a large finite
  amount instead of infinity, and ``missing_mass`` reports how much of P sits on such patterns).
  The face terms use :func:`analysis.estimators.kl.kl_divergence` in the free coordinates, for every
  pattern with at least ``MIN_KL_SAMPLES`` samples in both P and Q; corners contribute 0 (point
  masses on both sides).  Every face term is >= 0, so leaving out a face that is too small to
  estimate makes the result a **lower bound**; ``covered_mass`` is P's mass whose term is included
  (corners, estimated faces and the interior), and the result is the full KL when it is 1.

Calibration on mixtures of atoms and interior modes with known truth:
``python benchmarks/calibration.py --only mixed`` (table in docs/audit.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.estimators.samples import sample_matrix

__all__ = ["ATOM_TOL", "MIN_PART_WEIGHT", "MIN_PART_SAMPLES", "MIN_KL_SAMPLES", "NEAR_BOUND",
           "bound_pattern", "pattern_law", "pattern_text", "unique_patterns",
           "bound_mass", "has_atoms", "mixed_summary", "interior_gaussian_fit_kl", "mixed_kl",
           "pattern_kl"]

ATOM_TOL = 1e-6          # a coordinate this close to a bound is on it
MIN_PART_WEIGHT = 0.05   # a face part is analysed when it holds at least this share of the samples
MIN_PART_SAMPLES = 20    # ... and at least this many samples (the mode counter's floor is 10)
MIN_KL_SAMPLES = 100     # samples a part needs on both sides for a kNN KL term (k = 10)
# An interior mode this close to a bound (in some coordinate) is reported as near it: the
# exploration noise's standard deviation, so that noise around an atom is recognised as such.
NEAR_BOUND = 0.1
PATTERN_PSEUDOCOUNT = 0.5  # added to Q's count of every pattern seen in either sample


def _box(samples: Any, name: str = "samples") -> np.ndarray:
    x = sample_matrix(samples, name)
    if x.min() < -1 - ATOM_TOL or x.max() > 1 + ATOM_TOL:
        raise ValueError(f"{name} must lie in [-1, 1]^d; found values in "
                         f"[{x.min():.6g}, {x.max():.6g}]")
    return np.clip(x, -1.0, 1.0)


def bound_pattern(x: np.ndarray) -> np.ndarray:
    """(n, d) int8: -1 where a coordinate is on the lower bound, +1 on the upper, 0 inside."""
    x = _box(x)
    return ((x >= 1 - ATOM_TOL).astype(np.int8) - (x <= -1 + ATOM_TOL).astype(np.int8))


def has_atoms(x: np.ndarray) -> bool:
    """Some sample value occurs more than once: a point mass somewhere (on a bound or inside)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] == 0:
        return bool(len(x) and len(np.unique(x, axis=0)) < len(x))
    rows = x[np.lexsort(x.T[::-1])]  # equal rows end up adjacent (np.unique's test, 3x faster)
    return bool((rows[1:] == rows[:-1]).all(axis=1).any())


def unique_patterns(b: np.ndarray, return_inverse: bool = False):
    """``np.unique(b, axis=0, return_counts=True)`` (and ``return_inverse``) for bound patterns
    b (n, d) in {-1, 0, +1}: the same rows in the same (lexicographic) order, found from each
    row's base-3 code. The audit splits every sample into its parts once per pair of algorithms,
    and np.unique over rows is about 14x slower."""
    b = np.asarray(b)
    d = b.shape[1]
    if d > 39:  # 3**40 overflows int64
        return np.unique(b, axis=0, return_inverse=return_inverse, return_counts=True)
    place = 3 ** np.arange(d - 1, -1, -1, dtype=np.int64)  # first coordinate most significant
    codes, inverse, counts = np.unique((b.astype(np.int64) + 1) @ place, return_inverse=True,
                                       return_counts=True)
    keys = ((codes[:, None] // place[None, :]) % 3 - 1).astype(b.dtype)
    return (keys, inverse, counts) if return_inverse else (keys, counts)


def bound_mass(x: Any) -> dict:
    """Probability mass on the bounds (fractions of the samples); see the module docstring."""
    b = bound_pattern(x)
    n, d = b.shape
    on = b != 0
    corner = on.all(axis=1)
    corners, counts = (unique_patterns(b[corner]) if corner.any()
                       else (np.zeros((0, d), np.int8), np.zeros(0, int)))
    return {"lower": (b == -1).mean(axis=0), "upper": (b == 1).mean(axis=0),
            "interior": float((~on.any(axis=1)).mean()), "corner": float(corner.mean()),
            "face": float((on.any(axis=1) & ~corner).mean()),
            "any_bound": float(on.any(axis=1).mean()),
            "n_corners": int(len(corners)),
            "n_heavy_corners": int((counts >= MIN_PART_WEIGHT * n).sum()),
            "top_corner_mass": float(counts.max() / n) if len(counts) else 0.0}


def pattern_law(x: Any) -> dict:
    """The distribution over bound patterns of the samples x (n, d): ``patterns`` {pattern as a
    string of '-', '0', '+' per coordinate: share}, heaviest first; ``n_patterns`` (distinct) and
    ``n_heavy_patterns`` (holding >= MIN_PART_WEIGHT); ``pattern_entropy`` in bits (plug-in);
    ``top_pattern_mass``; ``balance`` (d,): per coordinate the share of its bound samples that are
    on the upper bound (NaN where it never touches a bound): 0.5 is an even split between -1 and
    +1, 0 or 1 all on one side. A policy whose samples all sit on one pattern is one bound
    pattern, however many coordinates it saturates; several heavy patterns are a multi-modal law
    over the faces of the box."""
    b = bound_pattern(x)
    n, d = b.shape
    keys, counts = unique_patterns(b)
    order = np.argsort(-counts, kind="stable")
    share = counts[order] / n
    on_lower, on_upper = (b == -1).sum(axis=0), (b == 1).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        balance = np.where(on_lower + on_upper > 0, on_upper / (on_lower + on_upper), np.nan)
    return {"patterns": {pattern_text(keys[i]): float(w) for i, w in zip(order, share)},
            "n_patterns": int(len(keys)),
            "n_heavy_patterns": int((share >= MIN_PART_WEIGHT).sum()),
            "pattern_entropy": float(-(share * np.log2(share)).sum()),
            "top_pattern_mass": float(share[0]) if len(share) else math.nan,
            "balance": balance.astype(float)}


def pattern_text(pattern) -> str:
    """A bound pattern as text, one character per coordinate: '-' lower, '0' inside, '+' upper."""
    return "".join("-0+"[int(v) + 1] for v in pattern)


@dataclass(frozen=True)
class Part:
    pattern: tuple       # (d,) of -1 / 0 / +1
    mass: float          # fraction of the samples
    samples: np.ndarray  # (n_part, n_free): the free coordinates of the part's samples

    @property
    def n_free(self) -> int:
        return self.samples.shape[1]


def parts(x: Any) -> list[Part]:
    """The samples split by bound pattern, heaviest part first."""
    x = _box(x)
    b = bound_pattern(x)
    keys, inverse, counts = unique_patterns(b, return_inverse=True)
    inverse = inverse.ravel()
    out = []
    for i in np.argsort(-counts, kind="stable"):
        free = keys[i] == 0
        out.append(Part(tuple(int(v) for v in keys[i]), counts[i] / len(x),
                        x[inverse == i][:, free]))
    return out


def _part_modes(part: Part, n_total: int) -> tuple[float, float, str]:
    """(modes, modes flagged near a bound, note) of one part, in its free coordinates."""
    from analysis.estimators.modes import mode_summary
    if part.n_free == 0:
        return 1.0, 0.0, ""
    if len(part.samples) < MIN_PART_SAMPLES:
        return math.nan, math.nan, f"{len(part.samples)} samples < {MIN_PART_SAMPLES}"
    s = mode_summary(part.samples)
    near = (1.0 - np.abs(s["locations"]) <= NEAR_BOUND).any(axis=1)
    return float(s["n_modes"]), float(near.sum()), ""


def mixed_summary(x: Any) -> dict:
    """Bound masses, the interior part's modes and every heavy face part's modes.

    Keys: those of :func:`bound_mass`; ``n_interior`` (interior samples), ``interior_modes``
    (NaN with ``interior_note`` when the interior part is too small), ``interior_modes_near_bound``
    (interior modes located within NEAR_BOUND of a bound: density piled against it, e.g. a wide
    tanh-Gaussian, or exploration noise around an atom);
    ``parts``: [(pattern, mass, modes)] of the parts holding >= MIN_PART_WEIGHT;
    ``components`` = sum of their modes (NaN if one could not be counted); ``components_mass``
    = their total mass (the rest is spread over light faces and is not counted)."""
    x = _box(x)
    n, d = x.shape
    out = bound_mass(x)
    interior = x[bound_pattern(x).any(axis=1) == 0]
    out["n_interior"] = int(len(interior))
    part_list = parts(x)
    inner = next((p for p in part_list if p.n_free == d), Part((0,) * d, 0.0, interior))
    modes, near, note = _part_modes(inner, n)
    out.update(interior_modes=modes, interior_modes_near_bound=near, interior_note=note)
    heavy = []
    for p in part_list:
        if p.mass < MIN_PART_WEIGHT or len(p.samples) < min(MIN_PART_SAMPLES, MIN_PART_WEIGHT * n):
            continue
        m = modes if p is inner else _part_modes(p, n)[0]
        heavy.append((p.pattern, float(p.mass), m))
    out["parts"] = heavy
    out["components"] = float(sum(m for _, _, m in heavy)) if heavy else math.nan
    out["components_mass"] = float(sum(w for _, w, _ in heavy))
    return out


def interior_gaussian_fit_kl(x: Any, min_samples: int = MIN_KL_SAMPLES, seed: int = 0):
    """(KL(interior part || its Gaussian fit) in nats, note); NaN with the reason when undefined."""
    from analysis.estimators.kl import gaussian_fit_kl
    x = _box(x)
    inner = x[bound_pattern(x).any(axis=1) == 0]
    if len(inner) < min_samples:
        return math.nan, f"interior part has {len(inner)} samples < {min_samples}"
    if has_atoms(inner):
        return math.nan, "atoms inside the box (repeated samples): no density"
    return float(gaussian_fit_kl(inner, seed=seed)), ""


def pattern_kl(bp: np.ndarray, bq: np.ndarray,
               pseudocount: float = PATTERN_PSEUDOCOUNT) -> tuple[float, float]:
    """(discrete KL between the bound-pattern laws of two samples, P's mass on patterns Q never
    produced).  P: plug-in frequencies; Q: counts + pseudocount over the patterns seen in either."""
    keys_p, cp = unique_patterns(bp)
    keys_q, cq = unique_patterns(bq)
    q_count = {tuple(k): c for k, c in zip(keys_q.tolist(), cq)}
    support = {tuple(k) for k in keys_p.tolist()} | set(q_count)
    q_total = len(bq) + pseudocount * len(support)
    kl, missing = 0.0, 0.0
    for k, c in zip(keys_p.tolist(), cp):
        p = c / len(bp)
        qc = q_count.get(tuple(k), 0)
        if qc == 0:
            missing += p
        kl += p * math.log(p / ((qc + pseudocount) / q_total))
    return float(kl), float(missing)


def mixed_kl(p_samples: Any, q_samples: Any, min_samples: int = MIN_KL_SAMPLES,
             seed: int = 0) -> dict:
    """KL(P || Q) by the chain rule over bound patterns (module docstring).

    Returns ``kl`` (pattern term + covered face terms: the full KL when ``covered_mass`` is 1,
    a lower bound otherwise), ``kl_pattern``, ``kl_interior`` (KL between the interior parts, NaN
    if not estimated), ``covered_mass``, ``missing_mass``, ``note``.  ``kl`` is NaN when a part
    that could be estimated holds atoms inside the box on either side (no density: e.g. a
    deterministic policy), since its true term is then infinite unless both have the same
    atoms."""
    from analysis.estimators.kl import kl_divergence
    x, y = _box(p_samples, "p_samples"), _box(q_samples, "q_samples")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"p and q must have the same dimension; got {x.shape[1]} and {y.shape[1]}")
    d = x.shape[1]
    bp, bq = bound_pattern(x), bound_pattern(y)
    kl_pat, missing = pattern_kl(bp, bq)
    q_parts = {p.pattern: p for p in parts(y)}
    total, covered, kl_int, notes = kl_pat, 0.0, math.nan, []
    for part in parts(x):
        if part.n_free == 0:
            covered += part.mass
            continue
        other = q_parts.get(part.pattern)
        if other is None or min(len(part.samples), len(other.samples)) < min_samples:
            continue
        for name, sample in (("P", part.samples), ("Q", other.samples)):
            if has_atoms(sample):  # a kNN estimate would measure the ties, not the distributions
                return {"kl": math.nan, "kl_pattern": kl_pat, "kl_interior": math.nan,
                        "covered_mass": covered, "missing_mass": missing,
                        "note": f"{name} has atoms inside face {part.pattern}: no density"}
        term = float(kl_divergence(part.samples, other.samples, seed=seed))  # not clipped at 0
        total += part.mass * term
        covered += part.mass
        if part.n_free == d:
            kl_int = term
    if missing > 0:
        notes.append(f"{missing:.1%} of P on patterns Q never produced (smoothed, KL may be "
                     f"infinite)")
    if covered < 1 - 1e-12:
        notes.append(f"faces holding {1 - covered:.1%} of P too small to estimate: lower bound")
    return {"kl": float(total), "kl_pattern": kl_pat, "kl_interior": kl_int,
            "covered_mass": float(covered), "missing_mass": missing, "note": "; ".join(notes)}
