"""The one bootstrap engine behind every confidence interval of the analysis: pure functions of
arrays, no files, no frames of runs.

Randomness and the bootstrap engine
-----------------------------------
Every confidence interval of the analysis (the aggregates of :mod:`analysis.benchmark.stats`, the
learning-curve bands, the audit's intervals over seeds, the fidelity comparison, the oracle's
table) is rliable's bootstrap, ``rly.get_interval_estimates`` (percentile intervals), called
through :func:`seeded_interval_estimates`.  rliable 1.2.0 draws bootstrap indices from NumPy's
global RNG (``np.random.choice``) and ignores the ``random_state`` argument for that, so every
call is made as ``np.random.seed(seed)`` + a call for ONE algorithm (or one pair, or one row),
and the caller's global RNG state is restored afterwards.  An interval therefore does not depend
on which other algorithms are present, and is reproducible bit for bit.
:func:`seeded_performance_profiles` does the same for ``rly.create_performance_profile``.
:func:`bootstrap_mean_ci` (one number per seed) and :func:`mean_bands` (curves over seeds) are
the same engine on a single task.

The seed-count planner (:func:`seed_count_plan`, :func:`seeds_needed`) asks how wide such an
interval would be with more seeds; it draws with its own seeded NumPy generator, not rliable's.

Python API
----------
``seeded_interval_estimates(score_dict, func, reps, seed, confidence)`` and
``seeded_performance_profiles(score_dict, taus, reps, seed, confidence)``: rliable's, per key;
``aggregate_func`` (the four metrics of :data:`METRICS`), ``iqm_over_steps``,
``mean_over_runs``: the statistics they are called with; ``bootstrap_mean_ci``, ``mean_bands``,
``seed_count_plan``, ``seeds_needed``.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

# arch 7.x (rliable 1.2.0 needs arch<8) fails to import under pandas 3: pandas is pinned <3.
from rliable import library as rly
from rliable import metrics


DEFAULT_REPS = 2000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
#: Order of the values returned by :func:`aggregate_func` (rliable's usual four).
METRICS = ("median", "iqm", "mean", "optimality_gap")
METRIC_LABELS = {"median": "Median", "iqm": "IQM", "mean": "Mean",
                 "optimality_gap": "Optimality gap"}


def aggregate_func(scores):
    """The four aggregate metrics of a (n_runs, n_tasks) matrix, in :data:`METRICS` order."""
    return np.array([metrics.aggregate_median(scores), metrics.aggregate_iqm(scores),
                     metrics.aggregate_mean(scores), metrics.aggregate_optimality_gap(scores)])


def iqm_over_steps(scores):
    """IQM at every step of a (n_runs, n_tasks, n_steps) array."""
    return np.array([metrics.aggregate_iqm(scores[..., j]) for j in range(scores.shape[-1])])


@contextlib.contextmanager
def _global_seed(seed):
    """Seed NumPy's global RNG (which rliable 1.2.0 uses), restoring the caller's state after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def seeded_interval_estimates(score_dict, func, reps=DEFAULT_REPS, seed=DEFAULT_SEED,
                              confidence=CONFIDENCE):
    """``rly.get_interval_estimates`` called once per key, with the global RNG seeded just before.

    Equal, bit for bit, to ``np.random.seed(seed); rly.get_interval_estimates({key: v}, func,
    reps=reps)`` for each key.  Returns (point_estimates, interval_estimates) dicts like rliable.
    """
    return _seeded_per_key(rly.get_interval_estimates, score_dict, seed, func, reps=reps,
                           confidence_interval_size=confidence)


def _seeded_per_key(rly_call, score_dict, seed, *args, **kwargs):
    """`rly_call({key: scores}, *args, **kwargs)` for each key, the global RNG seeded just
    before each call; the two dicts rliable returns, merged over the keys."""
    first, second = {}, {}
    for key, scores in score_dict.items():
        with _global_seed(seed):
            a, b = rly_call({key: scores}, *args, **kwargs)
        first[key], second[key] = a[key], b[key]
    return first, second


