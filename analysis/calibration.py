"""Calibration of ``analysis.modes`` and ``analysis.kl`` on distributions whose truth is known.

Run ``python -m analysis.calibration`` (``--quick`` for fewer draws; running times in
docs/performance.md) to print the tables quoted in docs/audit.md.  The sample generators defined
here are also used by ``tests/test_modes.py`` and ``tests/test_kl.py``.

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
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
from scipy import integrate, stats
from scipy.optimize import brentq

from analysis.kl import gaussian_fit_kl, gaussian_kl, kl_divergence
from analysis.modes import mode_summary
from qsm.cli import HelpFormatter

__all__ = ["random_rotation", "sample_mixture", "sample_unimodal", "sample_tanh_gaussian",
           "sample_clipped_mixture", "random_gaussian_pair", "mode_accuracy", "FacePart",
           "sample_mixed", "mixed_truth", "mixed_kl_truth", "mixed_mode_settings",
           "mixed_kl_settings", "main"]


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


def _mvn(rng, mu, cov, n):
    return mu + rng.standard_normal((n, len(mu))) @ np.linalg.cholesky(cov).T


# --------------------------------------------------------------------------------------------
# evaluation helpers

def mode_accuracy(make, truth, draws: int, seed: int, check=None) -> tuple[float, dict, float]:
    """Fraction of ``draws`` samples ``make(rng)`` whose mode summary passes; also the histogram
    of counts and the mean seconds per call.  ``check(summary)`` defaults to
    ``n_modes == truth``."""
    rng = np.random.default_rng(seed)
    ok, hist, spent = 0, {}, 0.0
    for _ in range(draws):
        x = make(rng)
        t0 = time.perf_counter()
        s = mode_summary(x)
        spent += time.perf_counter() - t0
        hist[s["n_modes"]] = hist.get(s["n_modes"], 0) + 1
        ok += bool(check(s)) if check is not None else s["n_modes"] == truth
    return ok / draws, dict(sorted(hist.items())), spent / draws


def _hist(h: dict) -> str:
    return " ".join(f"{k}:{v}" for k, v in h.items())


def _clipped_check(n_modes):
    def check(s):
        bound_modes = [dims for dims, at in zip(s["bound_dims"], s["at_bound"]) if at]
        return s["n_modes"] == n_modes and bound_modes == [[(0, 1)]]
    return check


def mode_tables(draws: int, seed: int) -> None:
    print("MODE COUNTING (analysis.modes.count_modes, defaults)")
    print(f"{'setting':44s} {'n':>5s} {'d':>3s} {'truth':>5s} {'draws':>5s} {'correct':>8s}"
          f"  {'counts seen (count:draws)':28s} {'s/call':>7s}")
    rows = []
    for d in (1, 2, 6, 21):
        for k in (1, 2, 3, 4):
            rows.append((f"well separated mixture, {k} mode(s)", 1000, d, k, draws,
                         lambda rng, d=d, k=k: sample_mixture(rng, 1000, d, k), None))
    for n, dr in ((200, draws), (5000, max(5, draws // 5))):
        for d in (1, 2, 6, 21):
            rows.append(("well separated mixture, 3 modes", n, d, 3, dr,
                         lambda rng, d=d, n=n: sample_mixture(rng, n, d, 3), None))
    for d in (1, 2, 3, 6, 11, 21):
        rows.append(("unimodal Gaussian, axis ratio <= 30", 1000, d, 1, draws,
                     lambda rng, d=d: sample_unimodal(rng, 1000, d), None))
    for d in (1, 2, 6, 21):
        rows.append(("uniform on the box", 1000, d, 1, draws,
                     lambda rng, d=d: rng.uniform(-1, 1, (1000, d)), None))
    for d in (1, 2, 6, 21):
        rows.append(("tanh(N(0, 0.3^2)) (narrow squashed)", 1000, d, 1, draws,
                     lambda rng, d=d: sample_tanh_gaussian(rng, 1000, d, 0.3), None))
    for d in (1, 2, 3):
        rows.append(("tanh(N(0, 3^2)) (wide squashed): corners", 1000, d, 2 ** d, draws,
                     lambda rng, d=d: sample_tanh_gaussian(rng, 1000, d, 3.0),
                     lambda s, d=d: s["n_modes"] == 2 ** d and bool(s["at_bound"].all())))
    for d in (6, 21):
        rows.append(("tanh(N(0, 3^2)): all modes flagged at bound", 1000, d, "-", draws,
                     lambda rng, d=d: sample_tanh_gaussian(rng, 1000, d, 3.0),
                     lambda s: bool(s["at_bound"].all())))
    for d in (1, 2, 6, 21):
        for k in (2, 3):
            rows.append((f"clipped mixture, {k} modes, 1 on the face x0=1", 1000, d, k, draws,
                         lambda rng, d=d, k=k: sample_clipped_mixture(rng, 1000, d, k),
                         _clipped_check(k)))
    rows.append(("1-D: 30% atom at -1 + 70% N(0.3, 0.1^2)", 1000, 1, 2, draws,
                 lambda rng: np.where(rng.random((1000, 1)) < 0.3, -1.0,
                                      np.clip(rng.normal(0.3, 0.1, (1000, 1)), -1, 1)),
                 lambda s: s["n_modes"] == 2 and int(s["at_bound"].sum()) == 1))
    for i, (name, n, d, truth, dr, make, check) in enumerate(rows):
        acc, hist, sec = mode_accuracy(make, truth, dr, seed + 1000 + i, check)
        print(f"{name:44s} {n:5d} {d:3d} {str(truth):>5s} {dr:5d} {100 * acc:7.1f}%"
              f"  {_hist(hist):28s} {sec:7.3f}")

    print()
    print("Separation sweep: 2 equal-weight components, centres s * (sigma_a + sigma_b) apart,"
          " n = 1000; fraction of draws counted as 2 modes")
    seps = (1.0, 1.5, 2.0, 2.5, 3.0)
    print(f"{'d':>3s} " + " ".join(f"s={s:<4}" for s in seps))
    for d in (1, 2, 6, 21):
        fr = []
        for j, sep in enumerate(seps):
            def make(rng, d=d, sep=sep):
                sigma = 0.08 if d == 1 else 0.1
                u = rng.standard_normal(d)
                u /= np.linalg.norm(u)
                mus = np.stack([-0.5 * sep * 2 * sigma * u, 0.5 * sep * 2 * sigma * u])
                comp = rng.integers(0, 2, 1000)
                return np.clip(mus[comp] + sigma * rng.standard_normal((1000, d)), -1, 1)
            fr.append(mode_accuracy(make, 2, max(10, draws // 2), seed + 5000 + 10 * d + j)[0])
        print(f"{d:3d} " + " ".join(f"{100 * f:5.0f}%" for f in fr))


def kl_tables(draws: int, seed: int) -> None:
    print("KL BETWEEN GAUSSIANS (analysis.kl.kl_divergence, defaults, n = m = 2000)")
    print("relative error (estimate - truth) / truth over draws; 'plug-in' = gaussian_kl of the "
          "sample moments (parametric reference)")
    print(f"{'kind':9s} {'d':>2s} {'KL':>4s} {'draws':>5s} {'mean err':>9s} {'RMS err':>8s}"
          f" {'max |err|':>9s} {'<=10%':>6s} | {'plug-in RMS':>11s} {'raw kNN mean':>12s}")
    rng = np.random.default_rng(seed)
    all_err = []
    for kind in ("shift", "wider", "narrower", "rotated"):
        for d in (1, 2, 4, 6):
            for target in (0.5, 1.0, 2.0, 5.0):
                err, plug, raw = [], [], []
                for _ in range(draws):
                    mu0, c0, mu1, c1 = random_gaussian_pair(rng, d, kind, target)
                    a, b = _mvn(rng, mu0, c0, 2000), _mvn(rng, mu1, c1, 2000)
                    err.append(kl_divergence(a, b, bounds=None) / target - 1)
                    raw.append(kl_divergence(a, b, bounds=None, bias_correction=False) / target - 1)
                    plug.append(gaussian_kl(a.mean(0), np.cov(a.T).reshape(d, d), b.mean(0),
                                            np.cov(b.T).reshape(d, d)) / target - 1)
                err, plug, raw = map(np.asarray, (err, plug, raw))
                all_err.extend(err)
                print(f"{kind:9s} {d:2d} {target:4.1f} {draws:5d} {100 * err.mean():+8.1f}%"
                      f" {100 * np.sqrt(np.mean(err ** 2)):7.1f}% {100 * np.abs(err).max():8.1f}%"
                      f" {100 * np.mean(np.abs(err) <= 0.1):5.0f}% |"
                      f" {100 * np.sqrt(np.mean(plug ** 2)):10.1f}% {100 * raw.mean():+11.1f}%")
    all_err = np.abs(np.asarray(all_err))
    print(f"overall: {100 * np.mean(all_err <= 0.10):.1f}% of {len(all_err)} draws within 10%, "
          f"{100 * np.mean(all_err <= 0.15):.1f}% within 15%, "
          f"{100 * np.mean(all_err <= 0.20):.1f}% within 20%")

    print()
    print("KL(p || p) (true 0), n = m = 2000, absolute error in nats")
    for d in (1, 2, 4, 6):
        e = np.array([kl_divergence(_mvn(rng, np.zeros(d), np.eye(d), 2000),
                                    _mvn(rng, np.zeros(d), np.eye(d), 2000), bounds=None)
                      for _ in range(draws)])
        print(f"  d={d}: mean {e.mean():+.3f}, max |err| {np.abs(e).max():.3f} nats")

    print()
    print("Non-Gaussian checks (mean +- sd over draws)")
    z = np.linspace(-14, 14, 280001)
    pz = stats.norm.pdf(z)
    ey2 = np.trapezoid(np.tanh(z) ** 2 * pz, z)
    h_tanh = 0.5 * np.log(2 * np.pi * np.e) + np.trapezoid(np.log(1 - np.tanh(z) ** 2 + 1e-300) * pz, z)
    negent_tanh = 0.5 * np.log(2 * np.pi * np.e * ey2) - h_tanh
    negent_unif = 0.5 * np.log(2 * np.pi * np.e / 3) - np.log(2)
    pm = lambda x: 0.5 * stats.norm.pdf(x, -1, 0.5) + 0.5 * stats.norm.pdf(x, 1, 0.5)  # noqa
    h_mix = -integrate.quad(lambda x: pm(x) * np.log(pm(x)), -10, 10)[0]
    negent_mix = 0.5 * np.log(2 * np.pi * np.e * 1.25) - h_mix

    def mix(n):
        c = rng.integers(0, 2, n)
        return np.where(c == 0, rng.normal(-1, 0.5, n), rng.normal(1, 0.5, n))[:, None]

    def report(name, truth, fn, n_draws):
        v = np.array([fn() for _ in range(n_draws)])
        print(f"  {name:58s} truth {truth:6.3f}  estimate {v.mean():6.3f} +- {v.std():.3f}")

    nd = max(5, draws // 2)
    for d in (1, 2, 6, 21):
        report(f"gaussian_fit_kl, N(0, 0.3^2 I), n=1000, d={d}", 0.0,
               lambda d=d: gaussian_fit_kl(0.3 * rng.standard_normal((1000, d))), nd)
    for d in (1, 2, 6, 21):
        report(f"gaussian_fit_kl, uniform box, n=1000, d={d}", d * negent_unif,
               lambda d=d: gaussian_fit_kl(rng.uniform(-1, 1, (1000, d))), nd)
        report(f"  same, bounds=None (no atanh transform), d={d}", d * negent_unif,
               lambda d=d: gaussian_fit_kl(rng.uniform(-1, 1, (1000, d)), bounds=None), nd)
    for d in (1, 3, 6):
        report(f"gaussian_fit_kl, tanh(N(0, I)), n=1000, d={d}", d * negent_tanh,
               lambda d=d: gaussian_fit_kl(sample_tanh_gaussian(rng, 1000, d, 1.0)), nd)
    report("gaussian_fit_kl, 1-D .5N(-1,.5^2)+.5N(1,.5^2), unbounded, n=1000", negent_mix,
           lambda: gaussian_fit_kl(mix(1000)), nd)
    for d, scale in ((1, 2.5), (6, 2.5)):
        s0 = 0.5 * np.eye(d)
        truth = gaussian_kl(np.zeros(d), s0, np.zeros(d), scale * s0)
        report(f"kl_divergence, tanh(N(0,.5I)) || tanh(N(0,1.25I)), d={d}", truth,
               lambda d=d, s0=s0, scale=scale: kl_divergence(
                   np.tanh(_mvn(rng, np.zeros(d), s0, 2000)),
                   np.tanh(_mvn(rng, np.zeros(d), scale * s0, 2000))), nd)
    for loc, sd in ((0.0, 2.0), (0.5, 0.7)):
        qd = lambda x, loc=loc, sd=sd: stats.norm.pdf(x, loc, sd)  # noqa: E731
        truth = integrate.quad(lambda x: pm(x) * np.log(pm(x) / qd(x)), -10, 10, limit=200)[0]
        report(f"kl_divergence, 1-D bimodal p || N({loc}, {sd}^2), n=m=2000", truth,
               lambda loc=loc, sd=sd: kl_divergence(mix(2000), rng.normal(loc, sd, (2000, 1))), nd)
        report("  same, bias_correction=False", truth,
               lambda loc=loc, sd=sd: kl_divergence(mix(2000), rng.normal(loc, sd, (2000, 1)),
                                                    bias_correction=False), nd)


# --------------------------------------------------------------------------------------------
# mixed distributions: atoms on the faces of the box plus interior modes (analysis.mixed)

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
    """The true values of analysis.mixed.mixed_summary's measures for a mixture of FaceParts."""
    from analysis.mixed import MIN_PART_WEIGHT
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


