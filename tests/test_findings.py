"""The verdict section of the findings ("Is QSM multi-modal, and where?"): each rule on tables whose
answer is known."""
from __future__ import annotations

import math

import pandas as pd

from analysis import findings
from conftest import ROOT


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


def _oracle_row(task, M_q, T, n_learned, learned, scale=(0.9, 1.0), before_last=0.0):
    return {"algo": "qsm", "task": task, "M_q": M_q, "T": T, "other_hparams": "",
            "score_target": "constant", "n_seeds": 3, "learned_return": learned,
            "learned_return_ci_low": learned - 0.05, "learned_return_ci_high": learned + 0.05,
            "learned_bound": 1.0, "learned_bound_ci_low": 1.0, "learned_bound_ci_high": 1.0,
            "n_learned": n_learned, "predicted_return_scale_low": scale[0],
            "predicted_return_scale_high": scale[1], "predicted_bound_before_last": before_last}


def _steps(task, M_q, T, ideal, learned, one_step):
    base = {"algo": "qsm", "task": task, "M_q": M_q, "T": T, "score_target": "constant",
            "other_hparams": "", "n_seeds": 3, "return_ci_low": math.nan,
            "return_ci_high": math.nan}
    return pd.DataFrame([{**base, "chain": "ideal", "step": "", "return": ideal},
                         {**base, "chain": "learned", "step": "", "return": learned}]
                        + [{**base, "chain": "learned at one step", "step": t, "return": r}
                           for t, r in enumerate(one_step)])


def test_predictions_beside_learned_report_and_diagnose_every_disagreement():
    predictions = pd.DataFrame([
        {"role": "audit", "task": "toy_bimodal_at_bounds", "M_q": 50.0, "T": 5,
         "score_target": "constant", "return_over_optimum": 1.0, "mass_any_bound": 1.0,
         "predicted_learned": True},
        {"role": "sampler_steps", "task": "toy_bimodal", "M_q": 1.0, "T": 3,
         "score_target": "constant", "return_over_optimum": 0.97, "mass_any_bound": 0.0,
         "predicted_learned": True},
        {"role": "sampler_steps", "task": "toy_quadmodal", "M_q": 1.0, "T": 3,
         "score_target": "constant", "return_over_optimum": 0.9, "mass_any_bound": 0.0,
         "predicted_learned": True},
        {"role": "score_target_form", "task": "toy_bimodal", "M_q": 5.0, "T": 5,
         "score_target": "sigma_scaled", "return_over_optimum": 0.94, "mass_any_bound": 0.0,
         "predicted_learned": True}])
    oracle = pd.DataFrame([
        _oracle_row("toy_bimodal_at_bounds", 50.0, 5, 3, 0.99),
        _oracle_row("toy_bimodal", 1.0, 3, 0, 0.6, scale=(0.4, 0.99), before_last=0.98),
        _oracle_row("toy_quadmodal", 1.0, 3, 0, 0.5)])
    steps = pd.concat([
        # step 0 alone carries the whole gap: it is named as the cause
        _steps("toy_bimodal", 1.0, 3, ideal=0.97, learned=0.6, one_step=[0.61, 0.96, 0.97]),
        # the gap is spread over the steps: no single one is blamed
        _steps("toy_quadmodal", 1.0, 3, ideal=0.9, learned=0.5, one_step=[0.8, 0.75, 0.8])])
    text = findings.predictions_section(predictions, oracle, steps, "8e8f517237d0")
    assert "committed at 8e8f517237d0" in text
    assert "not trained yet" in text  # the sigma_scaled point has no runs
    assert "| 0.4 to 0.99 |" in text  # the oracle's range at 0.8 to 1.2 times M_q
    diagnosed = text.split("each investigated, never tuned away")[1]
    assert "toy_bimodal_at_bounds" not in diagnosed  # it agrees
    bimodal, quadmodal = diagnosed.split("**toy_bimodal at M_q 1, T 3, constant.**")[1].split(
        "**toy_quadmodal at M_q 1, T 3, constant.**")
    assert "returns 0.4 to 0.99 of the optimum, so the prediction rests on the score's" in bimodal
    assert "0.98 of its mass on a bound before the last step" in bimodal
    assert "step 0 alone (step 0 is the last) gives 0.61" in bimodal
    assert "at most 0.01 from the exact chain: step 0 accounts for the gap" in bimodal
    assert "does not rest on the score's exact size" in quadmodal
    assert "step 1 alone (step 0 is the last) gives 0.75" in quadmodal
    assert "no single step accounts for the gap" in quadmodal
    # without a steps table the diagnosis says so instead of failing
    bare = findings.predictions_section(predictions, oracle, pd.DataFrame(), "8e8f517237d0")
    assert "no run of this point has a policy to load" in bare
    assert "1 seed," not in bare and "(3 seeds, 0 learned)" in bare



