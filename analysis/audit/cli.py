"""The audit command: read the runs, measure, tabulate, draw; every output with its provenance."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from analysis.audit.load import (AUDIT_ROLES, DEFAULT_DISTRIBUTION, DISTRIBUTIONS,
                                 load_entries)
from analysis.audit.measure import DEFAULT_KL_SAMPLES
from analysis.audit.plots import (plot_action_histograms, plot_kl, plot_mode_counts,
                                  plot_toy_optima)
from analysis.audit.tables import kl_table, modes_summary, modes_table, toy_table
from analysis.manifest import load_manifest
from analysis.outputs import write_table
from analysis.provenance import Provenance
from analysis.stats import DEFAULT_REPS, DEFAULT_SEED

MODULE = "analysis.audit"
FLOAT_FORMAT = "%.6g"


def run_audit(manifest, tables, figures, distribution=DEFAULT_DISTRIBUTION, histogram_states=3,
              reps=DEFAULT_REPS, seed=DEFAULT_SEED, kl_samples=DEFAULT_KL_SAMPLES, log=None):
    """Compute every table and figure; return the list of written paths."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    if not hasattr(manifest, "runs"):
        manifest = load_manifest(manifest)
    entries = load_entries(manifest, distribution)
    prov = Provenance.of(manifest, AUDIT_ROLES, MODULE).with_status(
        {e.path: e.status for e in entries})
    n_ok = sum(e.audited for e in entries)
    log(f"audit: {len(entries)} runs listed in {manifest.source}, {n_ok} audited "
        f"({distribution} distribution)")
    for e in entries:
        if not e.audited:
            log(f"  not audited: {e.algo}/{e.task}/seed{e.seed} [{e.status}] {e.detail}")
    modes_df = modes_table(entries, kl_samples=kl_samples, seed=seed)
    log(f"audit: mode counts and Gaussian KL done ({time.perf_counter() - t0:.1f} s)")
    summary = modes_summary(modes_df, entries, reps=reps, seed=seed)
    kl_df = kl_table(entries, modes_df, reps=reps, seed=seed, kl_samples=kl_samples)
    log(f"audit: between-algorithm KL done ({time.perf_counter() - t0:.1f} s)")
    toy_df = toy_table(entries, modes_df)
    tables = Path(tables)
    audited = {e.path for e in entries if e.audited}
    with_optima = {e.path for e in entries if e.audited and e.optima is not None}
    paths = [write_table(tables / name, df, prov, used, float_format=FLOAT_FORMAT)
             for name, df, used in (("modes.csv", modes_df, audited),
                                    ("modes_summary.csv", summary, audited),
                                    ("kl.csv", kl_df, audited),
                                    ("toy_optima.csv", toy_df, with_optima))]
    paths += plot_mode_counts(summary, modes_df, entries, distribution, figures, prov)
    paths += plot_kl(kl_df, entries, distribution, figures, prov)
    paths += plot_action_histograms(entries, distribution, figures, prov, histogram_states)
    paths += plot_toy_optima(entries, toy_df, distribution, figures, prov, seed=seed)
    log(f"audit: wrote {len(paths)} files in {time.perf_counter() - t0:.1f} s")
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m analysis.audit",
                                 description="Multimodality audit of the probe-state action "
                                             "samples: mode counts, KL estimates, toy optima.")
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json: the runs to audit (analysis/manifest.py)")
    ap.add_argument("--tables", required=True, help="folder for the CSV tables")
    ap.add_argument("--figures", required=True, help="folder for the PNG/PDF figures")
    ap.add_argument("--distribution", choices=DISTRIBUTIONS, default=DEFAULT_DISTRIBUTION,
                    help=f"which probe samples to audit (default: {DEFAULT_DISTRIBUTION}, as in "
                         f"the pipeline config)")
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
    args = ap.parse_args(argv)
    run_audit(args.manifest, args.tables, args.figures, distribution=args.distribution,
              histogram_states=args.histogram_states, reps=args.reps, seed=args.seed,
              kl_samples=args.kl_samples)
    return 0
