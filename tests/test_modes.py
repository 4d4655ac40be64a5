"""Calibration tests for analysis.estimators.modes on distributions whose number of modes is known.

Rates are asserted over seeded random draws (deterministic).  The larger-sample version of these
numbers (100 draws per setting) is printed by ``python benchmarks/calibration.py``.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from analysis.estimators.synthetic import (sample_clipped_mixture, sample_mixture,
                                           sample_tanh_gaussian, sample_unimodal)
from analysis.estimators.modes import count_modes, mode_summary


def _rate(make, truth, draws, seed, check=None):
    rng = np.random.default_rng(seed)
    hits = 0
    seen = []
    for _ in range(draws):
        s = mode_summary(make(rng))
        seen.append(s["n_modes"])
        hits += bool(check(s)) if check else s["n_modes"] == truth
    return hits / draws, seen


# ------------------------------------------------------------------------------------------
# mixtures

# 40 draws per setting in 1-D and 2-D, 20 in 6-D and 21-D (to keep the suite fast); >= 95 %
# must be right, i.e. at most 2 misses out of 40 and 1 out of 20.  The calibration script runs
# 100 draws per setting.
@pytest.mark.parametrize("d", [1, 2, 6, 21])
@pytest.mark.parametrize("n_modes", [1, 2, 3, 4])
def test_well_separated_mixtures_are_counted(d, n_modes):
    draws = 40 if d <= 2 else 20
    rate, seen = _rate(lambda rng: sample_mixture(rng, 1000, d, n_modes), n_modes, draws,
                       seed=100 * d + n_modes)
    assert rate >= 0.95, f"d={d}, K={n_modes}: counts {seen}"


@pytest.mark.parametrize("d", [1, 2, 6, 21])
@pytest.mark.parametrize("weights", [(0.1, 0.9), (0.1, 0.2, 0.3, 0.4), (0.12, 0.12, 0.76)])
def test_unequal_weights_are_counted_and_weighed(d, weights):
    rng = np.random.default_rng(7 + d)
    for _ in range(3):
        x = sample_mixture(rng, 1000, d, len(weights), weights=weights)
        s = mode_summary(x)
        assert s["n_modes"] == len(weights)
        # reported weights (sorted, descending) match the mixture weights up to sampling noise
        np.testing.assert_allclose(s["weights"], sorted(weights, reverse=True), atol=0.05)


@pytest.mark.parametrize("n, d", [(200, 1), (200, 6), (200, 21), (5000, 21)])
def test_small_and_large_samples(n, d):
    rate, seen = _rate(lambda rng: sample_mixture(rng, n, d, 3), 3, 2 if n == 5000 else 20,
                       seed=n + d)
    assert rate >= (1.0 if n == 5000 else 0.9), seen


# ------------------------------------------------------------------------------------------
# unimodal distributions must not be split

@pytest.mark.parametrize("d", [1, 2, 3, 6, 11, 21])
def test_unimodal_gaussian_is_not_split(d):
    rate, seen = _rate(lambda rng: sample_unimodal(rng, 1000, d), 1, 15, seed=300 + d)
    assert rate == 1.0, seen


@pytest.mark.parametrize("d", [2, 6, 21])
def test_extremely_anisotropic_gaussian_is_not_split(d):
    # axis ratio 1000 (variance ratio 1e6), and a degenerate version with constant coordinates
    rate, seen = _rate(lambda rng: sample_unimodal(rng, 1000, d, axis_ratio=1000.0), 1, 6,
                       seed=400 + d)
    assert rate == 1.0, seen

    def flat(rng):
        x = sample_unimodal(rng, 1000, d)
        x[:, : d // 2] = 0.25
        return x
    rate, seen = _rate(flat, 1, 3, seed=450 + d)
    assert rate == 1.0, seen


@pytest.mark.parametrize("d", [1, 2, 6, 21])
def test_uniform_box_is_one_mode(d):
    # documented choice: a flat density has no distinct modes and is reported as one mode
    rate, seen = _rate(lambda rng: rng.uniform(-1, 1, (1000, d)), 1, 8, seed=500 + d)
    assert rate == 1.0, seen


# ------------------------------------------------------------------------------------------
# squashed and clipped policies: mass at the bounds

@pytest.mark.parametrize("d", [1, 2, 6, 21])
def test_narrow_tanh_gaussian_is_one_interior_mode(d):
    rng = np.random.default_rng(600 + d)
    for _ in range(6):
        s = mode_summary(sample_tanh_gaussian(rng, 1000, d, 0.3))
        assert s["n_modes"] == 1
        assert s["n_interior_modes"] == 1 and not s["at_bound"].any()


def test_wide_tanh_gaussian_1d_has_two_modes_at_the_bounds():
    rng = np.random.default_rng(700)
    for _ in range(12):
        s = mode_summary(sample_tanh_gaussian(rng, 1000, 1, 3.0))
        assert s["n_modes"] == 2
        assert s["at_bound"].all() and s["n_interior_modes"] == 0
        assert sorted(map(tuple, s["bound_dims"])) == [((0, -1),), ((0, 1),)]
        assert np.all(np.abs(s["locations"]) > 0.99)
        # the flat middle of the U can be split anywhere (documented): weights are rough here
        np.testing.assert_allclose(s["weights"], [0.5, 0.5], atol=0.16)
        assert count_modes(sample_tanh_gaussian(rng, 1000, 1, 3.0), count_bound_modes=False) == 0


def test_wide_tanh_gaussian_2d_has_four_corner_modes():
    rng = np.random.default_rng(710)
    for _ in range(6):
        s = mode_summary(sample_tanh_gaussian(rng, 1000, 2, 3.0))
        assert s["n_modes"] == 4
        corners = sorted(tuple(dims) for dims in s["bound_dims"])
        assert corners == [((0, -1), (1, -1)), ((0, -1), (1, 1)), ((0, 1), (1, -1)),
                           ((0, 1), (1, 1))]


@pytest.mark.parametrize("d", [6, 21])
def test_wide_tanh_gaussian_high_d_modes_are_flagged_at_bound(d):
    # the corner count is not meaningful for d >= 4 (documented); the flag is
    rng = np.random.default_rng(720 + d)
    for _ in range(5):
        s = mode_summary(sample_tanh_gaussian(rng, 1000, d, 3.0))
        assert s["at_bound"].all()
        assert s["saturated_fraction"] > 0.9


@pytest.mark.parametrize("d", [1, 2, 6, 21])
@pytest.mark.parametrize("n_modes", [2, 3])
def test_clipped_mixture_has_a_mode_on_the_face(d, n_modes):
    def check(s):
        flagged = [dims for dims, at in zip(s["bound_dims"], s["at_bound"]) if at]
        return s["n_modes"] == n_modes and flagged == [[(0, 1)]]
    rate, seen = _rate(lambda rng: sample_clipped_mixture(rng, 1000, d, n_modes), n_modes, 12,
                       seed=800 + 10 * d + n_modes, check=check)
    assert rate >= 0.95, seen


def test_point_mass_exactly_at_a_bound_is_a_mode():
    rng = np.random.default_rng(900)
    for _ in range(6):
        atom = rng.random((1000, 1)) < 0.3
        x = np.where(atom, -1.0, np.clip(rng.normal(0.3, 0.1, (1000, 1)), -1, 1))
        s = mode_summary(x)
        assert s["n_modes"] == 2
        i = int(np.flatnonzero(s["at_bound"])[0])
        assert s["bound_dims"][i] == [(0, -1)] and s["locations"][i, 0] == -1.0
        assert abs(s["weights"][i] - atom.mean()) < 0.02
        assert count_modes(x, count_bound_modes=False) == 1


def test_float32_saturated_tanh():
    rng = np.random.default_rng(910)
    x = np.tanh(3 * rng.standard_normal((1000, 1))).astype(np.float32)  # exact +-1 values
    assert count_modes(x) == 2


# ------------------------------------------------------------------------------------------
# degenerate inputs

def test_deterministic_policy_is_one_mode():
    x = np.tile([0.3, -0.7, 1.0], (500, 1))
    s = mode_summary(x)
    assert s["n_modes"] == 1
    np.testing.assert_array_equal(s["locations"][0], [0.3, -0.7, 1.0])
    assert s["bound_dims"] == [[(2, 1)]]
    assert count_modes(np.zeros((200, 21))) == 1
    assert count_modes(np.full((200, 1), -1.0)) == 1
    # float noise far below the resolution is still one point
    assert count_modes(0.5 + 1e-9 * np.random.default_rng(0).standard_normal((300, 2))) == 1


def test_discrete_policy_atoms_are_modes():
    rng = np.random.default_rng(920)
    actions = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    x = actions[rng.integers(0, 4, 1000)]
    s = mode_summary(x)
    assert s["n_modes"] == 4
    found = sorted(map(tuple, np.round(s["locations"], 6)))
    assert found == sorted(map(tuple, actions))


def test_one_dimensional_input_is_accepted():
    rng = np.random.default_rng(930)
    x = sample_mixture(rng, 1000, 1, 2)
    assert count_modes(x[:, 0]) == count_modes(x) == 2


@pytest.mark.parametrize("bad, match", [
    (np.full((100, 2), np.nan), "NaN"),
    (np.concatenate([np.zeros((99, 2)), [[np.inf, 0.0]]]), "NaN or infinite"),
    (np.zeros((10, 2, 2)), "2-D"),
    (np.float64(0.3), "2-D"),
    (np.zeros((5, 2)), "at least 10"),
    (np.zeros((100, 0)), "at least one"),
    (np.full((100, 2), 1.5), r"\[-1.0, 1.0\]"),
    ([["a", "b"]] * 20, "numeric"),
])
def test_bad_inputs_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        count_modes(bad)


def test_bad_options_raise():
    x = np.random.default_rng(0).uniform(-1, 1, (100, 2))
    with pytest.raises(ValueError):
        count_modes(x, min_weight=1.5)
    with pytest.raises(ValueError):
        count_modes(x, k=100)
    with pytest.raises(ValueError):
        count_modes(x, persistence=-1.0)
    with pytest.raises(ValueError):
        count_modes(x, low=1.0, high=-1.0)


def test_other_action_box():
    rng = np.random.default_rng(940)
    x = 2.0 + 2.0 * sample_mixture(rng, 1000, 2, 3)  # box [0, 4]
    assert count_modes(x, low=0.0, high=4.0) == 3


# ------------------------------------------------------------------------------------------
# output format and speed

def test_summary_fields_are_consistent():
    rng = np.random.default_rng(950)
    x = sample_mixture(rng, 1000, 6, 3)
    s = mode_summary(x)
    k = s["n_modes"]
    assert s["locations"].shape == (k, 6)
    assert s["weights"].shape == (k,) and math.isclose(s["weights"].sum(), 1.0)
    assert np.all(np.diff(s["weights"]) <= 0)
    assert s["labels"].shape == (1000,) and set(np.unique(s["labels"])) == set(range(k))
    np.testing.assert_allclose(np.bincount(s["labels"]) / 1000, s["weights"])
    assert np.isinf(s["prominence"]).sum() == 1 and np.all(s["prominence"] >= 1.75)
    assert s["n_interior_modes"] + s["n_bound_modes"] == k
    assert s["saturation"].shape == (6, 2)
    assert set(s["params"]) >= {"k", "persistence", "min_weight", "intrinsic_dim"}
    # each mode's location lies near the mean of its samples
    for i in range(k):
        assert np.linalg.norm(s["locations"][i] - x[s["labels"] == i].mean(axis=0)) < 0.1


def test_runtime_n1000_d21():
    rng = np.random.default_rng(960)
    x = sample_mixture(rng, 1000, 21, 4)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        count_modes(x)
        best = min(best, time.perf_counter() - t0)
    assert best < 0.5, f"{best:.3f} s"
