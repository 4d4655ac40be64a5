"""Distributions on the action box [-1, 1]^d whose truth is known: what the mode counter, the
KL estimators and the bound-pattern split (analysis.estimators.modes, analysis.estimators.kl,
analysis.estimators.mixed) are calibrated against (benchmarks/calibration.py) and tested with
(tests/test_modes.py, tests/test_kl.py, tests/test_mixed.py).

Definitions used by the generators
----------------------------------
* **Well separated mixture** (``sample_mixture``): ``K`` Gaussian components with centres drawn
  uniformly in ``[-0.7, 0.7]^d`` and accepted only if every pair satisfies
  ``|mu_a - mu_b| >= 3 * (sigma_a + sigma_b)`` where ``sigma`` is a component's largest standard
  deviation (6 sigma between equal components).  ``sigma_max`` is 0.08 in 1-D and 0.1 otherwise,
  each component gets ``sigma = sigma_max * U(0.6, 1)``, a random rotation and per-axis standard
  deviations ``sigma * U(0.5, 1)``.  Weights are ``w_min + (1 - K w_min) * Dirichlet(1)`` with
  ``w_min = 0.1``.  Samples are clipped to the box (which almost never happens).
* **Unimodal** (``sample_unimodal``): one Gaussian with a random rotation, centre in
  ``[-0.2, 0.2]^d`` and per-axis standard deviations log-uniform in ``[0.25 / 30, 0.25]`` (axis
  ratio up to 30, i.e. variance ratio up to 900).
* **Clipped mixture** (``sample_clipped_mixture``): a well separated mixture whose first component
  is moved to 1.15 in dimension 0 with sigma 0.1, so that about 93 % of it is clipped onto the face
  ``x_0 = 1`` (an atom there).  The truth is K modes, exactly one of them at the upper bound in
  dimension 0.
* **Mixed** (``FacePart``, ``sample_mixed``): atoms on faces and corners of the box plus
  truncated Gaussian mixtures in the free coordinates; ``mixed_truth`` and ``mixed_kl_truth``
  give their exact bound masses, mode counts and KL.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import brentq

from analysis.estimators.kl import gaussian_kl


# --------------------------------------------------------------------------------------------
# generators

def random_rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    """Haar-random orthogonal matrix."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _mixture_params(rng, d, n_modes, separation, sigma_max, box):
    for _ in range(100_000):
        mus = rng.uniform(-box, box, size=(n_modes, d))
        sig = sigma_max * rng.uniform(0.6, 1.0, size=n_modes)
        ok = all(np.linalg.norm(mus[a] - mus[b]) >= separation * (sig[a] + sig[b])
                 for a in range(n_modes) for b in range(a + 1, n_modes))
        if ok:
            return mus, sig
    raise RuntimeError("could not place the mixture components; lower separation or sigma")


def sample_mixture(rng: np.random.Generator, n: int, d: int, n_modes: int, *,
                   separation: float = 3.0, min_weight: float = 0.1,
                   sigma_max: float | None = None, box: float = 0.7,
                   weights=None) -> np.ndarray:
    """A well separated Gaussian mixture with ``n_modes`` components (module docstring).
    ``weights`` fixes the component weights instead of drawing them."""
    if sigma_max is None:
        sigma_max = 0.08 if d == 1 else 0.1
    mus, sig = _mixture_params(rng, d, n_modes, separation, sigma_max, box)
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n_modes,) or abs(w.sum() - 1) > 1e-9:
            raise ValueError("weights must be n_modes numbers summing to 1")
    else:
        w = min_weight + (1.0 - min_weight * n_modes) * rng.dirichlet(np.ones(n_modes))
    comp = rng.choice(n_modes, size=n, p=w)
    x = np.empty((n, d))
    for a in range(n_modes):
        sel = comp == a
        if d == 1:
            x[sel] = mus[a] + sig[a] * rng.standard_normal((sel.sum(), 1))
        else:
            rot = random_rotation(rng, d)
            std = sig[a] * rng.uniform(0.5, 1.0, size=d)
            x[sel] = mus[a] + (rng.standard_normal((sel.sum(), d)) * std) @ rot.T
    return np.clip(x, -1.0, 1.0)


def sample_unimodal(rng: np.random.Generator, n: int, d: int, *, max_std: float = 0.25,
                    axis_ratio: float = 30.0) -> np.ndarray:
    """One rotated, anisotropic Gaussian well inside the box (module docstring)."""
    std = max_std * np.exp(rng.uniform(-np.log(axis_ratio), 0.0, size=d))
    std[rng.integers(d)] = max_std  # the widest axis always reaches max_std
    mu = rng.uniform(-0.2, 0.2, size=d)
    rot = random_rotation(rng, d) if d > 1 else np.ones((1, 1))
    return np.clip(mu + (rng.standard_normal((n, d)) * std) @ rot.T, -1.0, 1.0)