def seeded_performance_profiles(score_dict, taus, reps=DEFAULT_REPS, seed=DEFAULT_SEED,
                                confidence=CONFIDENCE):
    """``rly.create_performance_profile`` called once per key, seeded as
    :func:`seeded_interval_estimates`.  Returns (profiles, intervals) dicts like rliable."""
    return _seeded_per_key(rly.create_performance_profile, score_dict, seed, taus, reps=reps,
                           confidence_interval_size=confidence)


def mean_over_runs(scores):
    """Mean over runs (axis 0), flattened: the statistic of the intervals over seeds."""
    return np.mean(scores, axis=0).ravel()


def bootstrap_mean_ci(values, reps=DEFAULT_REPS, seed=DEFAULT_SEED, confidence=CONFIDENCE):
    """(mean, ci_low, ci_high) of the finite values, one per seed (one task): rliable's bootstrap
    through :func:`seeded_interval_estimates`.  NaN interval for fewer than two values."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    if len(v) < 2 or reps < 1:
        return float(v.mean()), math.nan, math.nan
    points, intervals = seeded_interval_estimates({"seeds": v[:, None]}, mean_over_runs, reps,
                                                  seed, confidence)
    return (float(points["seeds"][0]), float(intervals["seeds"][0, 0]),
            float(intervals["seeds"][1, 0]))


def mean_bands(curves, reps=DEFAULT_REPS, seed=DEFAULT_SEED, confidence=CONFIDENCE):
    """Mean over runs at every step, with its interval, of a (n_runs, n_steps) array holding NaN
    where a run has no value (it diverged, or was not evaluated there).

    Steps are grouped by the runs that have a value there; each group is one rectangular block
    and one rliable call.  Returns (mean, ci_low, ci_high, n_runs) arrays over steps; the
    interval is NaN where fewer than two runs have a value."""
    x = np.asarray(curves, dtype=np.float64)
    n_steps = x.shape[1]
    mean, lo, hi = (np.full(n_steps, np.nan) for _ in range(3))
    have = np.isfinite(x)
    count = have.sum(axis=0)
    groups: dict[tuple, list] = {}
    for j in range(n_steps):
        groups.setdefault(tuple(np.flatnonzero(have[:, j])), []).append(j)
    for runs, steps in groups.items():
        if not runs:
            continue
        block = x[np.ix_(runs, steps)]
        mean[steps] = block.mean(axis=0)
        if len(runs) >= 2 and reps >= 1:
            _, intervals = seeded_interval_estimates({"runs": block[:, None, :]}, mean_over_runs,
                                                     reps, seed, confidence)
            lo[steps], hi[steps] = intervals["runs"][0], intervals["runs"][1]
    return mean, lo, hi, count


# ---------------------------------------------------------------------------------------------
# The seed-count planner
# ---------------------------------------------------------------------------------------------

#: Seed counts the planner considers by default.
PLANNER_SEEDS = (3, 5, 10, 20, 30, 50, 100)


def _iqm_last_axis(x):
    """IQM along the last axis (the middle 50% of the sorted values; rliable's trimmed mean)."""
    n = x.shape[-1]
    cut = int(np.floor(0.25 * n))
    return np.sort(x, axis=-1)[..., cut:n - cut].mean(axis=-1)


def _strata(scores) -> list[np.ndarray]:
    """Final scores per task, finite only: a mapping task -> scores, or one sequence (one task)."""
    groups = scores.values() if isinstance(scores, Mapping) else (scores,)
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    return [g[np.isfinite(g)] for g in arrays]


#: Elements one block of imagined experiments may hold (experiments x reps x pooled seeds), so
#: that six tasks at 100 seeds do not need gigabytes at once.
_PLANNER_BLOCK = 4_000_000


def seed_count_plan(x, y=None, *, seeds=PLANNER_SEEDS, margin=None, statistic="iqm",
                    experiments=200, reps=500, seed=DEFAULT_SEED,
                    confidence=CONFIDENCE) -> pd.DataFrame:
    """How wide a 95% interval would be with n seeds per task and algorithm, from the seeds
    observed.

    ``x`` holds one algorithm's final scores: one sequence (one task), or a mapping task ->
    scores, whose tasks are strata as in the analysis (rliable's stratified bootstrap). ``y``
    likewise holds a second algorithm's on the same tasks: then the statistic is the difference
    x - y, each resampled on its own. The observed seeds of a task stand for its population: for
    every n in ``seeds``, ``experiments`` imagined experiments draw n seeds per task with
    replacement from them, and each computes the percentile bootstrap interval (``reps``
    resamples, within each task) of the statistic (``iqm`` or ``mean``) over the pooled seeds of
    all tasks, as the analysis would. A row per n: the median interval width over the
    experiments, its 10th and 90th percentiles; for a difference, ``excludes_zero``, the share of
    experiments whose interval lies on one side of zero (how often n seeds would tell the two
    apart); and, with ``margin``, whether the median width is at most 2 x margin, the width an
    equivalence band of +-margin has (an interval wider than its band can never lie in it, nor
    decide a difference of the size of the margin). The planner draws with its own seeded NumPy
    generator (many small bootstraps, vectorised): its widths are estimates of what rliable's
    intervals would be, not rliable's.
    """
    stat = {"iqm": _iqm_last_axis, "mean": lambda a: a.mean(axis=-1)}[statistic]
    given = (x,) if y is None else (x, y)
    if (len(given) == 2 and all(isinstance(v, Mapping) for v in given)
            and list(x) != list(y)):
        raise ValueError(f"the seed-count planner compares two algorithms on the same tasks, not "
                         f"{sorted(x)} and {sorted(y)}")
    samples = [_strata(v) for v in given]
    if not all(samples):
        raise ValueError("the seed-count planner needs the scores of one task at least")
    if min(len(v) for strata in samples for v in strata) < 2:
        raise ValueError("the seed-count planner needs at least two finite scores per algorithm "
                         "and task")
    if len({len(strata) for strata in samples}) > 1:
        raise ValueError("the seed-count planner compares two algorithms on the same tasks")
    rng = np.random.default_rng(seed)
    tail = (1 - confidence) / 2
    rows = []
    for n in seeds:
        block = max(1, _PLANNER_BLOCK // (reps * n * len(samples[0])))
        low, high = [], []
        for start in range(0, experiments, block):
            size = min(block, experiments - start)
            estimate = 0.0
            for sign, strata in zip((1, -1), samples):
                pooled = []
                for v in strata:                                             # tasks: strata
                    drawn = rng.choice(v, size=(size, n))                    # imagined experiments
                    idx = rng.integers(0, n, size=(size, reps, n))           # their bootstraps
                    pooled.append(np.take_along_axis(drawn[:, None, :].repeat(reps, 1), idx,
                                                     axis=-1))
                estimate = estimate + sign * stat(np.concatenate(pooled, axis=-1))
            lo, hi = np.quantile(estimate, [tail, 1 - tail], axis=1)
            low.append(lo)
            high.append(hi)
        low, high = np.concatenate(low), np.concatenate(high)
        width = high - low
        row = {"n_seeds": int(n), "statistic": statistic if y is None else f"{statistic} difference",
               "width_median": float(np.median(width)),
               "width_p10": float(np.quantile(width, 0.1)),
               "width_p90": float(np.quantile(width, 0.9)),
               "observed_seeds": " / ".join(",".join(str(len(v)) for v in strata)
                                            for strata in samples)}
        if y is not None:
            row["excludes_zero"] = float(np.mean((low > 0) | (high < 0)))
        if margin is not None:
            row["margin"] = float(margin)
            row["decides"] = bool(row["width_median"] <= 2 * margin)
        rows.append(row)
    return pd.DataFrame(rows)


def seeds_needed(plan: pd.DataFrame):
    """The smallest seed count of a :func:`seed_count_plan` (with a margin) from which every
    larger count considered decides too, or None when the largest does not.

    Widths need not shrink at every step at few seeds: the IQM of 3 scores is their mean, of 4
    the mean of the middle two, and imagined experiments drawn from a handful of observed scores
    repeat them, which narrows their bootstraps. A count that decides only by such a dip, with a
    larger one that does not, is not the answer."""
    needed = None
    descending = plan.sort_values("n_seeds", ascending=False)
    for n, decides in zip(descending["n_seeds"], descending["decides"]):
        if not decides:
            break
        needed = int(n)
    return needed
