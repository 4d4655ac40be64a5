"""Multimodality audit: how many modes the agents' action distributions have at the probe states,
how far they are from Gaussian, how they differ between algorithms, and (on tasks with known
optimal actions, the toy bandits) which optima they cover.

One module per concern: :mod:`.load` reads the runs, :mod:`.measure` measures one probe state,
:mod:`.tables` builds the tables (means over seeds with intervals), :mod:`.plots` draws the
figures, :mod:`.cli` runs it all (``python -m analysis.audit``).

The runs are the benchmark and audit runs listed in the run manifest (``--manifest``), each read
through the contract validator (:func:`analysis.manifest.load_entry`).  Only runs with status
``complete`` are audited; every other listed run (diverged, running, failed, missing, or
``invalid``: it breaks the run-directory contract) is still listed in ``modes.csv``,
``modes_summary.csv`` (``n_skipped``) and ``toy_optima.csv`` with its status and the reason, and
never stops the audit.  A task's known optima are read from its runs' ``config.json``
(``env.optima``); the task's name plays no part.

The audited distribution is chosen with ``--distribution`` (default ``policy``, as in the
pipeline config's ``audit.distribution``):

* ``policy``: the learned policy without exploration noise (TD3's is a point mass);
* ``behaviour``: the actions as the agent explores (QSM sampler + N(0, 0.1), SAC tanh-Gaussian
  sample, TD3 mu + N(0, 0.1), clipped to [-1, 1]).

Tables (``--tables``), each with a provenance sidecar ``<name>.provenance.json``
-------------------------------------------------------------------------------
``modes.csv``: one row per (run, probe state); a run that was not audited has one row with an
empty ``state``.  Columns: ``algo, task, seed, state`` (probe-state index), ``n_modes``
(``analysis.modes.mode_summary``), ``n_bound_modes`` (modes that sit at an action bound, its
``n_bound_modes``), ``status`` (run status), ``kl_gaussian_fit`` (KL(samples || Gaussian fitted to
them) at that state, :func:`analysis.kl.gaussian_fit_kl`; NaN for a point mass), ``detail`` (why
a run or state has no numbers).

``modes_summary.csv``: one row per (algo, task).  ``n_seeds`` audited seeds, ``n_states`` probe
states per seed, ``mean_modes`` = mean over seeds of the per-seed mean mode count over probe states,
``ci_low, ci_high`` its 95% bootstrap interval over seeds, ``frac_multimodal`` = same for the
fraction of probe states with more than one mode (``frac_ci_low, frac_ci_high``),
``mean_bound_modes`` mean number of modes at the bounds, ``true_modes`` the number of known optima
(NaN for tasks without), ``n_skipped`` runs of this (algo, task) that were not audited, ``note``.
Beside the mass on the bounds (``mass_any_bound``), ``score_target_rms`` (with ``_ci_low,
_ci_high``): the mean over seeds of each seed's end-of-training RMS of the score target
M_q·dQ/da from its ``metrics.csv`` (:mod:`analysis.training_metrics`; the sampler's own noise has
RMS 1), empty for algorithms that do not log a score target.

``kl.csv``: ``kind`` is ``gaussian_fit`` (KL(algo || Gaussian fitted to it), ``other_algo`` empty)
or ``between_algos`` (KL(algo || other_algo) at the same probe states and seed).  Per seed the
estimate is the mean over probe states; ``estimate`` is the mean over seeds, ``ci_low, ci_high``
its 95% bootstrap interval over seeds, ``n_seeds`` the seeds with a finite estimate (for
between_algos: among the seeds audited for both algorithms), ``n_states`` finite state estimates
used, ``note`` (point masses, atoms, failed estimates, few seeds).

``toy_optima.csv``: one row per run of a task with known optima, samples pooled over the probe
states (the context does not move the optima).  ``n_samples``, ``optima`` (their locations, in the
order of the ``frac_opt<k>`` columns), ``frac_opt1 ..`` fraction of samples within Euclidean
distance ``TOY_RADIUS`` = 0.15 of optimum k (one column per optimum of the task with the most
optima; NaN where a task has fewer), ``frac_near_any``, ``optima_covered`` = optima with at least
``TOY_MIN_SHARE`` = 5% of the samples, ``true_modes``, ``n_modes_median`` / ``n_modes_mean`` = the
mode counter's count over the probe states, ``status``, ``detail``.

Intervals
---------
Seeds are the unit of replication: per (algo, task) each seed gives one number (its mean over
probe states) and the interval is rliable's percentile bootstrap of the mean over seeds
(:func:`analysis.stats.bootstrap_mean_ci`, the engine of every interval in the analysis):
``--reps`` resamples, NumPy's global generator seeded with ``--seed`` before every row, so each
row is reproducible on its own.  With one seed the interval is NaN (the note says so); with 2-3
seeds it is coarse (few distinct resampled means) and the note says that too.

Samples
-------
Mode counting uses every sample.  The kNN KL estimates use at most ``--kl-samples`` (default
1000) samples per distribution, a fixed random subset (drawn from ``--seed`` and the run, state
and algorithm) where there are more; ``--seed`` is also passed to :mod:`analysis.kl` (its
bias-correction references and jitter).  Running time: docs/performance.md.

Special distributions
---------------------
* A deterministic point mass (every sample identical, e.g. TD3's ``policy``) has no density: its
  KL entries (to its Gaussian fit and to or from any other algorithm) are NaN with a note and are
  left out of the means; its mode count is 1.
* Repeated samples that are not a point mass (an atom, e.g. actions clipped exactly to a bound in
  1-D) make the true KL infinite; :mod:`analysis.kl` jitters them by 1e-6 and returns a large
  finite value.  Those estimates are kept, and the note column says at how many states it
  happened.

Sweeps: for every sweep of the manifest (config ``sweeps``; the runs whose role is its name),
``<name>.csv`` and the figure ``<name>``: per (algo, task, value, distribution) the final return,
interior modes, mass on the bounds and in the corners, optima covered and the score target's
scale, means over seeds with intervals (:func:`sweep_table`; the value's column is named after
the swept hyperparameter, e.g. ``M_q``), ``true_modes``, ``n_learned``, ``n_skipped``, ``note``.

Figures (``--figures``, PNG and PDF): ``mode_counts``, ``bound_mass``, ``kl_divergence``,
``action_histograms``, ``toy_optima``, and one per sweep.

Command line
------------
::

    python -m analysis.audit --manifest results/tables/run_manifest.json --tables results/tables \\
        --figures results/figures [--distributions policy] [--histogram-states 3] \\
        [--reps 2000] [--seed 0] [--kl-samples 1000]
"""
from analysis.audit.cli import ROLES, main, run_audit
from analysis.audit.load import (DISTRIBUTION_TEXT, DISTRIBUTIONS, RunEntry, load_entries,
                                 task_optima)
