"""Tests of analysis.training.profile on synthetic timing records: per-seed costs, and the
provenance of the table and figure."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.records.provenance import sidecar_path
from analysis.training import profile
from contract import run_config, seed_dir, write_manifest
from qsm.contract.rundir import KEPT_FILES, SeedRunWriter

# (calls, total seconds) of the whole block per phase; 2 seeds share the process
TIMING = {"env_step": (100, 2.0), "act": (100, 1.0), "replay": (100, 0.5),
          "critic_update": (50, 5.0), "actor_update": (25, 2.5)}
BLOCK = [0, 1]


def write_block(root, algo, task):
    for seed in BLOCK:
        w = SeedRunWriter(seed_dir(root, algo, task, seed))
        w.write_config({**run_config(algo, task, seed), "block": {"seeds": BLOCK, "size": 2}})
        w.add_eval(0, [1.0], wall_time_s=0.0)
        w.write_timing([{"phase": p, "calls": c, "total_s": t, "env_steps": 100,
                         "block_size": len(BLOCK), "device": "cpu"}
                        for p, (c, t) in TIMING.items()])
        w.write_probe_actions([[0.0, 0.0, 0.0]], [[[0.0, 0.0]]], [[[0.0, 0.0]]])
        w.write_status("complete", 100)


def test_step_profile_table_figure_and_provenance(tmp_path):
    from PIL import Image
    root = tmp_path / "runs"
    write_block(root, "qsm", "cheetah_run")
    manifest = write_manifest(tmp_path / "manifest.json", root,
                              [("qsm", "cheetah_run", s, "benchmark") for s in BLOCK]
                              + [("qsm", "walker_run", 0, "benchmark"),   # never trained
                                 ("qsm", "toy_bimodal", 0, "audit")],     # another role
                              config_hash="feedfacecafe")
    table, stem = tmp_path / "t" / "step_profile.csv", tmp_path / "f" / "step_profile"
    assert profile.main(["steps", "--manifest", str(manifest), "--table", str(table),
                         "--figure", str(stem)]) == 0
    df = pd.read_csv(table).set_index("phase")
    # per seed: a block's total / calls / seeds; updates per learning step (critic calls)
    assert df.loc["env_step", "ms_per_seed_mean"] == pytest.approx(1000 * 2.0 / 100 / 2)
    assert df.loc["critic_update", "ms_per_seed_mean"] == pytest.approx(1000 * 5.0 / 50 / 2)
    assert df.loc["actor_update", "ms_per_seed_mean"] == pytest.approx(1000 * 2.5 / 50 / 2)
    assert (df["n_blocks"] == 1).all()  # the block's two seeds share one timing record

    side = json.loads(sidecar_path(table).read_text())
    assert side["config_hash"] == "feedfacecafe" and side["roles"] == ["benchmark"]
    assert side["analysis"]["module"] == "analysis.training.profile"
    assert side["n_runs"] == 3 and side["n_used"] == 2
    assert side["by_status"] == {"complete": 2, "missing": 1}
    assert {(r["task"], r["seed"], r["used"]) for r in side["runs"]} == {
        ("cheetah_run", 0, True), ("cheetah_run", 1, True), ("walker_run", 0, False)}
    meta = Image.open(stem.with_suffix(".png")).text
    assert meta["Description"].startswith("config feedface · 3 runs (benchmark) · code qsm test")
    assert json.loads(meta["Provenance"])["n_used"] == 2


def test_batch_size_cost_sweep_reads_each_runs_batch(tmp_path):
    """profile.batch_sweep: one row per algorithm, batch size and phase, each the run's own
    per-seed cost per call; a sweep without runs still draws a figure that says so."""
    root = tmp_path / "runs"
    listed = []
    for batch, run_id, factor in ((64, "000000000064", 1.0), (1024, "000000001024", 8.0)):
        for seed in BLOCK:
            w = SeedRunWriter(seed_dir(root, "sac", "cheetah_run", seed, run_id))
            cfg = run_config("sac", "cheetah_run", seed, run_id=run_id)
            cfg["budget"]["batch_size"] = batch
            w.write_config({**cfg, "block": {"seeds": BLOCK, "size": 2}})
            w.add_eval(0, [1.0], wall_time_s=0.0)
            w.write_timing([{"phase": p, "calls": c, "total_s": t * (factor if "update" in p else 1),
                             "env_steps": 100, "block_size": 2, "device": "cpu"}
                            for p, (c, t) in TIMING.items()])
            w.write_probe_actions([[0.0, 0.0, 0.0]], [[[0.0, 0.0]]], [[[0.0, 0.0]]])
            w.write_status("complete", 100)
            listed.append(("sac", "cheetah_run", seed, "batch_sweep", run_id))
    manifest = write_manifest(tmp_path / "manifest.json", root, listed)
    table, stem = tmp_path / "t" / "batch_profile.csv", tmp_path / "f" / "batch_profile"
    assert profile.main(["batch", "--manifest", str(manifest), "--table", str(table),
                         "--figure", str(stem)]) == 0
    df = pd.read_csv(table).set_index(["batch_size", "phase"])
    assert df.loc[(64, "critic_update"), "ms_per_seed"] == pytest.approx(1000 * 5.0 / 50 / 2)
    assert df.loc[(1024, "critic_update"), "ms_per_seed"] == pytest.approx(8000 * 5.0 / 50 / 2)
    assert df.loc[(1024, "act"), "ms_per_seed"] == df.loc[(64, "act"), "ms_per_seed"]
    assert json.loads(sidecar_path(table).read_text())["roles"] == ["batch_sweep"]
    assert stem.with_suffix(".png").stat().st_size > 1000
    empty = write_manifest(tmp_path / "empty.json", root, [])
    assert profile.main(["batch", "--manifest", str(empty), "--table", str(tmp_path / "e.csv"),
                         "--figure", str(tmp_path / "e")]) == 0
    assert len(pd.read_csv(tmp_path / "e.csv")) == 0 and (tmp_path / "e.png").is_file()


def test_run_cost_counts_each_run_once_and_projects_the_rest_from_its_peers(tmp_path):
    """profile runs: a finished run's hours are its seed's share of the timed phases; a run
    listed under two roles counts once; unfinished runs are projected at the median of the
    finished runs of their algorithm, task and setting (budget and hyperparameters), over every
    role and code version; a configuration with no finished run is not projected."""
    from analysis.findings import cost_section, num
    root = tmp_path / "runs"
    write_block(root, "qsm", "cheetah_run")                      # seeds 0, 1: 11 s per block
    w = SeedRunWriter(seed_dir(root, "qsm", "cheetah_run", 2))   # one seed, twice the time: slow
    w.write_config({**run_config("qsm", "cheetah_run", 2),
                    "provenance": {"git_commit": None, "torch_threads": 1}})
    w.add_eval(0, [1.0], wall_time_s=0.0)
    w.write_timing([{"phase": p, "calls": c, "total_s": 2 * t, "env_steps": 100,
                     "block_size": 1, "device": "cpu"} for p, (c, t) in TIMING.items()])
    w.write_probe_actions([[0.0, 0.0, 0.0]], [[[0.0, 0.0]]], [[[0.0, 0.0]]])
    w.write_status("complete", 1000)
    w = SeedRunWriter(seed_dir(root, "sac", "toy_bimodal", 0))   # still running: not counted
    w.write_config(run_config("sac", "toy_bimodal", 0))
    w.write_status("running", 10)
    write_block(root, "qsm", "toy_bimodal")                      # the audit's seeds 0 and 1
    t20 = "00000000000c"                                         # T = 20: twice their time
    w = SeedRunWriter(seed_dir(root, "qsm", "toy_bimodal", 0, t20))
    w.write_config({**run_config("qsm", "toy_bimodal", 0, run_id=t20), "hparams": {"T": 20}})
    w.add_eval(0, [1.0], wall_time_s=0.0)
    w.write_timing([{"phase": p, "calls": c, "total_s": t, "env_steps": 100,
                     "block_size": 1, "device": "cpu"} for p, (c, t) in TIMING.items()])
    w.write_probe_actions([[0.0, 0.0, 0.0]], [[[0.0, 0.0]]], [[[0.0, 0.0]]])
    w.write_status("complete", 1000)
    manifest = write_manifest(tmp_path / "manifest.json", root, [
        ("qsm", "cheetah_run", 0, "benchmark"), ("qsm", "cheetah_run", 1, "benchmark"),
        ("qsm", "cheetah_run", 2, "benchmark"), ("qsm", "cheetah_run", 3, "benchmark"),
        ("sac", "toy_bimodal", 0, "audit"), ("sac", "toy_bimodal", 1, "audit"),
        ("qsm", "toy_bimodal", 0, "audit"), ("qsm", "toy_bimodal", 1, "audit"),
        ("qsm", "toy_bimodal", 0, "mq"),                         # the sweep's point at 50
        ("qsm", "toy_bimodal", 0, "mq", "00000000000b"),         # another value: missing
        # seed 1 of the T = 20 configuration at another code version: another run id
        ("qsm", "toy_bimodal", 0, "ts", t20, "t20"),
        ("qsm", "toy_bimodal", 1, "ts", "0000000000dd", "t20")])
    raw = json.loads(manifest.read_text())
    raw["sweeps"] = {"mq": {"hparam": "M_q", "algos": ["qsm"]},
                     "ts": {"hparam": "T", "algos": ["qsm"]}}
    manifest.write_text(json.dumps(raw))
    table, summary = tmp_path / "t" / "run_cost.csv", tmp_path / "t" / "cost_summary.csv"
    stem = tmp_path / "f" / "run_cost"
    with pytest.raises(SystemExit):  # the summary table is not optional
        profile.main(["runs", "--manifest", str(manifest), "--table", str(table),
                      "--figure", str(stem)])
    assert profile.main(["runs", "--manifest", str(manifest), "--table", str(table),
                         "--summary", str(summary), "--figure", str(stem)]) == 0
    runs = pd.read_csv(table)
    assert len(runs) == 11  # twelve entries, one of them the audit's run listed again
    bench = runs[runs["role"] == "benchmark"].set_index("seed")
    per_seed = sum(t for _, t in TIMING.values()) / 2   # 11 s for the block of two
    assert bench.loc[0, "hours"] == pytest.approx(per_seed / 3600)
    assert bench.loc[2, "hours"] == pytest.approx(4 * per_seed / 3600)
    assert bench.loc[2, "steps_per_s"] == pytest.approx(1000 / (4 * per_seed))
    assert bench.loc[2, "threads"] == 1 and pd.isna(bench.loc[0, "threads"])
    # a quarter of its peers' median speed: stopped for a while, or a shared core
    # (the T = 20 run, at half the audit runs' speed, is no peer of theirs and not slow)
    assert runs["slow"].tolist() == [False, False, True] + [False] * 8
    assert pd.isna(bench.loc[3, "hours"]) and bench.loc[3, "status"] == "missing"
    assert runs.loc[runs["algo"] == "sac", "hours"].isna().all()   # running and missing
    # the size of what each finished run keeps (what an archive copies of it)
    kept = {s: sum(f.stat().st_size for f in seed_dir(root, "qsm", "cheetah_run", s).iterdir()
                   if f.name in KEPT_FILES) / 1e6 for s in (0, 1, 2)}
    assert all(kept.values()) and [bench.loc[s, "mb"] for s in (0, 1, 2)] == \
        pytest.approx(list(kept.values()))
    assert pd.isna(bench.loc[3, "mb"])
    s = pd.read_csv(summary).set_index(["role", "task", "algo"])
    b = s.loc[("benchmark", "cheetah_run", "qsm")]
    assert (b["runs"], b["finished"], b["slow"], b["peers"]) == (4, 3, 1, 2)
    assert b["hours_measured"] == pytest.approx(6 * per_seed / 3600)  # the slow run's time counts
    assert b["hours_median"] == pytest.approx(per_seed / 3600)       # ... but not in the median
    assert b["hours_projected"] == pytest.approx(7 * per_seed / 3600)
    assert b["mb_measured"] == pytest.approx(sum(kept.values()))
    # the missing seed at the median of its peers' sizes (the slow run's files count here)
    assert b["mb_projected"] == pytest.approx(sum(kept.values()) + np.median(list(kept.values())))
    sweep = s.loc[("mq", "toy_bimodal", "qsm")]              # its setting is not known yet
    assert (sweep["runs"], sweep["finished"], sweep["peers"]) == (1, 0, 0)
    assert pd.isna(sweep["hours_projected"])
    t = s.loc[("ts", "toy_bimodal", "qsm")]                  # seed 1 from seed 0, not the audit's
    assert (t["runs"], t["finished"], t["peers"]) == (2, 1, 1)
    assert t["hours_projected"] == pytest.approx(4 * per_seed / 3600)
    assert pd.isna(s.loc[("audit", "toy_bimodal", "sac"), "hours_projected"])
    side = json.loads(sidecar_path(summary).read_text())
    assert side["roles"] == ["benchmark", "audit", "tsweep", "batch_sweep", "mq", "ts"]
    assert stem.with_suffix(".png").stat().st_size > 1000
    text = cost_section(pd.read_csv(summary), runs)
    assert ("not counting 2 group(s) with no finished peer run yet (audit: sac on toy_bimodal, "
            "mq: qsm on toy_bimodal)") in text
    assert f"keep **{num(s['mb_measured'].sum())} MB** of files" in text
    assert "core-hours" not in text and \
        "Of the 6 finished runs, 1 recorded 1 thread(s), 5 recorded no thread count." in text
    assert "core-hours measured** over 6 finished runs of 11" in cost_section(
        pd.read_csv(summary), runs.assign(threads=1))


def test_a_tasks_first_runs_are_guessed_from_the_algorithms_runs_of_the_role_on_other_tasks():
    from analysis.findings import cost_section

    def run(task, algo, seed, hours, role="benchmark", steps_per_s=10.0, value=""):
        return {"role": role, "task": task, "algo": algo, "seed": seed, "run_id": f"{algo}{task}",
                "status": "complete" if hours == hours else "missing", "steps": 1000,
                "device": "cpu", "block_size": 1, "threads": 1, "hours": hours,
                "steps_per_s": steps_per_s if hours == hours else np.nan, "mb": 1.0,
                "setting": f"{algo}-{task}{value}"}
    nan = np.nan
    runs = pd.DataFrame([run("cheetah_run", "qsm", 0, 1.0), run("cheetah_run", "qsm", 1, 3.0),
                         run("cheetah_run", "qsm", 2, 9.0, steps_per_s=1.0),   # slow: left out
                         run("cheetah_run", "qsm", 3, nan),                    # projected: 2
                         run("walker_run", "qsm", 0, nan), run("walker_run", "qsm", 1, nan),
                         run("walker_run", "sac", 0, nan),                     # no sac anywhere
                         run("toy_bimodal", "qsm", 0, nan, role="audit"),       # no audit qsm
                         run("toy_bimodal", "qsm", 1, 1.0, role="T_sweep", value="-T20"),
                         run("toy_quadmodal", "qsm", 1, nan, role="T_sweep", value="-T20")])  # a sweep: no guess
    summary = profile.cost_summary(profile.flag_slow(runs)).set_index(["role", "task", "algo"])
    cheetah = summary.loc[("benchmark", "cheetah_run", "qsm")]
    assert cheetah["hours_projected"] == cheetah["hours_guessed"] == pytest.approx(15.0)
    walker = summary.loc[("benchmark", "walker_run", "qsm")]
    assert pd.isna(walker["hours_projected"]) and walker["hours_guessed"] == pytest.approx(4.0)
    assert pd.isna(summary.loc[("benchmark", "walker_run", "sac"), "hours_guessed"])
    assert pd.isna(summary.loc[("audit", "toy_bimodal", "qsm"), "hours_guessed"])
    assert pd.isna(summary.loc[("T_sweep", "toy_quadmodal", "qsm"), "hours_guessed"])
    text = cost_section(summary.reset_index(), profile.flag_slow(runs))
    assert "not counting 4 group(s)" in text
    assert "a guess for 1 of those groups" in text and "**about 4 more, 20 in all**" in text
