"""The audit command: read the runs, measure, tabulate, draw; every output with its provenance."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from analysis.audit.load import AUDIT_ROLES, DISTRIBUTIONS, SWEEP_ROLE, load_entries
from analysis.audit.measure import DEFAULT_KL_SAMPLES
from analysis.audit.plots import (plot_action_histograms, plot_bound_mass, plot_kl,
                                  plot_mode_counts, plot_mq_sweep, plot_toy_optima)
from analysis.audit.tables import (bound_mass_table, kl_table, measure_entries, modes_summary,
                                   modes_table, sweep_table, toy_table)
from analysis.manifest import load_manifest
from analysis.outputs import write_table
from analysis.provenance import Provenance
from analysis.stats import DEFAULT_REPS, DEFAULT_SEED
from qsm.cli import HelpFormatter

MODULE = "analysis.audit"
FLOAT_FORMAT = "%.6g"
#: The manifest's roles the audit reads: benchmark and audit runs, and the M_q sweep's.
ROLES = AUDIT_ROLES + (SWEEP_ROLE,)


def run_audit(manifest, tables, figures, distributions=DISTRIBUTIONS, histogram_states=3,
              reps=DEFAULT_REPS, seed=DEFAULT_SEED, kl_samples=DEFAULT_KL_SAMPLES, log=None):
    """Compute every table and figure; return the list of written paths."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    if not hasattr(manifest, "runs"):
        manifest = load_manifest(manifest)
    entries = load_entries(manifest, distributions)
    sweep = load_entries(manifest, distributions, roles=(SWEEP_ROLE,))
    prov = Provenance.of(manifest, ROLES, MODULE).with_status(
        {e.path: e.status for e in entries + sweep})
    n_ok = len({e.path for e in entries if e.audited})
    log(f"audit: {len({e.path for e in entries})} runs listed in {manifest.source}, {n_ok} "
        f"audited ({', '.join(distributions)}); M_q sweep: {len({e.path for e in sweep})} runs")
    for e in {e.path: e for e in entries + sweep if not e.audited}.values():
        log(f"  not audited: {e.algo}/{e.task}/seed{e.seed} ({e.role}) [{e.status}] {e.detail}")
    measured = measure_entries(entries, kl_samples=kl_samples, seed=seed)
    measure_entries(sweep, kl_samples=kl_samples, seed=seed, measured=measured)  # reuses runs
    log(f"audit: bound masses, modes and interior Gaussian KL done "
        f"({time.perf_counter() - t0:.1f} s)")
    modes_df = modes_table(entries, measured)
    summary = modes_summary(entries, measured, reps=reps, seed=seed)
    bounds_df = bound_mass_table(entries, measured, reps=reps, seed=seed)
    kl_df = kl_table(entries, measured, reps=reps, seed=seed, kl_samples=kl_samples)
    log(f"audit: between-algorithm KL done ({time.perf_counter() - t0:.1f} s)")
    toy_df = toy_table(entries, measured)
    sweep_df = sweep_table(sweep, measured, reps=reps, seed=seed)
    tables = Path(tables)
    audited = {e.path for e in entries if e.audited}
    with_optima = {e.path for e in entries if e.audited and e.optima is not None}
    swept = {e.path for e in sweep if e.audited}
    paths = [write_table(tables / name, df, prov, used, float_format=FLOAT_FORMAT)
             for name, df, used in (("modes.csv", modes_df, audited),
                                    ("modes_summary.csv", summary, audited),
                                    ("bound_mass.csv", bounds_df, audited),
                                    ("kl.csv", kl_df, audited),
                                    ("toy_optima.csv", toy_df, with_optima),
                                    ("mq_sweep.csv", sweep_df, swept))]
    paths += plot_mode_counts(summary, entries, measured, figures, prov)
    paths += plot_bound_mass(summary, entries, measured, figures, prov)
    paths += plot_kl(kl_df, entries, figures, prov)
    paths += plot_action_histograms(entries, figures, prov, histogram_states)
    paths += plot_toy_optima(entries, toy_df, figures, prov, seed=seed)
    paths += plot_mq_sweep(sweep_df, sweep, figures, prov)
    log(f"audit: wrote {len(paths)} files in {time.perf_counter() - t0:.1f} s")
    return paths


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.audit",
                                 description="Multimodality audit of the probe-state action "
                                             "samples: mass on the bounds, interior modes, KL "
                                             "estimates, known optima, the M_q sweep.",
                                 formatter_class=HelpFormatter)
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json: the runs to audit (analysis/manifest.py)")
    ap.add_argument("--tables", required=True, help="folder for the CSV tables")
    ap.add_argument("--figures", required=True, help="folder for the PNG/PDF figures")
    ap.add_argument("--distributions", nargs="+", choices=DISTRIBUTIONS,
                    default=list(DISTRIBUTIONS),
                    help="probe samples to audit (default: both, side by side)")
    ap.add_argument("--histogram-states", type=int, default=3,
                    help="probe states shown in action_histograms (default: 3)")
    ap.add_argument("--reps", type=int, default=DEFAULT_REPS,
                    help=f"bootstrap resamples of the seeds (default: {DEFAULT_REPS})")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED,
                    help=f"seed of the bootstrap and subsampling generators "
                         f"(default: {DEFAULT_SEED})")
    ap.add_argument("--kl-samples", type=int, default=DEFAULT_KL_SAMPLES,
                    help=f"at most this many samples per distribution in the kNN KL estimates "
                         f"(default: {DEFAULT_KL_SAMPLES})")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    run_audit(args.manifest, args.tables, args.figures, distributions=args.distributions,
              histogram_states=args.histogram_states, reps=args.reps, seed=args.seed,
              kl_samples=args.kl_samples)
    return 0