def _corner(d, sign=1, flip=()):
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
         [face(weight=.2, pattern=_corner(6)), face(weight=.2, pattern=_corner(6, -1, (0, 1))),
          face(weight=.6, pattern=(0,) * 6, means=(np.full(6, -.4), np.zeros(6), np.full(6, .4)),
               sd=.06)]),
        ("21-D: one corner 30%; interior 70%, 2 modes", 21,
         [face(weight=.3, pattern=_corner(21, 1, range(0, 21, 2))),
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
    from analysis.mixed import ATOM_TOL
    edge = float(stats.norm.sf(np.arctanh(1 - ATOM_TOL) / 5.0))
    out.append(("1-D: tanh(N(0, 5^2)) (SAC-like): mass within 1e-6 of the bounds", 1,
                lambda rng, n: sample_tanh_gaussian(rng, n, 1, 5.0),
                {"lower": np.array([edge]), "upper": np.array([edge]), "interior": 1 - 2 * edge,
                 "interior_modes": 2, "components": 4}))
    return out


def mixed_kl_settings() -> list:
    """(name, P parts, Q parts) with KL(P || Q) known in closed form (mixed_kl_truth)."""
    F = FacePart
    c6, c6b = _corner(6), _corner(6, -1, (0, 1, 2))
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


def mixed_tables(draws: int, seed: int) -> None:
    from analysis.mixed import interior_gaussian_fit_kl, mixed_kl, mixed_summary
    n = 1000
    print("MIXED DISTRIBUTIONS: bound masses and modes (analysis.mixed.mixed_summary, n = 1000)")
    print("bound mass error: max over dimensions and both bounds of |estimate - truth| (mean over"
          " draws; binomial sd of a 15% share at n = 1000: 0.011)")
    print(f"{'setting':76s} {'draws':>5s} {'mass err':>8s} {'interior err':>12s} "
          f"{'interior modes ok':>17s} {'components ok':>13s}")
    for i, (name, d, make, truth) in enumerate(mixed_mode_settings()):
        rng = np.random.default_rng(seed + 7000 + i)
        mass_err, int_err, modes_ok, comp_ok = [], [], [], []
        for _ in range(draws):
            s = mixed_summary(make(rng, n))
            mass_err.append(max(np.abs(s["lower"] - truth["lower"]).max(),
                                np.abs(s["upper"] - truth["upper"]).max()))
            int_err.append(abs(s["interior"] - truth["interior"]))
            modes_ok.append(s["interior_modes"] == truth["interior_modes"])
            comp_ok.append(s["components"] == truth["components"])
        print(f"{name:76s} {draws:5d} {np.mean(mass_err):8.4f} {np.mean(int_err):12.4f} "
              f"{100 * np.mean(modes_ok):16.0f}% {100 * np.mean(comp_ok):12.0f}%", flush=True)

    kl_draws = max(5, draws // 5)
    print()
    print("MIXED DISTRIBUTIONS: KL(P || Q) (analysis.mixed.mixed_kl, n = m = 2000); 'ok' = within"
          " max(10%, 0.05 nats); 'kNN on raw samples' = analysis.kl.kl_divergence with atoms "
          "jittered (what a density estimator reports)")
    print(f"{'setting':56s} {'draws':>5s} {'truth':>6s} {'estimate':>14s} {'ok':>5s} "
          f"{'covered':>7s} {'missing flagged':>15s} {'kNN on raw samples':>19s}")
    for i, (name, p_parts, q_parts) in enumerate(mixed_kl_settings()):
        rng = np.random.default_rng(seed + 8000 + i)
        truth = mixed_kl_truth(p_parts, q_parts)
        est, ok, cov, flagged, raw = [], [], [], [], []
        for _ in range(kl_draws):
            p, q = sample_mixed(rng, 2000, p_parts), sample_mixed(rng, 2000, q_parts)
            r = mixed_kl(p, q)
            est.append(r["kl"])
            cov.append(r["covered_mass"])
            flagged.append(r["missing_mass"] > 0)
            ok.append(abs(r["kl"] - truth) <= max(0.1 * truth, 0.05) if math.isfinite(truth)
                      else False)
            raw.append(kl_divergence(p, q))
        est, raw = np.asarray(est), np.asarray(raw)
        ok_text = f"{100 * np.mean(ok):4.0f}%" if math.isfinite(truth) else "  n/a"
        print(f"{name:56s} {kl_draws:5d} {truth:6.3f} {est.mean():7.3f}+-{est.std():<5.3f} "
              f"{ok_text:>5s} {np.mean(cov):7.2f} {100 * np.mean(flagged):14.0f}% "
              f"{raw.mean():10.2f}+-{raw.std():<6.2f}", flush=True)

    print()
    print("Non-Gaussianity of a distribution with atoms: the interior part's Gaussian-fit KL "
          "(analysis.mixed.interior_gaussian_fit_kl; interior part Gaussian, truth 0) against "
          "analysis.kl.gaussian_fit_kl of all samples (undefined: atoms have no density)")
    gauss_rows = [
        ("1-D: 30% atoms at the bounds + N(0.1, 0.15^2)",
         [FacePart(.2, (-1,)), FacePart(.1, (1,)), FacePart(.7, (0,), ((.1,),), .15)]),
        ("6-D: 40% on 2 corners + N(0, 0.1^2 I)",
         [FacePart(.2, _corner(6)), FacePart(.2, _corner(6, -1)),
          FacePart(.6, (0,) * 6, (np.zeros(6),), .1)]),
    ]
    for i, (name, parts_) in enumerate(gauss_rows):
        rng = np.random.default_rng(seed + 9000 + i)
        inner, whole = [], []
        for _ in range(kl_draws):
            x = sample_mixed(rng, n, parts_)
            inner.append(interior_gaussian_fit_kl(x)[0])
            whole.append(gaussian_fit_kl(x))
        print(f"  {name:56s} interior part {np.mean(inner):6.3f} +- {np.std(inner):.3f}   "
              f"all samples {np.mean(whole):7.2f} +- {np.std(whole):.2f}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.calibration",
                                 description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer draws (about a minute)")
    ap.add_argument("--draws", type=int, default=None,
                    help="draws per mode setting (default 100, quick 20); KL uses a fifth")
    ap.add_argument("--seed", type=int, default=20240,
                    help="base seed (the mode, KL and mixed tables use seed, seed + 1, seed + 2)")
    ap.add_argument("--only", choices=("modes", "kl", "mixed"), default=None,
                    help="print only this table (default: all three)")
    return ap


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    draws = args.draws or (20 if args.quick else 100)
    t0 = time.perf_counter()
    if args.only in (None, "modes"):
        mode_tables(draws, args.seed)
        print()
    if args.only in (None, "kl"):
        kl_tables(max(5, draws // 5), args.seed + 1)
        print()
    if args.only in (None, "mixed"):
        mixed_tables(draws, args.seed + 2)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
