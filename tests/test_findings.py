"""The verdict section of the findings ("Is QSM multi-modal, and where?"): each rule on tables whose
answer is known."""
from __future__ import annotations

import math

import pandas as pd

from analysis import findings


def summary_row(**kw):
    base = {"n_seeds": 3, "interior_modes": 1.0, "interior_modes_ci_low": 1.0,
            "interior_modes_ci_high": 1.0, "n_heavy_patterns": 1.0, "n_heavy_patterns_ci_low": 1.0,
            "n_heavy_patterns_ci_high": 1.0}
    return {**base, **kw}


def test_the_kind_of_multimodality_needs_its_interval_above_one():
    assert findings.multimodality_kind(summary_row()) == "one mode"
    assert findings.multimodality_kind(summary_row(n_heavy_patterns_ci_low=3.2)) == "bound patterns"
    assert findings.multimodality_kind(summary_row(interior_modes_ci_low=1.5,
                                                   n_heavy_patterns_ci_low=2)) == \
        "interior modes and bound patterns"
    # a mean above one whose interval reaches one is not evidence
    assert findings.multimodality_kind(summary_row(interior_modes=1.4)) == "one mode"
    assert findings.multimodality_kind(summary_row(interior_modes_ci_low=math.nan)) == "one mode"
    assert findings.multimodality_kind(summary_row(n_seeds=0)) == "n/a"
    assert findings.multimodality_kind(summary_row(n_seeds=1, n_heavy_patterns=2)).startswith(
        "undecided")


def initial_rows(algo, masses):
    return [{"algo": algo, "task": findings.DEMO_TASK, "seed": s, "distribution": "policy",
             "dim": 0, "lower": lo, "upper": up} for s, (lo, up) in enumerate(masses)]


def test_the_demonstration_rule_is_applied_to_every_algorithm_alike():
    status = pd.DataFrame([{"algo": a, "task": findings.DEMO_TASK, "role": "benchmark", "seed": s}
                           for a in ("qsm", "sac", "td3") for s in range(5)])
    initial = pd.DataFrame(
        initial_rows("qsm", [(0.4, 0.4), (0.3, 0.5), (0.2, 0.2), (0.5, 0.1), (0.16, 0.6)])
        + initial_rows("sac", [(0.0, 0.9)] * 5)
        + initial_rows("td3", [(0.5, 0.5), (0.5, 0.5), (0.5, 0.5)]))  # 2 seeds not in yet
    text = findings.demonstration_section(initial, status)
    assert "at least 15%" in text and "4 of 5" in text
    lines = {line.split("|")[1].strip(): line for line in text.splitlines()
             if line.startswith("| ") and not line.startswith("| algorithm")}
    assert lines["qsm"].rstrip(" |").endswith("bimodal") and "4 of 5" in lines["qsm"]
    assert lines["sac"].rstrip(" |").endswith("not bimodal")
    assert "3 of 5" in lines["td3"] and lines["td3"].rstrip(" |").endswith("undecided")
    empty = findings.demonstration_section(pd.DataFrame(), status)
    assert "no run yet" in empty


def test_predictions_beside_learned_report_every_disagreement():
    predictions = pd.DataFrame([
        {"role": "audit", "task": "toy_bimodal_at_bounds", "M_q": 50.0, "T": 5,
         "score_target": "constant", "return_over_optimum": 1.0, "mass_any_bound": 1.0,
         "predicted_learned": True},
        {"role": "sampler_steps", "task": "toy_bimodal", "M_q": 1.0, "T": 20,
         "score_target": "constant", "return_over_optimum": 0.97, "mass_any_bound": 0.0,
         "predicted_learned": True},
        {"role": "score_target_form", "task": "toy_bimodal", "M_q": 5.0, "T": 5,
         "score_target": "sigma_scaled", "return_over_optimum": 0.94, "mass_any_bound": 0.0,
         "predicted_learned": True}])
    oracle = pd.DataFrame([
        {"algo": "qsm", "task": "toy_bimodal_at_bounds", "M_q": 50.0, "T": 5, "other_hparams": "",
         "score_target": "constant", "n_seeds": 3, "learned_return": 0.99,
         "learned_return_ci_low": 0.98, "learned_return_ci_high": 1.0, "learned_bound": 1.0,
         "learned_bound_ci_low": 1.0, "learned_bound_ci_high": 1.0, "n_learned": 3},
        {"algo": "qsm", "task": "toy_bimodal", "M_q": 1.0, "T": 20, "score_target": "constant",
         "other_hparams": "",
         "n_seeds": 3, "learned_return": 0.6, "learned_return_ci_low": 0.5,
         "learned_return_ci_high": 0.7, "learned_bound": 0.0, "learned_bound_ci_low": 0.0,
         "learned_bound_ci_high": 0.0, "n_learned": 0}])
    text = findings.predictions_section(predictions, oracle, "8e8f517237d0")
    assert "committed at 8e8f517237d0" in text
    assert "not trained yet" in text  # the sigma_scaled point has no runs
    assert "disagree: toy_bimodal at M_q 1, T 20, constant" in text
    assert "toy_bimodal_at_bounds" not in text.split("disagree:")[1]


def test_budgets_name_each_tasks_steps_and_the_tasks_without_a_run():
    status = pd.DataFrame({"task": ["cheetah_run", "cheetah_run", "walker_run", "toy"],
                           "budget_steps": [100_000.0, 100_000.0, math.nan, 40_000.0]})
    assert (findings.budgets(status, ["walker_run", "cheetah_run", "toy"])
            == "cheetah_run at 100,000 steps; toy at 40,000 steps; walker_run: no run yet")
    assert findings.budgets(status, ["walker_run"]) == "walker_run: no run yet"
