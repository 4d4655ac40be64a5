"""Calibration of ``analysis.modes`` and ``analysis.kl`` on distributions whose truth is known.

Run ``python -m analysis.calibration`` (``--quick`` for fewer draws; running times in
docs/performance.md) to print the tables quoted in the README.  The sample generators defined
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
import time

import numpy as np
from scipy import integrate, stats
from scipy.optimize import brentq

from analysis.kl import gaussian_fit_kl, gaussian_kl, kl_divergence
from analysis.modes import mode_summary

__all__ = ["random_rotation", "sample_mixture", "sample_unimodal", "sample_tanh_gaussian",
           "sample_clipped_mixture", "random_gaussian_pair", "mode_accuracy", "main"]


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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer draws (about a minute)")
    ap.add_argument("--draws", type=int, default=None,
                    help="draws per mode setting (default 100, quick 20); KL uses a fifth")
    ap.add_argument("--seed", type=int, default=20240)
    ap.add_argument("--only", choices=("modes", "kl"), default=None)
    args = ap.parse_args(argv)
    draws = args.draws or (20 if args.quick else 100)
    t0 = time.perf_counter()
    if args.only in (None, "modes"):
        mode_tables(draws, args.seed)
        print()
    if args.only in (None, "kl"):
        kl_tables(max(5, draws // 5), args.seed + 1)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