def _scale_prediction(task, kind, rms, any_bound, corner, on_bounds):
    return {"task": task, "kind": kind, "act_dim": 2, "td3_q_mean": 20.0, "n_td3_seeds": 1,
            "ratio_low": 0.34, "ratio_high": 0.5, "calibration_tasks": "cheetah_run",
            "rms_low": rms[0], "rms_high": rms[1], "coord_bound_low": 0.0, "coord_bound_high": 0.0,
            "mass_any_bound_low": any_bound[0], "mass_any_bound_high": any_bound[1],
            "mass_corner_low": corner[0], "mass_corner_high": corner[1],
            "predicted_on_bounds": on_bounds}


def _qsm_run(task, seed, rms, any_bound, corner=0.0, distribution="policy", status="complete"):
    return {"algo": "qsm", "task": task, "seed": seed, "role": "benchmark",
            "distribution": distribution, "status": status, "score_target_rms": rms,
            "mass_any_bound": any_bound, "mass_corner": corner}


def _no_denoiser_run(task, seed, matched, coord, algo="qsm", M_q=50.0, act_dim=4):
    return {"algo": algo, "task": task, "seed": seed, "M_q": M_q, "T": 5,
            "score_target": "constant", "other_hparams": float("nan"), "act_dim": act_dim,
            "n_states": 8, "states_as_no_denoiser": matched, "distance_median": 0.1,
            "coord_bound": coord, "no_denoiser_coord_bound": 0.67, "mass_any_bound": 0.99,
            "no_denoiser_mass_any_bound": 1 - 0.33**act_dim, "no_denoiser_lower": 0.335,
            "no_denoiser_inside": 0.33, "no_denoiser_upper": 0.335}


