"""The fidelity analysis (analysis/training/fidelity.py): intervals against a stated margin, and a
verdict that follows them (equivalent, different, inconclusive), on runs whose truth is known."""
import numpy as np
import pandas as pd
import pytest

from analysis.training import fidelity

TASKS = ("cheetah_run", "walker_run")


def runs(levels: dict, seeds, noise=0.01, seed=0):
    """scores.csv / run_status.csv frames: per algo a final normalised level, 3 evaluations."""
    rng = np.random.default_rng(seed)
    scores, status = [], []
    for algo, level in levels.items():
        for task in TASKS:
            for s in seeds:
                final = level + rng.normal(0, noise)
                for step, frac in ((0, 0.0), (500, 0.5), (1000, 1.0)):
                    scores.append({"algo": algo, "task": task, "seed": s, "role": "benchmark",
                                   "step": step, "return": 1000 * final * frac,
                                   "normalized": final * frac, "status": "complete"})
                status.append({"algo": algo, "task": task, "seed": s, "role": "benchmark",
                               "run_id": "0" * 12, "status": "complete", "detail": "",
                               "last_step": 1000.0, "budget_steps": 1000.0, "max_return": 1000.0,
                               "path": f"runs/{algo}/{task}/{s}"})
    return pd.DataFrame(scores), pd.DataFrame(status)


@pytest.mark.parametrize("low,high,expected", [
    (-0.01, 0.02, "inside"), (0.06, 0.1, "outside"), (-0.2, -0.06, "outside"),
    (0.0, 0.08, "overlaps"), (-0.3, 0.3, "overlaps"), (float("nan"), 0.0, "overlaps")])
def test_interval_against_band(low, high, expected):
    assert fidelity.band_verdict(low, high, -0.05, 0.05) == expected


def test_verdict_rules():
    assert fidelity.verdict("inside", "inside") == "equivalent"
    assert fidelity.verdict("inside", "outside") == "different"
    assert fidelity.verdict("overlaps", "inside") == "inconclusive"


def test_same_level_many_seeds_is_equivalent_and_a_gap_is_different():
    # P(X > Y) is a rank statistic: its interval is narrow enough for a band of +-0.15 with
    # 60 seeds per task (about +-0.07 here); +-0.1 needs over a hundred
    scores, status = runs({"qsm": 0.60, "qsm_official": 0.60}, seeds=range(60), noise=0.02)
    table, result, _ = fidelity.compare(scores, status, "qsm", "qsm_official", poi_margin=0.15,
                                        reps=300)
    diff = table.set_index("quantity").loc["iqm_difference"]
    assert diff["ci_low"] <= diff["estimate"] <= diff["ci_high"]
    assert -0.05 < diff["ci_low"] and diff["ci_high"] < 0.05
    poi = table.set_index("quantity").loc["probability_of_improvement"]
    assert 0.35 < poi["ci_low"] and poi["ci_high"] < 0.65
    assert result == "equivalent"
    scores, status = runs({"qsm": 0.70, "qsm_official": 0.50}, seeds=range(10), noise=0.02)
    table, result, _ = fidelity.compare(scores, status, "qsm", "qsm_official", reps=300)
    diff = table.set_index("quantity").loc["iqm_difference"]
    assert diff["estimate"] == pytest.approx(0.2, abs=0.02) and diff["ci_low"] > 0.05
    assert result == "different"


def test_three_noisy_seeds_are_inconclusive_not_equivalent():
    scores, status = runs({"qsm": 0.5, "qsm_official": 0.5}, seeds=range(3), noise=0.15)
    _, result, _ = fidelity.compare(scores, status, "qsm", "qsm_official", reps=300)
    assert result == "inconclusive"