def sample_tanh_gaussian(rng: np.random.Generator, n: int, d: int, std: float,
                         mean: float = 0.0) -> np.ndarray:
    """tanh of an isotropic Gaussian (a SAC-style squashed policy)."""
    return np.tanh(mean + std * rng.standard_normal((n, d)))


def sample_clipped_mixture(rng: np.random.Generator, n: int, d: int,
                           n_modes: int) -> np.ndarray:
    """A well separated mixture whose first component is clipped onto the face x_0 = 1."""
    sigma_max = 0.08 if d == 1 else 0.1
    for _ in range(100_000):
        mus, sig = _mixture_params(rng, d, n_modes, 3.0, sigma_max, 0.6)
        mus[0, 0], sig[0] = 1.15, 0.1
        if all(np.linalg.norm(mus[0] - mus[b]) >= 3.0 * (sig[0] + sig[b]) + 0.15
               for b in range(1, n_modes)):
            break
    w = 0.1 + (1.0 - 0.1 * n_modes) * rng.dirichlet(np.ones(n_modes))
    comp = rng.choice(n_modes, size=n, p=w)
    x = mus[comp] + sig[comp, None] * rng.standard_normal((n, d))
    return np.clip(x, -1.0, 1.0)


def random_gaussian_pair(rng: np.random.Generator, d: int, kind: str, target_kl: float):
    """(mu0, cov0, mu1, cov1) with KL(N0 || N1) = target_kl exactly.

    kind: 'shift' (same random covariance, mean moved), 'wider' (cov1 = c cov0, c > 1),
    'narrower' (c < 1), 'rotated' (half the KL from moving cov1 along the geodesic towards an
    unrelated random covariance with axis ratio up to 30, half from a mean shift)."""
    rot = random_rotation(rng, d) if d > 1 else np.ones((1, 1))
    cov0 = (rot * np.exp(rng.uniform(-1.0, 1.0, size=d)) ** 2) @ rot.T
    cov0 = 0.5 * (cov0 + cov0.T)
    mu0 = rng.uniform(-1.0, 1.0, size=d)
    if kind == "shift":
        u = rng.standard_normal(d)
        u /= np.sqrt(u @ np.linalg.solve(cov0, u))
        return mu0, cov0, mu0 + np.sqrt(2.0 * target_kl) * u, cov0
    if kind in ("wider", "narrower"):
        f = lambda c: gaussian_kl(mu0, cov0, mu0, c * cov0) - target_kl  # noqa: E731
        c = brentq(f, 1.0 + 1e-12, 1e8) if kind == "wider" else brentq(f, 1e-8, 1.0 - 1e-12)
        return mu0, cov0, mu0.copy(), c * cov0
    if kind == "rotated":
        rot2 = random_rotation(rng, d) if d > 1 else np.ones((1, 1))
        other = (rot2 * np.exp(rng.uniform(-np.log(30) / 2, np.log(30) / 2, size=d)) ** 2) @ rot2.T
        if d == 1:
            other = cov0 * 4.0
        w, v = np.linalg.eigh(cov0)
        half, half_inv = (v * np.sqrt(w)) @ v.T, (v / np.sqrt(w)) @ v.T
        wm, vm = np.linalg.eigh(half_inv @ other @ half_inv)
        geo = lambda t: half @ ((vm * wm ** t) @ vm.T) @ half  # noqa: E731
        g = lambda t: gaussian_kl(mu0, cov0, mu0, geo(t)) - target_kl / 2  # noqa: E731
        hi = 1.0
        while g(hi) < 0:
            hi *= 2.0
        cov1 = geo(brentq(g, 1e-12, hi))
        cov1 = 0.5 * (cov1 + cov1.T)
        u = rng.standard_normal(d)
        u /= np.sqrt(u @ np.linalg.solve(cov1, u))
        return mu0, cov0, mu0 + np.sqrt(target_kl) * u, cov1
    raise ValueError(f"unknown kind {kind!r}")


def sample_gaussian(rng, mu, cov, n):
    return mu + rng.standard_normal((n, len(mu))) @ np.linalg.cholesky(cov).T


# --------------------------------------------------------------------------------------------
# mixed distributions: atoms on the faces of the box plus interior modes (analysis.estimators.mixed)

