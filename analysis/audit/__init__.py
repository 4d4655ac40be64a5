"""Multimodality audit: how the agents' action distributions at the probe states split between
the bounds of the action box and its interior, how many modes the interior has, how far it is
from Gaussian, how the algorithms differ, and (on the toy bandits, whose optima are known) which
optima they cover. docs/audit.md explains every measure, its accuracy and the tables' columns.

One module per concern: :mod:`.load` reads the runs through the run manifest, :mod:`.measure`
measures one probe state, :mod:`.tables` builds the tables (means over seeds with rliable's
bootstrap intervals; the column lists ``MODES_COLUMNS``, ``SUMMARY_COLUMNS``, ``BOUND_COLUMNS``,
``KL_COLUMNS``, ``RUN_COLUMNS``, ``toy_columns`` and ``sweep_columns`` live there), :mod:`.plots`
draws the figures from those tables, :mod:`.cli` runs it all.

Both distributions every run samples are audited side by side (column ``distribution``):
``policy``, the learned sampler without exploration noise, and ``behaviour``, the actions as the
agent explores. Only runs with status ``complete`` are measured; every other listed run
(diverged, running, failed, missing, invalid) keeps a row with its status and the reason, and
never stops the audit. A task's known optima come from its runs' ``config.json`` (``env.optima``).

Tables: ``modes.csv`` (per run, distribution and probe state), ``modes_summary.csv`` (per algo,
task and distribution), ``bound_mass.csv`` (per action dimension), ``kl.csv`` (to a Gaussian fit
and between algorithms), ``toy_optima.csv`` (per run of a toy task), ``audit_runs.csv`` (per run
and distribution: status, whether it learned, and each measure's mean over the probe states) and
``<sweep>.csv`` for every sweep of the manifest; each with a provenance sidecar. Figures: ``mode_counts``, ``bound_mass``,
``kl_divergence``, ``action_histograms``, ``toy_optima`` and one per sweep.

    python -m analysis.audit --manifest results/tables/run_manifest.json --tables results/tables \
        --figures results/figures [--distributions policy behaviour] [--histogram-states 3] \
        [--reps 2000] [--seed 0] [--kl-samples 1000]
"""
from analysis.audit.cli import ROLES, main, run_audit
from analysis.audit.load import (DISTRIBUTION_TEXT, DISTRIBUTIONS, RunEntry, load_entries,
                                 task_optima)
from analysis.audit.measure import (DEFAULT_KL_SAMPLES, between_kl, interior_gaussian_kl,
                                    is_point_mass, state_measures, subsample)
from analysis.audit.plots import FIGURE_NAMES
from analysis.audit.tables import (BOUND_COLUMNS, KL_COLUMNS, LEARNED_THRESHOLD, MODES_COLUMNS,
                                   RUN_COLUMNS, SUMMARY_COLUMNS, SWEEP_COLUMNS, TABLE_NAMES, TOY_MIN_SHARE,
                                   TOY_RADIUS, bound_mass_table, kl_table, learned,
                                   measure_entries, modes_summary, modes_table, run_table,
                                   sweep_columns, sweep_table, toy_columns, toy_table)

__all__ = ["ROLES", "main", "run_audit", "DISTRIBUTION_TEXT", "DISTRIBUTIONS",
           "RunEntry", "load_entries", "task_optima", "DEFAULT_KL_SAMPLES", "between_kl",
           "interior_gaussian_kl", "is_point_mass", "state_measures", "subsample",
           "FIGURE_NAMES", "BOUND_COLUMNS", "KL_COLUMNS", "LEARNED_THRESHOLD", "MODES_COLUMNS",
           "RUN_COLUMNS", "run_table",
           "SUMMARY_COLUMNS", "SWEEP_COLUMNS", "TABLE_NAMES", "TOY_MIN_SHARE", "TOY_RADIUS",
           "bound_mass_table", "kl_table", "learned", "measure_entries", "modes_summary",
           "modes_table", "sweep_columns", "sweep_table", "toy_columns", "toy_table"]
