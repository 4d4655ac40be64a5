"""analysis.estimators.mixed on distributions with atoms at the bounds whose truth is known.

A few seeded draws per property; the per-setting rates over many draws are printed by
``python benchmarks/calibration.py --only mixed`` (table in docs/audit.md)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.estimators import mixed
from analysis.estimators.synthetic import (FacePart, mixed_kl_settings, mixed_kl_truth,
                                           mixed_mode_settings, mixed_truth, sample_mixed)
from analysis.estimators.kl import gaussian_fit_kl

N = 1000


def binomial_sd(p, n=N):
    return math.sqrt(max(p * (1 - p), 1e-4) / n)


def test_bound_mass_counts_exact_bound_values_per_dimension_and_corner():
    x = np.array([[-1.0, 1.0], [1.0, 1.0], [1.0, 0.3], [0.2, -0.1], [1 - 1e-7, -1.0]])
    m = mixed.bound_mass(x)
    np.testing.assert_allclose(m["lower"], [0.2, 0.2])
    np.testing.assert_allclose(m["upper"], [0.6, 0.4])
    assert m["interior"] == pytest.approx(0.2)           # only [0.2, -0.1]
    assert m["corner"] == pytest.approx(0.6)             # rows 0, 1 and 4 (1 - 1e-7 is on it)
    assert m["face"] == pytest.approx(0.2)
    assert m["n_corners"] == 3
    assert mixed.bound_pattern(x)[2].tolist() == [1, 0]


@pytest.mark.parametrize("index", [0, 2, 5])  # 1-D atoms + 2 modes; 2-D corners, face, 4 modes;
def test_summary_recovers_bound_masses_and_interior_modes(index):  # 6-D independent saturation
    name, d, make, truth = mixed_mode_settings()[index]
    s = mixed.mixed_summary(make(np.random.default_rng(index), N))
    for est, true in ((s["lower"], truth["lower"]), (s["upper"], truth["upper"])):
        assert np.all(np.abs(est - true) <= [4 * binomial_sd(t) for t in true]), name
    assert abs(s["interior"] - truth["interior"]) <= 4 * binomial_sd(truth["interior"])
    assert s["interior_modes"] == truth["interior_modes"], name
    assert s["components"] == truth["components"], name


def test_generators_truth_matches_their_samples():
    """The calibration's truths are bookkeeping over FaceParts: check them against a big sample."""
    parts = [FacePart(.15, (1, 1)), FacePart(.25, (-1, 0), ((.2,),), .1),
             FacePart(.6, (0, 0), ((.5, .5), (-.5, -.5)), .08)]
    x = sample_mixed(np.random.default_rng(0), 20000, parts)
    truth = mixed_truth(parts)
    m = mixed.bound_mass(x)
    np.testing.assert_allclose(m["lower"], truth["lower"], atol=0.015)
    np.testing.assert_allclose(m["upper"], truth["upper"], atol=0.015)
    assert m["interior"] == pytest.approx(truth["interior"], abs=0.015)
    assert truth["interior_modes"] == 2 and truth["components"] == 1 + 1 + 2
    assert mixed.has_atoms(x) and np.abs(x[mixed.bound_pattern(x).any(axis=1) == 0]).max() < 1


def test_too_small_interior_is_reported_not_counted():
    x = np.concatenate([np.full((990, 2), 1.0), np.random.default_rng(1).uniform(-.5, .5, (10, 2))])
    s = mixed.mixed_summary(x)
    assert math.isnan(s["interior_modes"]) and "10 samples" in s["interior_note"]
    assert s["corner"] == pytest.approx(0.99) and s["components"] == 1


def test_pattern_kl_of_pure_atoms_is_the_discrete_kl():
    rng = np.random.default_rng(2)
    p = rng.choice([-1.0, 1.0], size=(4000, 1), p=[.5, .5])
    q = rng.choice([-1.0, 1.0], size=(4000, 1), p=[.25, .75])
    truth = .5 * math.log(.5 / .25) + .5 * math.log(.5 / .75)
    r = mixed.mixed_kl(p, q)
    assert r["kl"] == pytest.approx(truth, abs=0.02)
    assert r["covered_mass"] == 1 and r["missing_mass"] == 0 and math.isnan(r["kl_interior"])


@pytest.mark.parametrize("index", [0, 1, 3])
def test_mixed_kl_matches_the_chain_rule_truth(index):
    name, p_parts, q_parts = mixed_kl_settings()[index]
    rng = np.random.default_rng(10 + index)
    r = mixed.mixed_kl(sample_mixed(rng, 2000, p_parts), sample_mixed(rng, 2000, q_parts))
    truth = mixed_kl_truth(p_parts, q_parts)
    assert abs(r["kl"] - truth) <= max(0.15 * truth, 0.06), (name, r, truth)
    assert r["covered_mass"] == pytest.approx(1.0)