@dataclass(frozen=True)
class FacePart:
    """One part of a mixed distribution: probability ``weight`` on the face given by ``pattern``
    (per dimension -1 / +1: on that bound, 0: free), with an equal-weight mixture of isotropic
    Gaussians (centres ``means``, shape (K, free dims); standard deviation ``sd``) in the free
    coordinates, truncated to the open box.  A corner has no free coordinates: a point mass."""
    weight: float
    pattern: tuple
    means: tuple = ()
    sd: float = 0.0

    @property
    def n_free(self) -> int:
        return sum(1 for v in self.pattern if v == 0)

    @property
    def n_modes(self) -> int:
        return 1 if self.n_free == 0 else len(self.means)


def _truncated_components(rng, n, means, sd):
    means = np.asarray(means, dtype=float)
    out = np.empty((n, means.shape[1]))
    todo = np.arange(n)
    comp = rng.integers(0, len(means), n)
    while todo.size:  # redraw the rare values outside the open box (clipping would make atoms)
        out[todo] = means[comp[todo]] + sd * rng.standard_normal((todo.size, means.shape[1]))
        todo = todo[np.abs(out[todo]).max(axis=1) >= 1 - 1e-3]
    return out


def sample_mixed(rng: np.random.Generator, n: int, face_parts) -> np.ndarray:
    """n samples of the mixture of :class:`FacePart`s (weights must sum to 1)."""
    w = np.array([p.weight for p in face_parts])
    if abs(w.sum() - 1) > 1e-9:
        raise ValueError(f"part weights must sum to 1, got {w.sum()}")
    d = len(face_parts[0].pattern)
    comp = rng.choice(len(face_parts), size=n, p=w)
    x = np.empty((n, d))
    for i, part in enumerate(face_parts):
        rows = np.flatnonzero(comp == i)
        pattern = np.asarray(part.pattern)
        x[rows] = pattern  # fixed coordinates; free ones are overwritten below
        free = np.flatnonzero(pattern == 0)
        if free.size and rows.size:
            x[np.ix_(rows, free)] = _truncated_components(rng, rows.size, part.means, part.sd)
    return x


def mixed_truth(face_parts) -> dict:
    """The true values of analysis.estimators.mixed.mixed_summary's measures for a mixture of
    FaceParts."""
    from analysis.estimators.mixed import MIN_PART_WEIGHT
    d = len(face_parts[0].pattern)
    lower, upper = np.zeros(d), np.zeros(d)
    interior, interior_modes = 0.0, 0
    for p in face_parts:
        lower += p.weight * (np.asarray(p.pattern) == -1)
        upper += p.weight * (np.asarray(p.pattern) == 1)
        if p.n_free == d:
            interior, interior_modes = interior + p.weight, p.n_modes
    heavy = [p for p in face_parts if p.weight >= MIN_PART_WEIGHT]
    return {"lower": lower, "upper": upper, "interior": interior,
            "interior_modes": interior_modes, "components": sum(p.n_modes for p in heavy)}


def mixed_kl_truth(p_parts, q_parts) -> float:
    """KL(P || Q) of two FacePart mixtures whose free parts are single Gaussians (truncation at
    the box ignored: keep them 5 sd inside).  Infinite if P has a face that Q lacks."""
    q_by = {q.pattern: q for q in q_parts}
    total = 0.0
    for p in p_parts:
        q = q_by.get(p.pattern)
        if q is None:
            return math.inf
        total += p.weight * math.log(p.weight / q.weight)
        if p.n_free:
            if len(p.means) != 1 or len(q.means) != 1:
                raise ValueError("analytic truth needs one Gaussian per free part")
            k = p.n_free
            total += p.weight * gaussian_kl(np.asarray(p.means[0]), p.sd ** 2 * np.eye(k),
                                            np.asarray(q.means[0]), q.sd ** 2 * np.eye(k))
    return total


def corner(d, sign=1, flip=()):
    return tuple(-sign if i in flip else sign for i in range(d))