def test_the_sampler_alone_is_named_where_the_policy_is_its_no_denoiser_draws():
    """hopper_hop: 4 + 6 of 16 probe states are the no-denoiser sampler's (half or more): the
    verdict names the sampler as the cause there; cheetah_run: none; a toy and another M_q are
    not read by the verdict's point."""
    nd = pd.DataFrame([_no_denoiser_run("hopper_hop", 0, 4, 0.67),
                       _no_denoiser_run("hopper_hop", 1, 6, 0.63),
                       _no_denoiser_run("cheetah_run", 0, 0, 0.78, act_dim=6),
                       _no_denoiser_run("cheetah_run", 0, 8, 0.67, M_q=1.0, act_dim=6),
                       _no_denoiser_run("toy_bimodal", 0, 1, 1.0, act_dim=1)])
    point, cause = findings.no_denoiser_point(nd, ["cheetah_run", "hopper_hop"],
                                              (50.0, 5, "constant"))
    assert point.startswith("**The sampler alone** (`no_denoiser.csv`)")
    assert "hopper_hop (2 seeds): 10 of 16 probe states; cheetah_run (1 seed): 0 of 8" in point
    assert "On hopper_hop the policy is, at 50% or more of its probe states" in point
    assert "0.65 against the sampler's 0.67" in point  # the mean of 0.67 and 0.63
    assert cause.startswith("the sampler itself where the score is weak (hopper_hop")
    point, cause = findings.no_denoiser_point(nd[nd["task"] != "hopper_hop"], ["cheetah_run"],
                                              (50.0, 5, "constant"))
    assert point.endswith("its place on the bounds is the learned score's doing.") and cause == ""
    assert findings.no_denoiser_point(pd.DataFrame(), ["cheetah_run"], (50.0, 5, "constant")) \
        == ("", "")
    section = findings.no_denoiser_section(nd, ["cheetah_run", "hopper_hop"], ["toy_bimodal"])
    assert "at T 5: 0.34 of each coordinate at -1, 0.33 inside, 0.34 at +1" in section
    assert "| hopper_hop | qsm | M_q 50, T 5, constant | 2 | 10 of 16 (4, 6) | 0.65 / 0.67 |" \
        in section
    assert "| cheetah_run | qsm | M_q 1, T 5, constant | 1 | 8 of 8 (8) |" in section
    assert "On the toys, over all 1 setting of their QSM-like runs: 1 of 8 probe states" in section
    # where the score-scale model's step 3 fails, the diagnosis says how many states are the
    # sampler's
    predictions = pd.DataFrame([_scale_prediction("hopper_hop", "prediction", (1.0, 1.3),
                                                  (0.2, 0.6), (0.0, 0.0), False)])
    runs = pd.DataFrame([_qsm_run("hopper_hop", 0, 1.1, 0.95, 0.9)])
    diagnostics = pd.DataFrame([{"algo": a, "task": "hopper_hop", "role": "benchmark",
                                 "status": "complete", "q_mean": 2.5} for a in ("qsm", "td3")])
    text = findings.scale_predictions_section(predictions, runs, "c", diagnostics, nd)
    assert text.rstrip().endswith(
        "not as the toys' curve says. At 10 of its 16 probe states the policy is what the sampler "
        "draws with no denoiser (a coordinate on a bound: 0.65 against that sampler's 0.67; "
        "below).")