def test_a_clear_gap_over_two_seeds_is_still_inconclusive():
    # one or two seeds give a bootstrap interval of a point or of three resamples: no verdict
    scores, status = runs({"qsm": 0.70, "qsm_official": 0.30}, seeds=range(2), noise=0.01)
    table, result, _ = fidelity.compare(scores, status, "qsm", "qsm_official", reps=100)
    assert result == "inconclusive"
    assert "too few" in table.set_index("quantity").loc["verdict", "note"]
    scores, status = runs({"qsm": 0.70, "qsm_official": 0.30}, seeds=range(3), noise=0.01)
    assert fidelity.compare(scores, status, "qsm", "qsm_official", reps=100)[1] == "different"


def test_the_verdict_names_each_sides_seed_count_when_they_differ():
    scores, status = runs({"qsm": 0.5, "qsm_official": 0.5}, seeds=range(5), noise=0.1)
    late = lambda frame: (frame["algo"] == "qsm_official") & (frame["seed"] >= 3)
    table, _, _ = fidelity.compare(scores[~late(scores)], status[~late(status)], "qsm",
                                   "qsm_official", reps=50)
    rows = table.set_index("quantity")
    assert rows.loc["verdict", "note"].endswith("; seeds per task: qsm 5, qsm_official 3")
    assert rows.loc["iqm_difference", "n_runs"] == 2 * (5 + 3)  # two tasks
    table, _, _ = fidelity.compare(scores, status, "qsm", "qsm_official", reps=50)
    assert table.set_index("quantity").loc["verdict", "note"].endswith("; 5 seeds per task")


def test_a_missing_implementation_is_said_so():
    scores, status = runs({"qsm": 0.5}, seeds=range(3))
    table, result, _ = fidelity.compare(scores, status, "qsm", "qsm_official", reps=50)
    assert result == "inconclusive" and "qsm_official" in table["note"].iloc[0]


def test_audit_rows_read_the_audits_own_summary_columns():
    """mode_rows takes modes_summary.csv as the audit writes it (its SUMMARY_COLUMNS), so a change
    of the audit's table breaks this test, not the fidelity rule of a finished run."""
    from analysis import audit
    rows = []
    for algo, modes in (("qsm", 2.0), ("qsm_official", 1.5), ("sac", 1.0)):
        for distribution in ("policy", "behaviour"):
            row = {c: np.nan for c in audit.SUMMARY_COLUMNS}
            row.update(algo=algo, task="cheetah_run", distribution=distribution, n_seeds=3,
                       n_states=8, note="")
            for measure, value in (("interior_modes", modes if distribution == "behaviour" else np.nan),
                                   ("mass_any_bound", 0.9), ("mass_corner", 0.3), ("components", 6.0)):
                row.update({measure: value, f"{measure}_ci_low": value - 0.1,
                            f"{measure}_ci_high": value + 0.1})
            if distribution == "policy":
                row["note"] = "3 seed(s) without an interior part"
            rows.append(row)
    summary = pd.DataFrame(rows, columns=audit.SUMMARY_COLUMNS)
    table = fidelity.mode_rows(summary, "qsm", "qsm_official")
    assert set(table["algo"]) == {"qsm", "qsm_official"}
    assert len(table) == 2 * 2 * len(fidelity.AUDIT_MEASURES)
    row = table[(table["algo"] == "qsm_official")
                & (table["quantity"] == "audit behaviour: interior_modes")].iloc[0]
    assert (row.estimate, row.ci_low, row.ci_high, row.n_runs) == (1.5, 1.4, 1.6, 3)
    undefined = table[table["quantity"] == "audit policy: interior_modes"]
    assert undefined["estimate"].isna().all()
    assert undefined["note"].str.contains("without an interior part").all()
    text = fidelity.audit_text(table)
    assert "qsm on cheetah_run: policy 90.0% of samples on a bound" in text
    assert "behaviour 1.50 interior modes" in text
    md = fidelity.markdown(table, "inconclusive", "qsm", "qsm_official")
    assert "| audit policy: interior_modes | cheetah_run | qsm | n/a |" in md