def mixed_mode_settings() -> list:
    """(name, d, sampler rng -> (n, d) samples, truth dict) for the mixed-distribution table."""
    def face(**kw):
        return FacePart(**kw)

    quad = ((-.5, -.5), (-.5, .5), (.5, -.5), (.5, .5))
    rows = [
        ("1-D: atoms 20% at -1, 10% at +1; 70% interior, 2 modes", 1,
         [face(weight=.2, pattern=(-1,)), face(weight=.1, pattern=(1,)),
          face(weight=.7, pattern=(0,), means=((-.4,), (.4,)), sd=.08)]),
        ("1-D: atoms 45% at each bound; 10% interior, 1 mode", 1,
         [face(weight=.45, pattern=(-1,)), face(weight=.45, pattern=(1,)),
          face(weight=.1, pattern=(0,), means=((0.,),), sd=.2)]),
        ("2-D: 2 corners 15% each; face a0=+1 20%; interior 50%, 4 modes", 2,
         [face(weight=.15, pattern=(1, 1)), face(weight=.15, pattern=(-1, -1)),
          face(weight=.2, pattern=(1, 0), means=((0.,),), sd=.15),
          face(weight=.5, pattern=(0, 0), means=quad, sd=.08)]),
        ("6-D: 2 corners 20% each; interior 60%, 3 modes", 6,
         [face(weight=.2, pattern=corner(6)), face(weight=.2, pattern=corner(6, -1, (0, 1))),
          face(weight=.6, pattern=(0,) * 6, means=(np.full(6, -.4), np.zeros(6), np.full(6, .4)),
               sd=.06)]),
        ("21-D: one corner 30%; interior 70%, 2 modes", 21,
         [face(weight=.3, pattern=corner(21, 1, range(0, 21, 2))),
          face(weight=.7, pattern=(0,) * 21, means=(np.full(21, -.3), np.full(21, .3)), sd=.1)]),
    ]
    out = [(name, d, (lambda rng, n, parts=parts: sample_mixed(rng, n, parts)), mixed_truth(parts))
           for name, d, parts in rows]

    # QSM-like saturation: a 2-mode interior mixture whose coordinates are each moved to a
    # random bound with probability 0.3, independently; the fully interior part keeps 0.7^6.
    def saturated(rng, n, d=6, p=0.3):
        x = _truncated_components(rng, n, (np.full(d, -.4), np.full(d, .4)), .08)
        hit = rng.random((n, d)) < p
        x[hit] = rng.choice([-1.0, 1.0], size=int(hit.sum()))
        return x
    out.append(("6-D: each coordinate at a bound w.p. 0.3 (0.7^6 = 11.8% interior), 2 modes", 6,
                saturated, {"lower": np.full(6, .15), "upper": np.full(6, .15),
                            "interior": .7 ** 6, "interior_modes": 2, "components": 2}))

    # SAC-like: a wide tanh-Gaussian has no atom, but 15% of its mass lies within ATOM_TOL
    # (1e-6) of the bounds, finer than float32 actions resolve: the measure reports that mass.
    from analysis.estimators.mixed import ATOM_TOL
    edge = float(stats.norm.sf(np.arctanh(1 - ATOM_TOL) / 5.0))
    out.append(("1-D: tanh(N(0, 5^2)) (SAC-like): mass within 1e-6 of the bounds", 1,
                lambda rng, n: sample_tanh_gaussian(rng, n, 1, 5.0),
                {"lower": np.array([edge]), "upper": np.array([edge]), "interior": 1 - 2 * edge,
                 "interior_modes": 2, "components": 4}))
    return out


def mixed_kl_settings() -> list:
    """(name, P parts, Q parts) with KL(P || Q) known in closed form (mixed_kl_truth)."""
    F = FacePart
    c6, c6b = corner(6), corner(6, -1, (0, 1, 2))
    return [
        ("1-D: atoms at both bounds + interior Gaussian",
         [F(.2, (-1,)), F(.1, (1,)), F(.7, (0,), ((.2,),), .1)],
         [F(.1, (-1,)), F(.3, (1,)), F(.6, (0,), ((-.1,),), .15)]),
        ("2-D: corners + a face + interior Gaussian",
         [F(.2, (1, 1)), F(.1, (-1, -1)), F(.2, (-1, 0), ((.3,),), .1),
          F(.5, (0, 0), ((.1, -.1),), .12)],
         [F(.1, (1, 1)), F(.2, (-1, -1)), F(.3, (-1, 0), ((0.,),), .15),
          F(.4, (0, 0), ((-.1, .1),), .15)]),
        ("6-D: 2 corners + interior Gaussian",
         [F(.3, c6), F(.1, c6b), F(.6, (0,) * 6, (np.zeros(6),), .1)],
         [F(.2, c6), F(.2, c6b), F(.6, (0,) * 6, (np.full(6, .05),), .12)]),
        ("2-D: P = Q (atoms and interior), truth 0",
         [F(.3, (1, -1)), F(.7, (0, 0), ((0., .2),), .1)],
         [F(.3, (1, -1)), F(.7, (0, 0), ((0., .2),), .1)]),
        ("1-D: P has an atom at +1 that Q lacks (truth infinite)",
         [F(.1, (1,)), F(.9, (0,), ((0.,),), .1)],
         [F(1.0, (0,), ((0.,),), .12)]),
    ]