def test_sampler_alone_predictions_are_judged_on_the_seeds_trained_after_them():
    """hopper_hop predicted the sampler's own with seed 0 in sample: seeds 1 and 2 (5 + 2 of 16
    states) make it not the sampler's own: disagrees, and seed 0's 8 of 8 are not read. walker_run
    predicted not: seed 0 with 0 of 8 agrees. reacher_hard: no seed yet; an undecided task is not
    judged."""
    from analysis.audit.scale_model import NOT_OWN, OWN, UNDECIDED
    predictions = pd.DataFrame([
        {"task": t, "seeds_in_sample": sample, "rms_low": 1.0, "rms_high": 2.0,
         "own_rms_max": 0.96, "other_rms_min": 7.21, "predicted": predicted}
        for t, sample, predicted in (("hopper_hop", "0", OWN), ("walker_run", float("nan"), NOT_OWN),
                                     ("reacher_hard", float("nan"), NOT_OWN),
                                     ("quadruped_walk", float("nan"), UNDECIDED))])
    nd = pd.DataFrame([_no_denoiser_run("hopper_hop", 0, 8, 0.67),
                       _no_denoiser_run("hopper_hop", 1, 5, 0.67),
                       _no_denoiser_run("hopper_hop", 2, 2, 0.67),
                       _no_denoiser_run("walker_run", 0, 0, 0.9),
                       _no_denoiser_run("walker_run", 1, 8, 0.67, M_q=1.0),
                       _no_denoiser_run("quadruped_walk", 0, 8, 0.67)])
    text = findings.alone_section(predictions, nd, "5ab5d89aaaaa")
    assert "committed at 5ab5d89aaaaa" in text and "(0.96)" in text and "(7.21)" in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["hopper_hop"].endswith(f"| 0 | 1 to 2 | {OWN} | 1, 2 | 7 of 16 | {NOT_OWN} | **no** |")
    assert rows["walker_run"].endswith(f"| none | 1 to 2 | {NOT_OWN} | 0 | 0 of 8 | {NOT_OWN} | yes |")
    assert rows["reacher_hard"].endswith("| no new seed yet |")
    assert rows["quadruped_walk"].endswith("| not judged (undecided) |")
    point = findings.alone_point(predictions, nd)
    assert point.startswith("**The sampler alone, predicted** (committed before the seeds that "
                            "test it): 1 of 2 tasks with new seeds agree (hopper_hop: predicted "
                            f"{OWN}, 7 of 16 probe states of seeds 1, 2 the sampler's: disagrees")
    assert (f"walker_run: predicted {NOT_OWN}, 0 of 8 probe states of seed 0 the sampler's: "
            "agrees)") in point
    assert point.endswith("; no new seed yet: reacher_hard.")
    assert findings.alone_point(pd.DataFrame(), nd) == ""
    assert findings.alone_point(predictions, nd.iloc[:1]).endswith(
        "no seed that tests it has trained yet (hopper_hop, walker_run, reacher_hard, "
        "quadruped_walk).")
    # a task whose asked seeds are all in sample is not waiting for anything
    status = pd.DataFrame([{"algo": "qsm", "role": "benchmark", "task": t, "seed": k}
                           for t, seeds in (("hopper_hop", (0,)), ("reacher_hard", (0, 1)))
                           for k in seeds])
    rows = {line.split(" | ")[0].lstrip("| "): line
            for line in findings.alone_section(predictions, nd.iloc[:1], "c", status).splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["hopper_hop"].endswith("| in-sample: no seed asked beyond it |")
    assert rows["reacher_hard"].endswith("| no new seed yet |")
    assert "hopper_hop" not in findings.alone_point(predictions, nd.iloc[:1], status)


def test_the_findings_command_names_an_unknown_prediction_model_in_one_line(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "analysis.findings", "--manifest", "m.json",
                           "--tables", str(tmp_path), "--out", str(tmp_path / "f.md"),
                           "--prediction", "crystal_ball", "p.csv", "abc"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "unknown model crystal_ball" in proc.stderr
    assert "oracle, score_scale, sampler_alone" in proc.stderr


def test_score_scale_predictions_are_judged_against_the_qsm_runs_by_the_committed_rule():
    predictions = pd.DataFrame([
        _scale_prediction("cheetah_run", "calibration", (5.0, 7.0), (0.99, 1.0), (0.2, 1.0), True),
        _scale_prediction("walker_run", "prediction", (6.0, 10.0), (0.95, 1.0), (0.8, 1.0), True),
        _scale_prediction("hopper_hop", "prediction", (1.0, 1.3), (0.2, 0.6), (0.0, 0.0), False),
        _scale_prediction("reacher_hard", "prediction", (18.0, 27.0), (1.0, 1.0), (1.0, 1.0), True)])
    runs = pd.DataFrame([
        _qsm_run("cheetah_run", 0, 7.2, 1.0, 0.25),
        # walker: RMS 14 is within 10 x 1.5, mass 0.86 within 0.95 - 0.1: agrees
        _qsm_run("walker_run", 0, 14.0, 0.86, 0.5), _qsm_run("walker_run", 1, 20.0, 0.86, 0.5),
        _qsm_run("walker_run", 2, 1.0, 0.86, 0.5),  # median RMS of 1, 14, 20: 14
        # the behaviour distribution and an unfinished run are not read
        _qsm_run("walker_run", 0, 99.0, 0.0, distribution="behaviour"),
        _qsm_run("walker_run", 3, 99.0, 0.0, status="running"),
        # hopper: RMS right but every sample on a bound (0.95 > 0.6 + 0.1): disagrees
        _qsm_run("hopper_hop", 0, 1.1, 0.95, 0.9)])
    text = findings.scale_predictions_section(predictions, runs, "b4588b9aaaaa")
    assert "committed at b4588b9aaaaa" in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["cheetah_run"].endswith("| yes (in-sample) |")
    assert "| 14 (3 seeds) |" in rows["walker_run"] and rows["walker_run"].endswith("| yes |")
    assert "| 0.86 (0.86, 0.86, 0.86) |" in rows["walker_run"]
    assert rows["hopper_hop"].endswith("| **no** |")
    assert rows["reacher_hard"].endswith("| not trained yet |")
    point = findings.scale_predictions_point(predictions, runs)
    assert point.startswith("**Score scale on the benchmark tasks** (predictions committed before "
                            "the runs): 1 of 2 tasks trained so far agree")
    assert "walker_run: agrees, predicted on the bounds" in point
    assert "hopper_hop: disagrees, predicted mostly off the bounds, mass on a bound 0.95" in point
    assert point.endswith("; not trained yet: reacher_hard.")
    assert "| 5 to 7 | 7.2 (1 seed) | 0.99 to 1 | 1 (1) | 0.2 to 1 | 0.25 | yes (in-sample) |" \
        in rows["cheetah_run"]
    assert "| 1 | " in rows["reacher_hard"]  # a range whose ends print alike is one number
    assert findings.scale_predictions_point(pd.DataFrame(), runs) == ""
    # which step of the model fails where a task disagrees, from the training diagnostics
    diagnostics = pd.DataFrame([
        {"algo": "qsm", "task": "hopper_hop", "role": "benchmark", "status": "complete",
         "q_mean": 3.0},
        {"algo": "td3", "task": "hopper_hop", "role": "benchmark", "status": "complete",
         "q_mean": 2.0},
        {"algo": "td3", "task": "hopper_hop", "role": "benchmark", "status": "running",
         "q_mean": 99.0}])
    text = findings.scale_predictions_section(predictions, runs, "b4588b9aaaaa", diagnostics)
    said = text.split("which step of the model fails")[1]
    assert "walker_run" not in said and "cheetah_run" not in said  # they agree
    assert ("**hopper_hop** (1 seed of QSM): the score-target RMS agrees (1.1 against 1 to 1.3 "
            "predicted), the mass on a bound disagrees (0.95 against 0.2 to 0.6)") in said
    # Q 3 against TD3's 20 used by the prediction: more than a factor 1.5 off
    assert "mean Q of 3 (1 seed) against TD3's 20 that the prediction used (TD3 now: 2, 1 seed)" \
        ": fails" in said
    # 1.1 / 3 = 0.367 within 0.34 / 1.5 to 0.5 x 1.5
    assert "per unit of Q: 0.367 against the calibrated 0.34 to 0.5: holds." in said
    assert said.rstrip().endswith("not as the toys' curve says.")
    bare = findings.scale_predictions_section(predictions, runs, "b4588b9aaaaa")
    assert "no Q level to say which step fails" in bare
    agreeing = runs[runs["task"] != "hopper_hop"]
    assert findings.scale_predictions_section(predictions, agreeing, "c").endswith(
        "Where prediction and runs disagree: nowhere so far.")
    waiting = findings.scale_predictions_point(predictions, runs[runs["task"] == "cheetah_run"])
    assert waiting.endswith("no predicted task has a QSM run yet (walker_run, hopper_hop, "
                            "reacher_hard).")


def test_budgets_name_each_tasks_steps_and_the_tasks_without_a_run():
    status = pd.DataFrame({"task": ["cheetah_run", "cheetah_run", "walker_run", "toy"],
                           "budget_steps": [100_000.0, 100_000.0, math.nan, 40_000.0]})
    assert (findings.budgets(status, ["walker_run", "cheetah_run", "toy"])
            == "cheetah_run at 100,000 steps; toy at 40,000 steps; walker_run: no run yet")
    assert findings.budgets(status, ["walker_run"]) == "walker_run: no run yet"


def _verdict_oracle_row(task, M_q, T, n_learned, learned, bound=1.0, agrees=True,
                        form="constant", n_seeds=3):
    return {**_oracle_row(task, M_q, T, n_learned, learned), "learned_bound": bound,
            "score_target": form, "agrees": agrees, "n_seeds": n_seeds}


def test_the_verdict_points_name_the_part_of_the_algorithm_the_tables_point_to():
    status = pd.DataFrame(
        [{"algo": "qsm", "task": findings.DEMO_TASK, "role": "benchmark", "seed": s,
          "budget_steps": 100_000.0} for s in range(5)]
        + [{"algo": "qsm", "task": "walker_run", "role": "benchmark", "seed": 0,
            "budget_steps": math.nan}])
    initial = pd.DataFrame(initial_rows("qsm", [(0.0, 1.0)] * 5))
    modes = pd.DataFrame([{**summary_row(n_heavy_patterns=4.6, n_heavy_patterns_ci_low=4.2,
                                         n_heavy_patterns_ci_high=5.0, interior_modes=math.nan,
                                         mass_any_bound=1.0),
                           "algo": "qsm", "task": findings.DEMO_TASK, "distribution": "policy"}])
    toy_optima = pd.DataFrame({"task": ["at", "near", "inside"],
                               "optima": ["(-1) (1)", "(-0.8) (0.8)", "(-0.5) (0.5)"]})
    from analysis.audit.scale_model import paper_setting
    M_q, T, form = paper_setting()
    assert (M_q, T, form) == (50.0, 5, "constant")  # the paper's, as the agent declares them
    oracle = pd.DataFrame([
        _verdict_oracle_row("at", M_q, T, 3, 1.0), _verdict_oracle_row("near", M_q, T, 3, 0.8),
        _verdict_oracle_row("inside", M_q, T, 0, 0.25, n_seeds=5),
        _verdict_oracle_row("inside", 1.0, T, 0, 0.6, bound=0.2),
        _verdict_oracle_row("inside", 1.0, 20, 3, 0.97, bound=0.0),  # more steps: learned
        _verdict_oracle_row("inside", 1.0, T, 0, 0.75, form="sigma_scaled", agrees=False)])
    scale = pd.DataFrame([{"task": "inside", "reference_task": findings.DEMO_TASK,
                           "matched_M_q": 14.1, "nearest_M_q": 20.0, "final_normalized": 0.25,
                           "final_normalized_ci_low": 0.25, "final_normalized_ci_high": 0.25,
                           "n_seeds": 3, "n_learned": 0}])
    text = findings.verdict_points(modes, initial, status, oracle, scale, toy_optima)
    point = {line.split("**")[1]: line for line in text.splitlines()}
    assert "0 of 5 audited seeds bimodal" in point["The paper's demonstration"]
    assert "with qsm it does not reproduce" in point["The paper's demonstration"]
    assert "shows bound patterns (4.6 [4.2, 5]" in point["The benchmark tasks"]
    assert "no interior part large enough" in point["The benchmark tasks"]
    assert "No QSM run yet on walker_run" in point["The benchmark tasks"]
    assert "at 5 of the 6 QSM settings" in point["Learning or sampler"]
    assert "differ at inside at M_q 1, T 5, sigma_scaled" in point["Learning or sampler"]
    assert "optima at 0, 0.2, 0.5 from the bounds" in point["Geometry"]
    assert "the optima's place decides" in point["Geometry"]
    assert "T 20 0.97 [0.92, 1.02] (3 of 3 seeds learned) against T 5" in point["Sampler steps"]
    assert "sigma_scaled 0.75" in point["Target form"]
    causes, rest = point["Which part of the algorithm"].split("It does not point to")
    assert "geometry" in causes and "sampler steps (T)" in causes
    assert "sampler steps (T) (at M_q 1)" in causes
    assert "the score target's form, in part (at M_q 1" in causes  # 0.75 against 0.6
    assert "learning" in rest and "score scale" in rest

    # optima further inside scoring higher: no pattern, and geometry is not named as a cause
    oracle.loc[oracle["task"] == "inside", "learned_return"] = 0.95
    text = findings.verdict_points(modes, initial, status, oracle.iloc[:3], scale, toy_optima)
    assert "No single pattern across the optima's places" in text
    assert "geometry" not in text.split("**Which part of the algorithm**")[1]
    # flat returns show no effect of the optima's place; two toys at one distance are fine
    flat = oracle.iloc[:3].assign(learned_return=0.9)
    ties = pd.concat([flat, flat.iloc[[1]].assign(task="near_too")], ignore_index=True)
    optima = pd.concat([toy_optima, pd.DataFrame({"task": ["near_too"],
                                                  "optima": ["(-0.8) (0.8)"]})])
    text = findings.verdict_points(modes, initial, status, ties, scale, optima)
    assert "No single pattern across the optima's places" in text
    # with no tables at all there is nothing to conclude
    assert findings.verdict_points(pd.DataFrame(), pd.DataFrame(), status.iloc[:0], pd.DataFrame(),
                                   pd.DataFrame(), pd.DataFrame()) == ""


def test_seed_count_plans_stratify_over_the_tasks_each_comparison_shares():
    def runs(algo, task, scores, status="complete"):
        return [{"algo": algo, "task": task, "seed": s, "role": "benchmark", "status": status,
                 "final_normalized": v} for s, v in enumerate(scores)]

    final = pd.DataFrame(runs("qsm", "t1", [0.2, 0.3, 0.25]) + runs("qsm", "t2", [0.8, 0.9, 0.85])
                         + runs("sac", "t1", [0.5, 0.6, 0.55]) + runs("sac", "t2", [0.7, 0.75, 0.8])
                         + runs("td3", "t1", [0.4, 0.45]) + runs("td3", "t2", [0.5], "diverged")
                         + runs("random", "t2", [0.0]) + runs("sac", "t3", [0.1, 0.2], "failed"))
    plans = findings.comparison_plans(final, "qsm", ["t1", "t2", "t3"])
    by = {c: p for c, p in plans.groupby("comparison")}
    assert set(by) == {"qsm - sac", "qsm - td3"}  # random has one seed: no plan
    assert set(by["qsm - sac"]["tasks"]) == {"t1 t2"} and set(by["qsm - td3"]["tasks"]) == {"t1"}
    assert set(by["qsm - sac"]["observed_seeds"]) == {"3,3 / 3,3"}
    assert list(by["qsm - sac"]["n_seeds"]) == list(findings.COMPARISON_SEEDS)
    assert by["qsm - sac"]["excludes_zero"].between(0, 1).all()
    text = findings.comparison_plan_section(plans, "qsm", ["t1", "t2", "t3"])
    assert "Tasks without two seeds of both yet: t3" in text
    assert "| qsm - sac | t1, t2 | qsm 3, 3; sac 3, 3 | 5 |" in text
    assert findings.comparison_plans(final.iloc[:0], "qsm", None).empty
    assert set(plans["plan"]) == {"comparison"}
    # a diverged seed has no finite score: it is not a seed to draw from
    nan = pd.DataFrame(runs("qsm", "t1", [0.2]) + runs("qsm", "t1", [math.nan], "diverged")
                       + runs("sac", "t1", [0.5, 0.6]))
    assert findings.comparison_plans(nan, "qsm", ["t1"]).empty

    # the fidelity pair's plan takes its strata from the fidelity table's tasks
    fidelity = pd.DataFrame([{"quantity": "iqm_difference", "algo": "qsm - sac", "task": "t1 t2"}])
    plan = findings.fidelity_plan(final, fidelity, margin=0.05)
    assert set(plan["observed_seeds"]) == {"3,3 / 3,3"} and set(plan["tasks"]) == {"t1 t2"}
    assert set(plan["comparison"]) == {"qsm - sac"} and (plan["margin"] == 0.05).all()
    assert set(plan["plan"]) == {"fidelity"}
    assert findings.fidelity_plan(nan, fidelity.assign(task="t1"), margin=0.05) is None
