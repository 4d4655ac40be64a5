"""The audit command: read the runs, measure, tabulate, draw; every output with its provenance."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from analysis.audit.load import AUDIT_ROLES, DISTRIBUTIONS, load_entries
from analysis.audit.measure import DEFAULT_KL_SAMPLES
from analysis.audit.plots import (plot_action_histograms, plot_bound_mass, plot_bound_patterns,
                                  plot_kl, plot_mode_counts, plot_sweep, plot_toy_optima)
from analysis.audit.scale import scale_match_table
from analysis.audit.tables import (bound_mass_table, initial_state_table, kl_table,
                                   measure_entries, modes_summary, modes_table, pattern_table,
                                   run_table, sweep_table, toy_table)
from analysis.estimators.bootstrap import DEFAULT_REPS, DEFAULT_SEED
from analysis.records.manifest import load_manifest
from analysis.records.outputs import write_table
from analysis.records.provenance import Provenance
from qsm.declare.cli import HelpFormatter

MODULE = "analysis.audit"
FLOAT_FORMAT = "%.6g"
#: The manifest's roles the audit reads: benchmark and audit runs, and every sweep's.
ROLES = AUDIT_ROLES


def as_table_value(value):
    """A value as a sweep's table holds it (numbers as floats, widths as JSON text); None stays."""
    if value is None or isinstance(value, bool):
        return value
    return float(value) if isinstance(value, (int, float)) else json.dumps(value)


def run_audit(manifest, tables, figures, distributions=DISTRIBUTIONS, histogram_states=3,
              reps=DEFAULT_REPS, seed=DEFAULT_SEED, kl_samples=DEFAULT_KL_SAMPLES, log=None):
    """Compute every table and figure; return the list of written paths."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    if not hasattr(manifest, "runs"):
        manifest = load_manifest(manifest)
    entries = load_entries(manifest, distributions)
    sweeps = {name: load_entries(manifest, distributions, roles=(name,), hparam=spec["hparam"])
              for name, spec in manifest.sweeps.items()}
    swept_entries = [e for entries_of in sweeps.values() for e in entries_of]
    prov = Provenance.of(manifest, ROLES + tuple(sweeps), MODULE).with_status(
        {e.path: e.status for e in entries + swept_entries})
    n_ok = len({e.path for e in entries if e.audited})
    log(f"audit: {len({e.path for e in entries})} runs listed in {manifest.source}, {n_ok} "
        f"audited ({', '.join(distributions)}); sweeps: "
        + (", ".join(f"{n} {len({e.path for e in es})} runs" for n, es in sweeps.items())
           or "none"))
    for e in {e.path: e for e in entries + swept_entries if not e.audited}.values():
        log(f"  not audited: {e.algo}/{e.task}/seed{e.seed} ({e.role}) [{e.status}] {e.detail}")
    measured = measure_entries(entries, kl_samples=kl_samples, seed=seed)
    measure_entries(swept_entries, kl_samples=kl_samples, seed=seed, measured=measured)  # reuses runs
    log(f"audit: bound masses, modes and interior Gaussian KL done "
        f"({time.perf_counter() - t0:.1f} s)")
    modes_df = modes_table(entries, measured)
    summary = modes_summary(entries, measured, reps=reps, seed=seed)
    bounds_df = bound_mass_table(entries, measured, reps=reps, seed=seed)
    kl_df = kl_table(entries, measured, reps=reps, seed=seed, kl_samples=kl_samples)
    log(f"audit: between-algorithm KL done ({time.perf_counter() - t0:.1f} s)")
    toy_df = toy_table(entries, measured)
    runs_df = run_table(entries + swept_entries, measured)
    patterns_df = pattern_table(entries, measured)
    initial_df = initial_state_table(entries, measured)
    scale_df = scale_match_table(entries + swept_entries, reps=reps, seed=seed)
    log(f"audit: bound patterns and the scale match done "
        f"({time.perf_counter() - t0:.1f} s)")
    tables = Path(tables)
    audited = {e.path for e in entries if e.audited}
    with_optima = {e.path for e in entries if e.audited and e.optima is not None}
    all_audited = audited | {e.path for e in swept_entries if e.audited}
    paths = [write_table(tables / name, df, prov, used, float_format=FLOAT_FORMAT)
             for name, df, used in (("modes.csv", modes_df, audited),
                                    ("modes_summary.csv", summary, audited),
                                    ("bound_mass.csv", bounds_df, audited),
                                    ("kl.csv", kl_df, audited),
                                    ("toy_optima.csv", toy_df, with_optima),
                                    ("audit_runs.csv", runs_df, all_audited),
                                    ("bound_patterns.csv", patterns_df, audited),
                                    ("initial_state.csv", initial_df, audited),
                                    ("scale_match.csv", scale_df, all_audited))]
    # the figures draw the tables (and two of them the probe samples themselves)
    runs = runs_df[runs_df["role"].isin(AUDIT_ROLES)]
    paths += plot_mode_counts(summary, runs, figures, prov)
    paths += plot_bound_mass(summary, runs, figures, prov)
    paths += plot_kl(kl_df, runs, figures, prov)
    paths += plot_action_histograms(entries, runs, figures, prov, histogram_states)
    paths += plot_toy_optima(entries, runs, toy_df, figures, prov, seed=seed)
    paths += plot_bound_patterns(summary, runs, figures, prov)
    for name, swept in sweeps.items():  # one table and one figure per sweep, named after it
        spec = manifest.sweeps[name]
        sweep_df = sweep_table(swept, measured, hparam=spec["hparam"], reps=reps, seed=seed)
        sweep_prov = Provenance.of(manifest, (name,), MODULE).with_status(
            {e.path: e.status for e in swept})
        paths.append(write_table(tables / f"{name}.csv", sweep_df, sweep_prov,
                                 {e.path for e in swept if e.audited},
                                 float_format=FLOAT_FORMAT))
        paths += plot_sweep(sweep_df, runs_df[runs_df["role"] == name], figures, sweep_prov,
                            name=name,
                            hparam=spec["hparam"], values=spec.get("values", ()),
                            default=as_table_value(spec.get("default")))
    log(f"audit: wrote {len(paths)} files in {time.perf_counter() - t0:.1f} s")
    return paths


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.audit",
                                 description="Multimodality audit of the probe-state action "
                                             "samples: mass on the bounds, interior modes, KL "
                                             "estimates, known optima, and a table and figure per sweep.",
                                 formatter_class=HelpFormatter)
    ap.add_argument("--manifest", required=True,
                    help="run_manifest.json: the runs to audit (analysis/records/manifest.py)")
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
