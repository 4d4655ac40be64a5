"""Calibration of the mode counter and the KL estimators (analysis.estimators.modes,
analysis.estimators.kl, analysis.estimators.mixed) on distributions whose truth is known
(analysis/estimators/synthetic.py): the accuracy tables quoted in docs/audit.md, printed and, with
--out DIR, written as CSV.

    python benchmarks/calibration.py [--quick] [--only modes|kl|mixed] [--out results/calibration]

Running times: docs/performance.md.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import integrate, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout
from analysis.estimators.kl import gaussian_fit_kl, gaussian_kl, kl_divergence  # noqa: E402
from analysis.estimators.modes import mode_summary  # noqa: E402
from analysis.estimators.synthetic import (FacePart, corner, mixed_kl_settings,  # noqa: E402
                                           mixed_kl_truth, mixed_mode_settings,
                                           random_gaussian_pair, sample_clipped_mixture,
                                           sample_gaussian, sample_mixed, sample_mixture,
                                           sample_tanh_gaussian, sample_unimodal)
from qsm.declare.cli import HelpFormatter  # noqa: E402

#: table name -> rows (dicts), filled as the tables print; written as CSV by --out
TABLES: dict[str, list[dict]] = {}


def record(table: str, **row) -> None:
    TABLES.setdefault(table, []).append(row)


def write_tables(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in TABLES.items():
        with open(out / f"{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {out / name}.csv ({len(rows)} rows)")


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
    print("MODE COUNTING (analysis.estimators.modes.count_modes, defaults)")
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
        record("mode_counting", setting=name, n=n, d=d, truth=truth, draws=dr, correct=acc,
               counts_seen=_hist(hist), seconds_per_call=sec)
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
        for sep, f in zip(seps, fr):
            record("mode_separation", d=d, separation=sep, counted_two=f)
        print(f"{d:3d} " + " ".join(f"{100 * f:5.0f}%" for f in fr))


def kl_tables(draws: int, seed: int) -> None:
    print("KL BETWEEN GAUSSIANS (analysis.estimators.kl.kl_divergence, defaults, n = m = 2000)")
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
                    a, b = sample_gaussian(rng, mu0, c0, 2000), sample_gaussian(rng, mu1, c1, 2000)
                    err.append(kl_divergence(a, b, bounds=None) / target - 1)
                    raw.append(kl_divergence(a, b, bounds=None, bias_correction=False) / target - 1)
                    plug.append(gaussian_kl(a.mean(0), np.cov(a.T).reshape(d, d), b.mean(0),
                                            np.cov(b.T).reshape(d, d)) / target - 1)
                err, plug, raw = map(np.asarray, (err, plug, raw))
                all_err.extend(err)
                record("kl_gaussians", kind=kind, d=d, kl=target, draws=draws,
                       mean_rel_error=err.mean(), rms_rel_error=np.sqrt(np.mean(err ** 2)),
                       max_abs_rel_error=np.abs(err).max(), within_10pct=np.mean(np.abs(err) <= 0.1),
                       plugin_rms_rel_error=np.sqrt(np.mean(plug ** 2)),
                       uncorrected_mean_rel_error=raw.mean())
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
        e = np.array([kl_divergence(sample_gaussian(rng, np.zeros(d), np.eye(d), 2000),
                                    sample_gaussian(rng, np.zeros(d), np.eye(d), 2000), bounds=None)
                      for _ in range(draws)])
        record("kl_self", d=d, draws=draws, mean=e.mean(), max_abs=np.abs(e).max())
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
        record("kl_non_gaussian", setting=name.strip(), draws=n_draws, truth=truth,
               mean=v.mean(), sd=v.std())
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
                   np.tanh(sample_gaussian(rng, np.zeros(d), s0, 2000)),
                   np.tanh(sample_gaussian(rng, np.zeros(d), scale * s0, 2000))), nd)
    for loc, sd in ((0.0, 2.0), (0.5, 0.7)):
        qd = lambda x, loc=loc, sd=sd: stats.norm.pdf(x, loc, sd)  # noqa: E731
        truth = integrate.quad(lambda x: pm(x) * np.log(pm(x) / qd(x)), -10, 10, limit=200)[0]
        report(f"kl_divergence, 1-D bimodal p || N({loc}, {sd}^2), n=m=2000", truth,
               lambda loc=loc, sd=sd: kl_divergence(mix(2000), rng.normal(loc, sd, (2000, 1))), nd)
        report("  same, bias_correction=False", truth,
               lambda loc=loc, sd=sd: kl_divergence(mix(2000), rng.normal(loc, sd, (2000, 1)),
                                                    bias_correction=False), nd)


def mixed_tables(draws: int, seed: int) -> None:
    from analysis.estimators.mixed import interior_gaussian_fit_kl, mixed_kl, mixed_summary
    n = 1000
    print("MIXED DISTRIBUTIONS: bound masses and modes (analysis.estimators.mixed.mixed_summary,"
          " n = 1000)")
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
        record("mixed_modes", setting=name, d=d, draws=draws, bound_mass_error=np.mean(mass_err),
               interior_error=np.mean(int_err), interior_modes_right=np.mean(modes_ok),
               components_right=np.mean(comp_ok))
        print(f"{name:76s} {draws:5d} {np.mean(mass_err):8.4f} {np.mean(int_err):12.4f} "
              f"{100 * np.mean(modes_ok):16.0f}% {100 * np.mean(comp_ok):12.0f}%", flush=True)

    kl_draws = max(5, draws // 5)
    print()
    print("MIXED DISTRIBUTIONS: KL(P || Q) (analysis.estimators.mixed.mixed_kl, n = m = 2000);"
          " 'ok' = within max(10%, 0.05 nats); 'kNN on raw samples' ="
          " analysis.estimators.kl.kl_divergence with atoms jittered (what a density estimator"
          " reports)")
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
        record("mixed_kl", setting=name, draws=kl_draws, truth=truth, mean=est.mean(),
               sd=est.std(), within=np.mean(ok) if math.isfinite(truth) else math.nan,
               covered_mass=np.mean(cov), missing_flagged=np.mean(flagged),
               raw_knn_mean=raw.mean(), raw_knn_sd=raw.std())
        print(f"{name:56s} {kl_draws:5d} {truth:6.3f} {est.mean():7.3f}+-{est.std():<5.3f} "
              f"{ok_text:>5s} {np.mean(cov):7.2f} {100 * np.mean(flagged):14.0f}% "
              f"{raw.mean():10.2f}+-{raw.std():<6.2f}", flush=True)

    print()
    print("Non-Gaussianity of a distribution with atoms: the interior part's Gaussian-fit KL "
          "(analysis.estimators.mixed.interior_gaussian_fit_kl; interior part Gaussian, truth 0) "
          "against analysis.estimators.kl.gaussian_fit_kl of all samples (undefined: atoms have no "
          "density)")
    gauss_rows = [
        ("1-D: 30% atoms at the bounds + N(0.1, 0.15^2)",
         [FacePart(.2, (-1,)), FacePart(.1, (1,)), FacePart(.7, (0,), ((.1,),), .15)]),
        ("6-D: 40% on 2 corners + N(0, 0.1^2 I)",
         [FacePart(.2, corner(6)), FacePart(.2, corner(6, -1)),
          FacePart(.6, (0,) * 6, (np.zeros(6),), .1)]),
    ]
    for i, (name, parts_) in enumerate(gauss_rows):
        rng = np.random.default_rng(seed + 9000 + i)
        inner, whole = [], []
        for _ in range(kl_draws):
            x = sample_mixed(rng, n, parts_)
            inner.append(interior_gaussian_fit_kl(x)[0])
            whole.append(gaussian_fit_kl(x))
        record("mixed_gaussian_fit", setting=name, draws=kl_draws, interior_mean=np.mean(inner),
               interior_sd=np.std(inner), all_samples_mean=np.mean(whole),
               all_samples_sd=np.std(whole))
        print(f"  {name:56s} interior part {np.mean(inner):6.3f} +- {np.std(inner):.3f}   "
              f"all samples {np.mean(whole):7.2f} +- {np.std(whole):.2f}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python benchmarks/calibration.py",
                                 description=__doc__.splitlines()[0], formatter_class=HelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer draws (about a minute)")
    ap.add_argument("--draws", type=int, default=None,
                    help="draws per mode setting (default 100, quick 20); KL uses a fifth")
    ap.add_argument("--seed", type=int, default=20240,
                    help="base seed (the mode, KL and mixed tables use seed, seed + 1, seed + 2)")
    ap.add_argument("--only", choices=("modes", "kl", "mixed"), default=None,
                    help="print only this table (default: all three)")
    ap.add_argument("--out", type=Path, default=None,
                    help="also write every table as DIR/<table>.csv (default: print only)")
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
    if args.out is not None:
        write_tables(args.out)


if __name__ == "__main__":
    main()
