"""Tests of analysis.estimators.bootstrap, the one bootstrap engine behind every interval of the
analysis: rliable called once per key under a seeded global RNG, the intervals over seeds and along
curves, and the seed-count planner."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics

from analysis.estimators.bootstrap import (METRIC_LABELS, METRICS, aggregate_func,
                                           bootstrap_mean_ci, iqm_over_steps, mean_bands,
                                           mean_over_runs, seed_count_plan,
                                           seeded_interval_estimates, seeded_performance_profiles,
                                           seeds_needed)

REPS = 200


def _matrices():
    rng = np.random.default_rng(7)
    return {"A": np.clip(0.8 + 0.05 * rng.standard_normal((5, 4)), 0, 1),
            "B": np.clip(0.5 + 0.05 * rng.standard_normal((5, 4)), 0, 1),
            "C": np.clip(0.2 + 0.05 * rng.standard_normal((3, 4)), 0, 1)}


def _curves():
    return {a: np.stack([m * f for f in (0.0, 0.5, 1.0)], axis=-1) for a, m in _matrices().items()}


def _same(x, y):
    return all(np.array_equal(x[k], y[k]) for k in x) and x.keys() == y.keys()


# ---------------------------------------------------------------------------------------------
# rliable, seeded per key
# ---------------------------------------------------------------------------------------------

def test_the_statistics_are_rliables():
    m = _matrices()["A"]
    assert METRICS == tuple(METRIC_LABELS) == ("median", "iqm", "mean", "optimality_gap")
    assert aggregate_func(m).tolist() == [metrics.aggregate_median(m), metrics.aggregate_iqm(m),
                                          metrics.aggregate_mean(m),
                                          metrics.aggregate_optimality_gap(m)]
    curves = _curves()["A"]
    assert iqm_over_steps(curves).tolist() == [metrics.aggregate_iqm(curves[..., j])
                                               for j in range(3)]
    assert mean_over_runs(curves).tolist() == curves.mean(axis=0).ravel().tolist()


@pytest.mark.parametrize("scores,func", [(_matrices(), aggregate_func),
                                         (_curves(), iqm_over_steps),
                                         ({"pair": [_matrices()["A"], _matrices()["C"]]},
                                          metrics.probability_of_improvement)])
def test_intervals_equal_rliables_under_the_same_global_seed(scores, func):
    """Equal, bit for bit, to np.random.seed(seed) + rly.get_interval_estimates for each key."""
    points, intervals = seeded_interval_estimates(scores, func, reps=REPS, seed=11)
    assert list(points) == list(intervals) == list(scores)
    for key, score in scores.items():
        np.random.seed(11)
        p, i = rly.get_interval_estimates({key: score}, func, reps=REPS)
        assert np.array_equal(points[key], p[key]) and np.array_equal(intervals[key], i[key])


def test_performance_profiles_equal_rliables_under_the_same_global_seed():
    mats, taus = _matrices(), np.linspace(0, 1, 21)
    profiles, intervals = seeded_performance_profiles(mats, taus, reps=REPS, seed=2)
    for algo, m in mats.items():
        np.random.seed(2)
        p, i = rly.create_performance_profile({algo: m}, taus, reps=REPS)
        assert np.array_equal(profiles[algo], p[algo])
        assert np.array_equal(intervals[algo], i[algo])


def test_an_interval_does_not_depend_on_which_other_algorithms_are_present():
    mats = _matrices()
    points, intervals = seeded_interval_estimates(mats, aggregate_func, reps=REPS, seed=5)
    for subset in (["B"], ["C", "A"], ["C", "B", "A"]):
        p, i = seeded_interval_estimates({a: mats[a] for a in subset}, aggregate_func, reps=REPS,
                                         seed=5)
        assert _same(p, {a: points[a] for a in subset})
        assert _same(i, {a: intervals[a] for a in subset})
    profiles, bands = seeded_performance_profiles(mats, [0.3, 0.6], reps=REPS, seed=5)
    p, i = seeded_performance_profiles({"B": mats["B"]}, [0.3, 0.6], reps=REPS, seed=5)
    assert _same(p, {"B": profiles["B"]}) and _same(i, {"B": bands["B"]})


def test_the_callers_global_rng_state_does_not_matter_and_is_restored():
    mats = _matrices()
    np.random.seed(99)
    expected = np.random.random(3)
    results = []
    for caller_seed in (99, 1234):
        np.random.seed(caller_seed)
        results.append(seeded_interval_estimates(mats, aggregate_func, reps=REPS, seed=3))
        seeded_performance_profiles(mats, [0.5], reps=REPS, seed=3)
        bootstrap_mean_ci([1.0, 2.0, 4.0], reps=REPS, seed=3)
        mean_bands(np.arange(12.0).reshape(3, 4), reps=REPS, seed=3)
        if caller_seed == 99:  # the caller's stream goes on where it was
            assert np.array_equal(np.random.random(3), expected)
    assert _same(results[0][0], results[1][0]) and _same(results[0][1], results[1][1])

    def failing(scores):
        raise RuntimeError("a statistic that fails")

    np.random.seed(99)
    with pytest.raises(RuntimeError, match="fails"):
        seeded_interval_estimates(mats, failing, reps=REPS, seed=3)
    assert np.array_equal(np.random.random(3), expected)  # restored on the way out, too


# ---------------------------------------------------------------------------------------------
# One task: intervals over seeds, and along curves
# ---------------------------------------------------------------------------------------------

def test_bootstrap_mean_ci_is_rliable_on_one_task():
    values = [1.0, 2.0, 3.0, 4.0, 7.5]
    est, lo, hi = bootstrap_mean_ci(values, reps=500, seed=3)
    np.random.seed(3)
    point, ci = rly.get_interval_estimates({"x": np.array(values)[:, None]},
                                           lambda m: np.mean(m, axis=0), reps=500)
    assert (est, lo, hi) == (point["x"][0], ci["x"][0, 0], ci["x"][1, 0])
    assert 1.0 <= lo < est < hi <= 7.5
    np.random.seed(99)  # the caller's global RNG state does not matter, and is kept
    state = np.random.get_state()[1].copy()
    assert bootstrap_mean_ci(values, reps=500, seed=3) == (est, lo, hi)
    assert (np.random.get_state()[1] == state).all()
    est, lo, hi = bootstrap_mean_ci([5.0, np.nan], reps=500, seed=0)
    assert est == 5.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in bootstrap_mean_ci([], reps=10))


def test_bootstrap_mean_ci_by_hand():
    """The percentile interval of the resample means, computed here without rliable."""
    # constant values: every resample has the same mean, a zero-width interval at the value
    assert bootstrap_mean_ci([2.5] * 4, reps=100, seed=1) == (2.5, 2.5, 2.5)
    # two values 0 and 1: resample means 0, 1/2, 1 with chances 1/4, 1/2, 1/4, so the 2.5% and
    # 97.5% percentiles are the extremes
    assert bootstrap_mean_ci([0.0, 1.0], reps=2000, seed=5) == (0.5, 0.0, 1.0)
    # 0, 0, 0, 1: a resample's mean is k/4, k ~ Binomial(4, 1/4): P(k = 0) = 81/256 > 2.5%, and
    # P(k = 4) = 1/256 < 2.5% <= P(k >= 3) = 13/256
    assert bootstrap_mean_ci([0.0, 0.0, 0.0, 1.0], reps=2000, seed=0) == (0.25, 0.0, 0.75)
    # the resample set itself, drawn as rliable draws it (one np.random.choice per resample)
    values, reps, seed = np.array([1.0, 2.0, 3.0, 4.0, 7.5]), 500, 3
    np.random.seed(seed)
    means = [values[np.random.choice(5, (5, 1))].mean() for _ in range(reps)]
    est, lo, hi = bootstrap_mean_ci(values, reps=reps, seed=seed)
    assert est == 3.5
    assert (lo, hi) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), rel=1e-12)
    # no resamples: the mean, no interval
    est, lo, hi = bootstrap_mean_ci(values, reps=0)
    assert est == 3.5 and math.isnan(lo) and math.isnan(hi)


def test_mean_bands_are_rliable_per_block_of_runs():
    """Learning-curve bands: steps where the same runs have values form one rliable call."""
    rng = np.random.default_rng(1)
    curves = rng.normal(size=(4, 6))
    curves[3, 4:] = np.nan      # a run that diverged after step 3
    curves[1:, 5] = np.nan      # the last step: one run left, no interval
    mean, lo, hi, n = mean_bands(curves, reps=300, seed=2)
    assert n.tolist() == [4, 4, 4, 4, 3, 1]
    np.testing.assert_allclose(mean, np.nanmean(curves, axis=0))
    np.random.seed(2)
    _, ci = rly.get_interval_estimates({"x": curves[:, None, :4]},
                                       lambda m: np.mean(m, axis=0).ravel(), reps=300)
    assert (lo[:4] == ci["x"][0]).all() and (hi[:4] == ci["x"][1]).all()
    np.random.seed(2)
    _, ci = rly.get_interval_estimates({"x": curves[:3, None, 4:5]},
                                       lambda m: np.mean(m, axis=0).ravel(), reps=300)
    assert (lo[4], hi[4]) == (ci["x"][0, 0], ci["x"][1, 0])
    assert math.isnan(lo[5]) and math.isnan(hi[5]) and mean[5] == curves[0, 5]


@pytest.mark.parametrize("n_runs,n_steps", [(1, 3), (3, 1), (5, 7)])
def test_mean_bands_shapes(n_runs, n_steps):
    curves = np.random.default_rng(0).normal(size=(n_runs, n_steps))
    out = mean_bands(curves, reps=50, seed=0)
    assert [a.shape for a in out] == [(n_steps,)] * 4
    mean, lo, hi, n = out
    assert n.tolist() == [n_runs] * n_steps and np.issubdtype(n.dtype, np.integer)
    if n_runs >= 2:
        assert ((lo <= mean + 1e-12) & (mean <= hi + 1e-12)).all()
    else:  # one run: no interval
        assert np.isnan(lo).all() and np.isnan(hi).all()
    # a step no run reached: no mean, no interval, no runs; and no resamples: means only
    curves = np.column_stack([curves, np.full(n_runs, np.nan)])
    mean, lo, hi, n = mean_bands(curves, reps=0)
    assert n[-1] == 0 and math.isnan(mean[-1]) and np.isnan(lo).all() and np.isnan(hi).all()
    np.testing.assert_allclose(mean[:-1], curves[:, :-1].mean(axis=0))


# ---------------------------------------------------------------------------------------------
# The seed-count planner
# ---------------------------------------------------------------------------------------------

def test_seed_count_planner_matches_the_width_theory_gives_for_a_mean():
    """From a large normal sample, the planner's median 95% width of a mean over n seeds is
    3.92 sigma sqrt((n-1)/n) / sqrt(n) (within the bootstrap's error), and of a difference of two
    such means sqrt(2) times that; widths shrink with n, and the seeds needed at a margin are the
    first n whose median width is at most twice the margin."""
    x = np.random.default_rng(3).normal(0.0, 1.0, 4000)
    plan = seed_count_plan(x, statistic="mean", seeds=(25, 100))
    theory = 3.92 * np.sqrt((plan["n_seeds"] - 1) / plan["n_seeds"]) / np.sqrt(plan["n_seeds"])
    assert np.allclose(plan["width_median"], theory, rtol=0.08), plan
    diff = seed_count_plan(x, x, statistic="mean", seeds=(25, 100), margin=0.3)
    assert np.allclose(diff["width_median"], np.sqrt(2) * theory, rtol=0.08), diff
    assert list(diff["decides"]) == [False, True] and seeds_needed(diff) == 100
    iqm = seed_count_plan(x, seeds=(5, 20, 80), margin=10.0)
    assert iqm["width_median"].is_monotonic_decreasing and seeds_needed(iqm) == 5
    assert seeds_needed(seed_count_plan(x, seeds=(5,), margin=1e-3)) is None
    with pytest.raises(ValueError, match="at least two finite scores"):
        seed_count_plan([1.0, np.nan])


def test_seed_count_planner_stratifies_over_tasks_as_the_analysis_does():
    """Tasks are strata: n seeds are drawn per task and resampled within it, so tasks whose
    levels differ do not widen the interval (the mean of K tasks x n seeds of spread sigma has
    width 3.92 sigma sqrt((n-1)/n) / sqrt(nK)); pooling them as one task would. For a difference,
    the share of intervals that exclude zero is about 1 for a clear gap and small for none."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.0, 1.0, 4000), rng.normal(10.0, 1.0, 4000)
    n = np.array([25, 100])
    theory = 3.92 * np.sqrt((n - 1) / n) / np.sqrt(2 * n)
    plan = seed_count_plan({"low": a, "high": b}, statistic="mean", seeds=tuple(n))
    assert np.allclose(plan["width_median"], theory, rtol=0.08), plan
    assert set(plan["observed_seeds"]) == {"4000,4000"}
    pooled = seed_count_plan(np.concatenate([a, b]), statistic="mean", seeds=(50,))
    assert pooled["width_median"].iloc[0] > 3 * plan["width_median"].iloc[0]
    apart = seed_count_plan({"low": a, "high": b}, {"low": a - 1.0, "high": b - 1.0},
                            statistic="mean", seeds=(25,))
    assert apart["excludes_zero"].iloc[0] > 0.95 and "excludes_zero" not in plan
    same = seed_count_plan({"low": a, "high": b}, {"low": a, "high": b}, statistic="mean",
                           seeds=(100,))
    assert same["excludes_zero"].iloc[0] < 0.15
    with pytest.raises(ValueError, match="same tasks"):
        seed_count_plan({"low": a, "high": b}, {"low": a})
    with pytest.raises(ValueError, match="same tasks"):
        seed_count_plan({"low": a, "high": b}, {"low": a, "other": b})
    with pytest.raises(ValueError, match="one task at least"):
        seed_count_plan({})
    with pytest.raises(ValueError, match="per algorithm and task"):
        seed_count_plan({"low": a, "high": [1.0]})


def test_seeds_needed_is_the_count_from_which_every_larger_one_decides():
    """A count that decides only by a dip of the widths at few seeds (IQM of 3 = mean, of 4 =
    middle two), with a larger count that does not, is not the answer; a plan whose largest count
    does not decide needs more seeds than it considers."""

    def plan(decides):
        return pd.DataFrame({"n_seeds": [3, 5, 10, 20][:len(decides)], "decides": decides})

    assert seeds_needed(plan([True, False, True, True])) == 10
    assert seeds_needed(plan([False, True, False, True])) == 20
    assert seeds_needed(plan([True, True, True, True])) == 3
    assert seeds_needed(plan([True, True, True, False])) is None
    assert seeds_needed(plan([False, False])) is None
    assert seeds_needed(plan([True, False, True, True]).iloc[::-1]) == 10   # order of the rows
    # the dip is real: from a normal population, the IQM's interval at 4 seeds is wider than at 3
    big = np.random.default_rng(0).normal(0.0, 1.0, 4000)
    widths = seed_count_plan(big, seeds=(3, 4), margin=0.9)
    assert widths["width_median"].iloc[1] > widths["width_median"].iloc[0], widths
    assert list(widths["decides"]) == [True, False] and seeds_needed(widths) is None