from analysis.audit.measure import (DEFAULT_KL_SAMPLES, between_kl, interior_gaussian_kl,
                                    is_point_mass, state_measures, subsample)
from analysis.audit.plots import FIGURE_NAMES
from analysis.audit.tables import (BOUND_COLUMNS, KL_COLUMNS, LEARNED_THRESHOLD, MODES_COLUMNS,
                                   SUMMARY_COLUMNS, SWEEP_COLUMNS, TABLE_NAMES, TOY_MIN_SHARE,
                                   TOY_RADIUS, bound_mass_table, kl_table, learned,
                                   measure_entries, modes_summary, modes_table, sweep_columns,
                                   sweep_table, toy_columns, toy_table)

__all__ = ["ROLES", "main", "run_audit", "DISTRIBUTION_TEXT", "DISTRIBUTIONS",
           "RunEntry", "load_entries", "task_optima", "DEFAULT_KL_SAMPLES", "between_kl",
           "interior_gaussian_kl", "is_point_mass", "state_measures", "subsample",
           "FIGURE_NAMES", "BOUND_COLUMNS", "KL_COLUMNS", "LEARNED_THRESHOLD", "MODES_COLUMNS",
           "SUMMARY_COLUMNS", "SWEEP_COLUMNS", "TABLE_NAMES", "TOY_MIN_SHARE", "TOY_RADIUS",
           "bound_mass_table", "kl_table", "learned", "measure_entries", "modes_summary",
           "modes_table", "sweep_columns", "sweep_table", "toy_columns", "toy_table"]
