"""Published reference curves: provenance required, protocol labelled, values at a step."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from analysis.benchmark import references as ref
from analysis.benchmark.references import (OUR_PROTOCOL, ReferenceError, at_step, load_references,
                                           protocol_matches)

PROVENANCE = {"repository": "someone/somerepo", "file": "results/sac.csv",
              "commit": "0123456789abcdef0123456789abcdef01234567", "licence": "MIT"}
MATCHED = {"observations": "state", "action_repeat": 1, "updates_per_env_step": 1,
           "hidden_widths": [256, 256], "batch_size": 256, "eval_episodes": 10,
           "random_steps": 10000, "learning_rate": 3e-4, "seeds": 3, "step_counting": "env_steps"}


def write_source(root, name, rows, provenance=None, protocol=None, drop=()):
    folder = root / name
    folder.mkdir(parents=True)
    meta = {"id": name, "curves": "curves.csv",
            "provenance": dict(PROVENANCE if provenance is None else provenance),
            "protocol": dict(MATCHED if protocol is None else protocol)}
    for key in drop:
        meta["provenance"].pop(key)
    (folder / "SOURCE.yaml").write_text(yaml.safe_dump(meta))
    pd.DataFrame(rows).to_csv(folder / "curves.csv", index=False)
    return folder


def seed_rows(algo="sac", task="cheetah_run", table=None):
    # evaluations every 30k steps: 0, 30k, 60k, 90k, 120k; 100k itself is never evaluated
    table = table or {1: [0.0, 10.0, 20.0, 300.0, 999.0], 2: [1.0, 11.0, 21.0, 330.0, 999.0],
                      3: [2.0, 12.0, 22.0, 360.0, 999.0]}
    return [{"algo": algo, "task": task, "step": 30_000 * i, "seed": s, "return": v}
            for s, vals in table.items() for i, v in enumerate(vals)]


# ---------------------------------------------------------------- provenance

@pytest.mark.parametrize("missing, named", [
    (("repository",), "repository or paper"),
    (("file",), "file"),
    (("commit",), "commit or version"),
    (("licence",), "licence"),
])
def test_source_without_provenance_field_is_refused_naming_it(tmp_path, missing, named):
    write_source(tmp_path, "good", seed_rows())
    write_source(tmp_path, "bad_source", seed_rows(), drop=missing)
    with pytest.raises(ReferenceError) as e:
        load_references(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "'bad_source'" in msg and msg.endswith(f"provenance lacks {named}")


def test_either_repository_or_paper_and_commit_or_version_suffice(tmp_path):
    prov = {"paper": "Someone et al. 2024", "file": "Table 3", "version": "arXiv v2",
            "licence": "CC BY 4.0"}
    write_source(tmp_path, "paper_only", seed_rows(), provenance=prov)
    df = load_references(tmp_path)
    assert set(df["commit"]) == {"arXiv v2"} and set(df["licence"]) == {"CC BY 4.0"}


def test_source_without_source_yaml_or_protocol_is_refused(tmp_path):
    (tmp_path / "bare").mkdir()
    pd.DataFrame(seed_rows()).to_csv(tmp_path / "bare" / "curves.csv", index=False)
    with pytest.raises(ReferenceError, match="'bare'.*SOURCE.yaml"):
        load_references(tmp_path)
    folder = write_source(tmp_path / "b", "noproto", seed_rows())
    meta = yaml.safe_load((folder / "SOURCE.yaml").read_text())
    del meta["protocol"]
    (folder / "SOURCE.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(ReferenceError, match="'noproto'.*no protocol"):
        load_references(tmp_path / "b")


# ---------------------------------------------------------------- protocol

def test_protocol_matches_core_fields_and_reports_other_differences():
    ok, mismatches = protocol_matches(MATCHED, OUR_PROTOCOL)
    assert ok and mismatches == []
    wide = dict(MATCHED, hidden_widths=[1024, 1024], batch_size=1024)
    ok, mismatches = protocol_matches(wide)
    assert ok  # widths and batch are differences, not a mismatch of the protocol
    assert mismatches == ["hidden_widths=1024x1024 (ours 256x256)", "batch_size=1024 (ours 256)"]
    ok, mismatches = protocol_matches(dict(MATCHED, action_repeat=2, step_counting="agent_steps"))
    assert not ok
    assert mismatches == ["action_repeat=2 (ours 1)", "step_counting=agent_steps (ours env_steps)"]
    unknown = {k: v for k, v in MATCHED.items() if k != "updates_per_env_step"}
    ok, mismatches = protocol_matches(unknown)
    assert not ok and mismatches == ["updates_per_env_step=unknown (ours 1)"]


def test_mismatched_protocol_is_labelled_in_loaded_rows_and_at_step(tmp_path):
    write_source(tmp_path, "matched_src", seed_rows())
    write_source(tmp_path, "repeat2", seed_rows(), protocol=dict(MATCHED, action_repeat=2))
    write_source(tmp_path, "unknown_src", seed_rows(),
                 protocol=dict(MATCHED, action_repeat=None, batch_size=None))
    df = load_references(tmp_path)
    labels = df.groupby("source")["protocol"].unique().map(list).to_dict()
    assert labels == {"matched_src": ["matched"], "repeat2": ["differs: action_repeat=2 (ours 1)"],
                      "unknown_src": ["differs: action_repeat=unknown (ours 1)"]}
    assert set(df.loc[df.source == "unknown_src", "protocol_other"]) == {
        "batch_size=unknown (ours 256)"}
    table = at_step(df).set_index("source")
    assert table.loc["repeat2", "protocol"] == "differs: action_repeat=2 (ours 1)"
    assert table.loc["matched_src", "protocol"] == "matched"


def test_agent_steps_are_converted_to_environment_steps(tmp_path):
    write_source(tmp_path, "agent", seed_rows(),
                 protocol=dict(MATCHED, action_repeat=2, step_counting="agent_steps"))
    df = load_references(tmp_path)
    assert sorted(df["step"].unique()) == [0, 60_000, 120_000, 180_000, 240_000]
    assert df["protocol"].iloc[0].startswith("differs: action_repeat=2")
    write_source(tmp_path / "x", "agent_unknown", seed_rows(),
                 protocol=dict(MATCHED, action_repeat=None, step_counting="agent_steps"))
    with pytest.raises(ReferenceError, match="'agent_unknown'.*action_repeat is unknown"):
        load_references(tmp_path / "x")


# ---------------------------------------------------------------- at_step

def test_at_step_uses_the_evaluation_at_or_below_and_a_t_interval(tmp_path):
    write_source(tmp_path, "synthetic", seed_rows())
    row = at_step(load_references(tmp_path), step=100_000).iloc[0]
    assert row["step_used"] == 90_000  # not 120k (after), not interpolated
    assert row["n_seeds"] == 3
    vals = np.array([300.0, 330.0, 360.0])
    assert row["mean"] == pytest.approx(330.0)
    half = stats.t.ppf(0.975, 2) * vals.std(ddof=1) / math.sqrt(3)
    assert row["ci_low"] == pytest.approx(330.0 - half)
    assert row["ci_high"] == pytest.approx(330.0 + half)
    assert row["ci_method"].startswith("t-interval")
    exact = at_step(load_references(tmp_path), step=90_000).iloc[0]
    assert exact["step_used"] == 90_000 and exact["mean"] == pytest.approx(330.0)


def test_at_step_bootstrap_is_seeded_and_brackets_the_mean(tmp_path):
    write_source(tmp_path, "synthetic", seed_rows())
    df = load_references(tmp_path)
    a = at_step(df, method="bootstrap", reps=2000, seed=7).iloc[0]
    b = at_step(df, method="bootstrap", reps=2000, seed=7).iloc[0]
    assert (a["ci_low"], a["ci_high"]) == (b["ci_low"], b["ci_high"])
    assert 300.0 <= a["ci_low"] <= 330.0 <= a["ci_high"] <= 360.0
    assert "bootstrap" in a["ci_method"] and "seed 7" in a["ci_method"]


def test_at_step_groups_by_source_algo_task_and_handles_mean_only_sources(tmp_path):
    rows = seed_rows() + seed_rows(algo="td3", task="walker_run",
                                   table={5: [0, 1, 2, 3, 4], 6: [0, 1, 2, 5, 4]})
    write_source(tmp_path, "perseed", rows)
    write_source(tmp_path, "meanonly", [
        {"algo": "sac", "task": "cheetah_run", "step": 50_000, "n_seeds": 5, "return": 100.0,
         "return_std": 10.0},
        {"algo": "sac", "task": "cheetah_run", "step": 100_000, "n_seeds": 5, "return": 200.0,
         "return_std": 20.0},
        {"algo": "sac", "task": "hopper_hop", "step": 200_000, "n_seeds": 5, "return": 1.0}])
    table = at_step(load_references(tmp_path)).set_index(["source", "algo", "task"])
    assert len(table) == 4
    assert table.loc[("perseed", "td3", "walker_run"), "mean"] == pytest.approx(4.0)
    mean_row = table.loc[("meanonly", "sac", "cheetah_run")]
    assert mean_row["step_used"] == 100_000 and mean_row["mean"] == 200.0
    half = stats.t.ppf(0.975, 4) * 20.0 / math.sqrt(5)
    assert mean_row["ci_low"] == pytest.approx(200.0 - half)
    late = table.loc[("meanonly", "sac", "hopper_hop")]
    assert pd.isna(late["step_used"]) and math.isnan(late["mean"])  # no evaluation at or below


# ---------------------------------------------------------------- the committed references

def test_committed_references_load_with_provenance_for_every_source():
    folders = ref.source_folders()
    assert {f.name for f in folders} >= {"tdmpc2_sac", "pytorch_sac", "simba_sac", "spinup_dmc"}
    df = load_references()
    assert set(df["source"]) == {f.name for f in folders}
    for f in folders:
        meta = yaml.safe_load((f / "SOURCE.yaml").read_text())
        prov = meta["provenance"]
        assert prov.get("repository") or prov.get("paper")
        assert prov["file"] and prov["licence"]
        assert len(prov.get("commit") or "") == 40  # the exact commit read
        assert meta["protocol"]["step_counting"] in ("env_steps", "agent_steps")
    for col in ("repository", "file", "commit", "licence", "protocol"):
        assert df[col].notna().all(), col
    assert set(df["algo"]) == {"sac", "td3"}
    assert set(df["task"]) <= {"cheetah_run", "walker_run", "hopper_hop", "quadruped_walk",
                               "finger_spin", "reacher_hard", "cartpole_swingup"}
    assert df["step"].max() <= 500_000 and df["step"].min() >= 0
    assert df["return"].between(0, 1000).all()
    size = sum(p.stat().st_size for p in ref.REFERENCES_DIR.rglob("*") if p.is_file())
    assert size < 1_000_000


def test_committed_references_at_100k():
    table = at_step(load_references())
    assert (table["step_used"] == 100_000).all()  # every source evaluates at 100k exactly
    labels = table.groupby("source")["protocol"].first().to_dict()
    assert labels["simba_sac"] == "differs: action_repeat=2 (ours 1)"
    assert labels["tdmpc2_sac"].startswith("differs: action_repeat=unknown")
    assert labels["pytorch_sac"] == "matched" and labels["spinup_dmc"] == "matched"
    td3 = table[table.algo == "td3"]
    assert set(td3["source"]) == {"spinup_dmc"} and len(td3) == 6  # no reacher_hard