def test_an_atom_missing_from_q_is_flagged():
    name, p_parts, q_parts = mixed_kl_settings()[4]
    assert mixed_kl_truth(p_parts, q_parts) == math.inf
    rng = np.random.default_rng(3)
    r = mixed.mixed_kl(sample_mixed(rng, 2000, p_parts), sample_mixed(rng, 2000, q_parts))
    assert r["missing_mass"] == pytest.approx(0.1, abs=4 * binomial_sd(0.1, 2000))
    assert "never produced" in r["note"]


def test_faces_too_small_to_estimate_make_a_lower_bound():
    parts = [FacePart(.03, (1, 0), ((0.,),), .1), FacePart(.97, (0, 0), ((0., 0.),), .1)]
    rng = np.random.default_rng(4)
    r = mixed.mixed_kl(sample_mixed(rng, 2000, parts), sample_mixed(rng, 2000, parts))
    assert r["covered_mass"] == pytest.approx(0.97, abs=0.02) and "lower bound" in r["note"]


def test_interior_gaussian_fit_is_defined_where_the_whole_sample_is_not():
    parts = [FacePart(.2, (-1,)), FacePart(.1, (1,)), FacePart(.7, (0,), ((.1,),), .15)]
    x = sample_mixed(np.random.default_rng(5), N, parts)
    value, note = mixed.interior_gaussian_fit_kl(x)
    assert abs(value) < 0.05 and note == ""          # the interior part is Gaussian
    assert gaussian_fit_kl(x) > 3                     # the atoms, read as a density
    point = np.full((N, 2), 0.3)                      # a deterministic policy inside the box
    value, note = mixed.interior_gaussian_fit_kl(point)
    assert math.isnan(value) and "atoms" in note
    assert math.isnan(mixed.mixed_kl(point, x[:, :1].repeat(2, axis=1) * 0.5)["kl"])


def test_pattern_law_counts_the_faces_a_policy_uses():
    """Bound patterns with known answers: a bang-bang 1-D policy split 70/30 between -1 and +1;
    a 3-D policy mixing five patterns; an interior density (one pattern, entropy 0)."""
    rng = np.random.default_rng(0)
    bang = np.where(rng.random((10_000, 1)) < 0.7, -1.0, 1.0)
    law = mixed.pattern_law(bang)
    assert law["n_heavy_patterns"] == 2 and law["n_patterns"] == 2
    assert law["balance"][0] == pytest.approx(0.3, abs=0.02)
    h = -(0.7 * np.log2(0.7) + 0.3 * np.log2(0.3))
    assert law["pattern_entropy"] == pytest.approx(h, abs=0.01)
    assert list(law["patterns"]) == ["-", "+"]
    faces = np.array([[1, 1, 1], [-1, 0.2, 1], [0.1, 0.3, -1], [1, -1, -1], [0.5, 0.5, 0.5]])
    mix = faces[rng.choice(5, size=20_000, p=[0.4, 0.3, 0.15, 0.12, 0.03])]
    law = mixed.pattern_law(mix)
    assert law["n_patterns"] == 5 and law["n_heavy_patterns"] == 4  # the 3 % pattern is light
    assert law["patterns"]["+++"] == pytest.approx(0.4, abs=0.01)
    assert law["top_pattern_mass"] == pytest.approx(0.4, abs=0.01)
    assert law["balance"][2] == pytest.approx((0.4 + 0.3) / (0.4 + 0.3 + 0.15 + 0.12), abs=0.01)
    inside = rng.uniform(-0.9, 0.9, (5000, 2))
    law = mixed.pattern_law(inside)
    assert law["patterns"] == {"00": 1.0} and law["pattern_entropy"] == 0.0
    assert np.isnan(law["balance"]).all()


@pytest.mark.parametrize("d", [1, 2, 6, 12, 39, 40])
def test_unique_patterns_are_numpys_unique_rows_in_the_same_order(d):
    rng = np.random.default_rng(d)
    # skewed, so that some patterns repeat and others are rare
    b = rng.choice(np.array([-1, 0, 1], np.int8), size=(500, d), p=[0.2, 0.7, 0.1])
    b[:100] = b[0]
    want_keys, want_inverse, want_counts = np.unique(b, axis=0, return_inverse=True,
                                                     return_counts=True)
    keys, inverse, counts = mixed.unique_patterns(b, return_inverse=True)
    assert keys.dtype == b.dtype and np.array_equal(keys, want_keys)
    assert np.array_equal(inverse.ravel(), want_inverse.ravel())
    assert np.array_equal(counts, want_counts)
    empty_keys, empty_counts = mixed.unique_patterns(b[:0])
    assert empty_keys.shape == (0, d) and len(empty_counts) == 0


def test_has_atoms_finds_exactly_the_repeated_rows():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(300, 3))
    assert not mixed.has_atoms(x)
    y = x.copy()
    y[200] = y[17]  # one repeated sample, far apart in the array
    assert mixed.has_atoms(y)
    z = x.copy()
    z[5, :2] = z[9, :2]  # equal in two of three coordinates: not the same sample
    assert not mixed.has_atoms(z)
    assert mixed.has_atoms(np.array([0.3, 0.1, 0.3])) and not mixed.has_atoms(np.zeros((0, 2)))
