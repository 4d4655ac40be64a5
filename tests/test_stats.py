"""Tests of analysis.benchmark.aggregate, analysis.benchmark.stats and analysis.benchmark.figures on
synthetic runs, and of the provenance every table and figure carries."""
from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.benchmark import aggregate, stats
from analysis.estimators import bootstrap
from analysis.records.manifest import load_manifest
from analysis.records.provenance import sidecar_path
from contract import run_config, seed_dir, write_manifest
from qsm.contract.identity import hash_of
from qsm.contract.rundir import CONFIG_KEYS, TIMING_PHASES, SeedRunWriter
from rliable import library as rly
from rliable import metrics

REPO = Path(__file__).resolve().parents[1]
REPS = 200
ALGO_LEVEL = {"qsm": 0.8, "sac": 0.5, "random": 0.2}  # known structure: qsm > sac > random
TASKS = ("cheetah_run", "walker_walk", "hopper_hop")
SEEDS = range(5)
STEPS = np.arange(0, 10_001, 2_000)  # 6 evaluations, budget 10,000 steps
CONFIG_HASH = "5eed0c0ffee1"  # stands for the pipeline's hash of its configuration


# ---------------------------------------------------------------------------------------------
# A tiny run writer
# ---------------------------------------------------------------------------------------------

def write_run(root, algo, task, seed, level, status="complete", diverge_at=None, reason=""):
    """Write one seed directory following the run-directory contract."""
    w = SeedRunWriter(seed_dir(root, algo, task, seed))
    rng = np.random.default_rng(zlib.crc32(f"{algo}/{task}/{seed}".encode()))
    w.write_config(run_config(algo, task, seed, steps=int(STEPS[-1])))
    with open(w.dir / "config.json") as f:
        assert set(CONFIG_KEYS) <= set(json.load(f))
    final = 1000 * level + rng.normal(0, 20)
    for i, step in enumerate(STEPS):
        if diverge_at is not None and step > diverge_at:
            w.add_eval(step, [np.nan, np.nan], wall_time_s=float(i))
            break
        mean = final * (i / (len(STEPS) - 1))
        w.add_eval(step, [mean - 5, mean + 5], wall_time_s=float(i))
    w.write_timing([{"phase": p, "calls": 10, "total_s": 1.0, "env_steps": int(STEPS[-1]),
                     "block_size": 1, "device": "cpu"} for p in TIMING_PHASES])
    w.write_probe_actions(np.zeros((4, 3)), np.zeros((4, 2, 2)), np.zeros((4, 2, 2)))
    w.write_status(status, int(STEPS[-1] if diverge_at is None else diverge_at), reason)
    return w.dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """3 algos x 3 tasks x 5 seeds, with one diverged, one missing, one mangled, one running,
    plus a toy audit task for qsm only. Returns the runs root and the manifest listing them."""
    root = tmp_path_factory.mktemp("runs")
    expected = []
    for algo, level in ALGO_LEVEL.items():
        for task in TASKS:
            for seed in SEEDS:
                expected.append((algo, task, seed, "benchmark"))
                if (algo, task, seed) == ("random", "hopper_hop", 4):
                    continue  # missing
                if (algo, task, seed) == ("sac", "walker_walk", 2):
                    write_run(root, algo, task, seed, level, status="diverged", diverge_at=6000,
                              reason="non-finite critic loss")
                else:
                    write_run(root, algo, task, seed, level)
    # mangled eval.csv
    bad = seed_dir(root, "qsm", "cheetah_run", 3) / "eval.csv"
    bad.write_text("step,retu\x00rn\n1,2,3,4\n\"unterminated\n")
    # a run still in progress
    d = write_run(root, "sac", "hopper_hop", 0, 0.5)
    SeedRunWriter(d).write_status("running", 4000)
    # a toy audit task, only for qsm
    for seed in range(2):
        write_run(root, "qsm", "toy_bandit", seed, 0.9)
        expected.append(("qsm", "toy_bandit", seed, "audit"))
    # a run of another configuration: listed as such, never scored
    other = write_run(root, "qsm", "cheetah_run", 0, 0.1)
    seed_dir(root, "qsm", "cheetah_run", 0, "ffffffffffff").parent.mkdir(parents=True)
    other.rename(seed_dir(root, "qsm", "cheetah_run", 0, "ffffffffffff"))
    write_run(root, "qsm", "cheetah_run", 0, 0.8)
    return root, write_manifest(root / "manifest.json", root, expected, config_hash=CONFIG_HASH)


@pytest.fixture(scope="module")
def collected(runs):
    root, manifest = runs
    return aggregate.collect(manifest)


def write_collected(manifest, scores_csv, status_csv):
    """scores.csv and run_status.csv of the manifest's runs, as the aggregate command writes
    them."""
    assert aggregate.main(["--manifest", str(manifest), "--out", str(scores_csv),
                           "--status-out", str(status_csv)]) == 0


def provenance_of(status_df, manifest, module="analysis.benchmark.figures"):
    """The provenance the figure command gives its outputs."""
    return stats.provenance_of(load_manifest(manifest), status_df, module)


# ---------------------------------------------------------------------------------------------
# (a) collect()
# ---------------------------------------------------------------------------------------------

def test_collect_statuses(collected):
    scores, status = collected
    other = status[status["status"] == "not in config"]
    assert len(other) == 1 and other["path"].iloc[0].endswith("ffffffffffff/seed0")
    assert "not asked for by this configuration" in other["detail"].iloc[0]
    status = status[status["status"] != "not in config"]
    assert len(status) == 3 * 3 * 5 + 2
    assert not status.duplicated(["algo", "task", "seed"]).any()
    st = status.set_index(["algo", "task", "seed"])
    assert st.loc[("random", "hopper_hop", 4), "status"] == "missing"
    assert st.loc[("sac", "walker_walk", 2), "status"] == "diverged"
    assert "non-finite critic loss" in st.loc[("sac", "walker_walk", 2), "detail"]
    assert st.loc[("sac", "hopper_hop", 0), "status"] == "running"
    assert st.loc[("qsm", "cheetah_run", 3), "status"] == "invalid"
    assert "eval.csv" in st.loc[("qsm", "cheetah_run", 3), "detail"]
    counts = status["status"].value_counts().to_dict()
    assert counts == {"complete": 43, "diverged": 1, "running": 1, "missing": 1, "invalid": 1}
    assert set(status.loc[status["task"] == "toy_bandit", "role"]) == {"audit"}
    assert (status.loc[status["status"] == "complete", "budget_steps"] == 10_000).all()


def test_collect_scores(collected):
    scores, status = collected
    assert list(scores.columns) == aggregate.SCORE_COLUMNS
    keys = set(map(tuple, scores[["algo", "task", "seed"]].drop_duplicates().to_numpy()))
    assert ("qsm", "cheetah_run", 3) not in keys      # invalid
    assert ("random", "hopper_hop", 4) not in keys    # missing
    assert ("sac", "hopper_hop", 0) not in keys       # running
    assert ("sac", "walker_walk", 2) in keys          # diverged runs keep their evaluations
    assert len(keys) == 44
    qsm0 = scores[(scores.algo == "qsm") & (scores.task == "cheetah_run") & (scores.seed == 0)]
    assert qsm0["normalized"].iloc[-1] > 0.5  # the listed run (0.8), not the other config's (0.1)
    finite = scores[np.isfinite(scores["return"])]
    np.testing.assert_allclose(finite["normalized"], finite["return"] / 1000.0)


def test_collect_never_crashes_on_empty_or_odd_trees(tmp_path):
    root = tmp_path / "does_not_exist"
    scores, status = aggregate.collect(write_manifest(tmp_path / "m1.json", root,
                                                      [("qsm", "t", 0, "benchmark")]))
    assert len(scores) == 0 and status["status"].tolist() == ["missing"]
    seed_dir(tmp_path, "a", "t", 0).mkdir(parents=True)          # no files at all
    seed_dir(tmp_path, "a", "t", 1).mkdir(parents=True)
    (seed_dir(tmp_path, "a", "t", 1) / "config.json").write_text("{not json")
    (seed_dir(tmp_path, "a", "t", 1) / "status.json").write_text('{"status": "complete"}')
    scores, status = aggregate.collect(write_manifest(
        tmp_path / "m2.json", tmp_path, [("a", "t", 0, "benchmark"), ("a", "t", 1, "benchmark")]))
    assert status["status"].tolist() == ["invalid", "invalid"]
    assert "config.json: is missing" in status["detail"].iloc[0]
    assert "config.json: is not valid JSON" in status["detail"].iloc[1]
    assert status["seed"].tolist() == [0, 1] and set(status["algo"]) == {"a"}


def test_final_score_definition(collected):
    scores, status = collected
    fin = aggregate.final_scores(scores)
    row = fin.set_index(["algo", "task", "seed"]).loc[("qsm", "walker_walk", 0)]
    last = scores[(scores.algo == "qsm") & (scores.task == "walker_walk") & (scores.seed == 0)]
    assert row["final_return"] == last["return"].iloc[-1]
    assert row["final_step"] == 10_000
    div = fin.set_index(["algo", "task", "seed"]).loc[("sac", "walker_walk", 2)]
    assert div["status"] == "diverged" and div["final_normalized"] == 0.0
    assert div["last_finite_step"] == 6000 and np.isfinite(div["last_finite_return"])
    alt = aggregate.final_scores(scores, policy="last_finite")
    alt_div = alt.set_index(["algo", "task", "seed"]).loc[("sac", "walker_walk", 2)]
    assert alt_div["final_return"] == div["last_finite_return"]
    assert "LAST" in aggregate.FINAL_SCORE_DEFINITION


def test_collect_refuses_a_directory_that_holds_another_run(runs, tmp_path):
    root, _ = runs
    manifest = write_manifest(tmp_path / "m.json", root, [("sac", "cheetah_run", 1, "benchmark"),
                                                         ("sac", "cheetah_run", 2, "benchmark")])
    d = seed_dir(root, "sac", "cheetah_run", 1)
    wrong = tmp_path / "wrong"
    import shutil
    shutil.copytree(seed_dir(root, "sac", "cheetah_run", 2), wrong)
    obj = json.loads((wrong / "config.json").read_text())
    text = json.dumps({**obj, "run_id": "aaaaaaaaaaaa"})
    (wrong / "config.json").write_text(text)
    m = json.loads(manifest.read_text())
    m["runs"][1]["path"] = str(wrong)
    manifest.write_text(json.dumps(m))
    scores, status = aggregate.collect(manifest)
    st = status[status["status"] != "not in config"].set_index(["algo", "task", "seed"])
    assert st.loc[("sac", "cheetah_run", 1), "status"] == "complete" and d.is_dir()
    assert st.loc[("sac", "cheetah_run", 2), "status"] == "invalid"
    assert "but the configuration asks for" in st.loc[("sac", "cheetah_run", 2), "detail"]
    assert set(scores["seed"]) == {1}


def test_aggregate_cli(runs, tmp_path):
    root, manifest = runs
    out, st = tmp_path / "scores.csv", tmp_path / "run_status.csv"
    assert aggregate.main(["--manifest", str(manifest), "--out", str(out),
                           "--status-out", str(st)]) == 0
    scores = aggregate.read_scores(out)
    status = aggregate.read_status(st)
    s2, st2 = aggregate.collect(manifest)
    assert len(scores) == len(s2) and len(status) == len(st2)
    assert (status["status"].to_numpy() == st2["status"].to_numpy()).all()


# ---------------------------------------------------------------------------------------------
# stats on the collected runs
# ---------------------------------------------------------------------------------------------

def test_stats_on_collected_runs(collected):
    scores, status = collected
    res = stats.compute_all(scores, status, reps=REPS, seed=0)
    m = res.matrices
    assert m.tasks == sorted(TASKS)                       # toy task excluded
    assert "toy_bandit" in m.excluded_tasks
    # qsm lost cheetah_run/seed3 (invalid) -> 4 seeds on every task, seed4 dropped elsewhere
    assert m.matrices["qsm"].shape == (4, 3)
    assert ("hopper_hop", 4) in m.dropped["qsm"]
    assert m.matrices["sac"].shape == (4, 3)               # running seed on hopper_hop
    assert m.matrices["random"].shape == (4, 3)            # missing seed on hopper_hop
    iqm = res.aggregate[res.aggregate.metric == "iqm"].set_index("algo")["estimate"]
    assert iqm["qsm"] > iqm["sac"] > iqm["random"]
    assert abs(iqm["qsm"] - 0.8) < 0.05 and abs(iqm["random"] - 0.2) < 0.05
    assert (res.aggregate["ci_low"] <= res.aggregate["estimate"] + 1e-12).all()
    assert (res.aggregate["estimate"] <= res.aggregate["ci_high"] + 1e-12).all()
    assert set(res.aggregate["n_runs"]) == {12} and set(res.aggregate["n_tasks"]) == {3}
    poi = res.poi.set_index("algo_y")
    assert poi.loc["random", "estimate"] == 1.0
    assert set(res.iqm_curve["step"]) == set(STEPS.tolist())
    assert "1 diverged" in res.markdown and "1 invalid" in res.markdown
    assert "1 missing" in res.markdown and "toy_bandit" in res.markdown


def test_stats_cli_is_deterministic(runs, tmp_path):
    root, manifest = runs
    sc, st = tmp_path / "scores.csv", tmp_path / "status.csv"
    write_collected(manifest, sc, st)
    outs = []
    for k in range(2):
        out = tmp_path / f"tables{k}"
        np.random.seed(1234 + k)  # the caller's global RNG must not matter
        assert stats.main(["--manifest", str(manifest), "--scores", str(sc), "--status", str(st),
                           "--outdir", str(out), "--reps", str(REPS), "--seed", "3"]) == 0
        outs.append(out)
    for name in ("aggregate.csv", "probability_of_improvement.csv", "iqm_curve.csv",
                 "final_scores.md", "performance_profile.csv", "final_scores.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
        sidecars = [sidecar_path(out / name).read_bytes() for out in outs]
        assert sidecars[0] == sidecars[1], name
    agg = pd.read_csv(outs[0] / "aggregate.csv")
    assert {"algo", "metric", "estimate", "ci_low", "ci_high", "n_runs", "n_tasks"} <= set(agg)


# ---------------------------------------------------------------------------------------------
# (b) synthetic matrices against rliable called directly
# ---------------------------------------------------------------------------------------------

def _synthetic_matrices():
    rng = np.random.default_rng(7)
    return {"A": np.clip(0.8 + 0.05 * rng.standard_normal((5, 4)), 0, 1),
            "B": np.clip(0.5 + 0.05 * rng.standard_normal((5, 4)), 0, 1),
            "C": np.clip(0.2 + 0.05 * rng.standard_normal((3, 4)), 0, 1)}


def test_aggregate_metrics_match_rliable_exactly():
    mats = _synthetic_matrices()
    seed = 11
    got = stats.aggregate_metrics(mats, reps=REPS, seed=seed)
    for algo, m in mats.items():
        np.random.seed(seed)
        points, intervals = rly.get_interval_estimates({algo: m}, bootstrap.aggregate_func,
                                                       reps=REPS)
        g = got[got["algo"] == algo].set_index("metric")
        for j, metric in enumerate(bootstrap.METRICS):
            assert g.loc[metric, "estimate"] == points[algo][j]
            assert g.loc[metric, "ci_low"] == intervals[algo][0, j]
            assert g.loc[metric, "ci_high"] == intervals[algo][1, j]
    iqm = got[got.metric == "iqm"].set_index("algo")["estimate"]
    assert abs(iqm["A"] - 0.8) < 0.05 and abs(iqm["B"] - 0.5) < 0.05
    # an algorithm's intervals do not depend on which other algorithms are present
    alone = stats.aggregate_metrics({"B": mats["B"]}, reps=REPS, seed=seed)
    pd.testing.assert_frame_equal(alone.reset_index(drop=True),
                                  got[got.algo == "B"].reset_index(drop=True))


def test_probability_of_improvement_matches_rliable():
    mats = _synthetic_matrices()
    got = stats.probability_of_improvement(mats, reference="A", reps=REPS, seed=5)
    assert list(got["algo_y"]) == ["B", "C"]
    for _, r in got.iterrows():
        np.random.seed(5)
        p, ci = rly.get_interval_estimates({"x": [mats["A"], mats[r["algo_y"]]]},
                                           metrics.probability_of_improvement, reps=REPS)
        assert r["estimate"] == p["x"] and r["ci_low"] == np.ravel(ci["x"])[0]
        assert r["ci_high"] == np.ravel(ci["x"])[1]
        assert r["estimate"] == pytest.approx(1.0) and r["ci_low"] > 0.95
    reverse = stats.probability_of_improvement(mats, reference="C", reps=REPS, seed=5)
    assert (reverse["estimate"] == 0.0).all()
    assert stats.probability_of_improvement(mats, reference="absent", reps=REPS).empty


def test_performance_profile_matches_rliable():
    mats = _synthetic_matrices()
    taus = np.linspace(0, 1, 21)
    prof = stats.performance_profiles(mats, taus=taus, reps=REPS, seed=2)
    for algo, m in mats.items():
        np.random.seed(2)
        p, ci = rly.create_performance_profile({algo: m}, taus, reps=REPS)
        g = prof[prof.algo == algo]
        assert (g["fraction"].to_numpy() == p[algo]).all()
        assert (g["ci_low"].to_numpy() == ci[algo][0]).all()
        assert (g["ci_high"].to_numpy() == ci[algo][1]).all()


def test_iqm_curves_match_rliable_on_the_curve_arrays(collected):
    scores, status = collected
    mset = stats.build_matrices(stats.final_score_table(scores, status))
    got = stats.iqm_curves(scores, mset, reps=REPS, seed=4)
    steps, arrays = stats.curve_arrays(scores, mset)
    assert sorted(arrays) == sorted(mset.algos) and steps.size
    for algo, arr in arrays.items():
        np.random.seed(4)
        p, ci = rly.get_interval_estimates({algo: arr}, bootstrap.iqm_over_steps, reps=REPS)
        g = got[got.algo == algo]
        assert (g["step"].to_numpy() == steps).all() and (g["iqm"].to_numpy() == p[algo]).all()
        assert (g["ci_low"].to_numpy() == ci[algo][0]).all()
        assert (g["ci_high"].to_numpy() == ci[algo][1]).all()


def _final_rows(n_by_algo_task, role_of=lambda task: "benchmark"):
    rows = []
    for algo, n_by_task in n_by_algo_task.items():
        for task, n in n_by_task.items():
            for s in range(n):
                rows.append({"algo": algo, "task": task, "seed": s, "role": role_of(task),
                             "status": "complete", "final_normalized": 0.5 + 0.01 * s,
                             "final_return": 500.0 + 10 * s})
    return pd.DataFrame(rows)


def test_unequal_seeds_and_partial_tasks():
    final = _final_rows({"qsm": {"t1": 5, "t2": 3, "t3": 5, "x_audit": 2},
                         "newbaseline": {"t1": 4, "t2": 4}},
                        role_of=lambda task: "audit" if task == "x_audit" else "benchmark")
    m = stats.build_matrices(final)
    assert m.tasks == ["t1", "t2"]
    assert set(m.excluded_tasks) == {"t3", "x_audit"}
    assert "audit task" in m.excluded_tasks["x_audit"]
    assert "not run by every algorithm" in m.excluded_tasks["t3"]
    assert m.matrices["qsm"].shape == (3, 2) and m.matrices["newbaseline"].shape == (4, 2)
    assert m.dropped["qsm"] == [("t1", 3), ("t1", 4)]
    assert m.seeds["qsm"]["t1"] == [0, 1, 2]
    assert "shared by all" in m.describe() and "t3" in m.describe()


def test_fixed_aggregate_tasks_leave_out_an_algorithm_that_lacks_one_and_the_other_tasks():
    """stats.tasks: the official learner runs on two tasks only; the aggregate over the six keeps
    its tasks and leaves that algorithm out, named, instead of shrinking to the tasks it has."""
    final = _final_rows({"qsm": {"t1": 3, "t2": 3, "demo": 5}, "sac": {"t1": 3, "t2": 3, "demo": 5},
                         "official": {"t1": 3, "demo": 5}}, role_of=lambda task: "benchmark")
    assert stats.build_matrices(final).tasks == ["demo", "t1"]  # the default: shared tasks
    m = stats.build_matrices(final, tasks=["t1", "t2"])
    assert m.tasks == ["t1", "t2"] and sorted(m.matrices) == ["qsm", "sac"]
    assert "no scored run on t2" in m.excluded_algos["official"]
    assert "not among the aggregated tasks" in m.excluded_tasks["demo"]


def test_aggregates_use_benchmark_runs_by_role_not_by_name():
    """The role from the manifest decides: a benchmark task named like a toy enters the
    aggregates; an audit task with a benchmark-like name does not."""
    roles = {"toy_like_benchmark": "benchmark", "cheetah_run": "audit", "walker_walk": "benchmark"}
    final = _final_rows({a: {t: 3 for t in roles} for a in ("qsm", "sac")}, roles.get)
    m = stats.build_matrices(final)
    assert m.tasks == ["toy_like_benchmark", "walker_walk"]
    assert set(m.excluded_tasks) == {"cheetah_run"}
    res = stats.compute_all(final.assign(step=100, normalized=final["final_normalized"],
                                         **{"return": final["final_return"]}),
                            reps=20, seed=0)
    assert set(res.aggregate["n_tasks"]) == {2}
    assert not any(t == "cheetah_run" for ts in res.aggregate["tasks"] for t in ts.split(";"))


def test_every_analysis_gives_a_run_the_same_status(runs):
    """One manifest reader (analysis.records.manifest.read_runs): the scores, the diagnostics, the
    audit and the profiles report every listed run with the same status, bad runs included."""
    from analysis.training import diagnostics, profile
    from analysis.audit.load import load_entries
    _, manifest = runs
    _, status = aggregate.collect(manifest)
    status = status[status["status"] != "not in config"]
    expected = dict(zip(status["path"], status["status"]))
    assert {"missing", "invalid", "running", "diverged", "complete"} <= set(expected.values())
    assert {r.entry.path: r.status for r in diagnostics.collect(manifest)} == expected
    assert {e.path: e.status for e in load_entries(manifest)} == expected
    seen = {}
    profile.block_timings(manifest, "benchmark", status=seen)
    benchmark = set(status.loc[status["role"] == "benchmark", "path"])
    assert seen == {p: s for p, s in expected.items() if p in benchmark}


# ---------------------------------------------------------------------------------------------
# (c) the figure CLI
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline_outputs(runs, tmp_path_factory):
    """aggregate, then the stats command (tables), then the figure command (figures from the
    tables), as the pipeline's rules run them."""
    root, manifest = runs
    out = tmp_path_factory.mktemp("pipeline")
    tables, figures_dir = out / "tables", out / "figures"
    write_collected(manifest, tables / "scores.csv", tables / "run_status.csv")
    for command in (["analysis.benchmark.stats", "--scores", str(tables / "scores.csv"),
                     "--status", str(tables / "run_status.csv"), "--outdir", str(tables),
                     "--reps", str(REPS), "--reference", "qsm", "--seed", "0"],
                    ["analysis.benchmark.figures", "--tables", str(tables), "--outdir",
                     str(figures_dir)]):
        proc = subprocess.run([sys.executable, "-m", *command, "--manifest", str(manifest)],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    return manifest, tables, figures_dir


def test_the_tables_read_back_are_the_statistics_written(collected, runs, tmp_path):
    """The figures draw what the stats step computed: every table, read back, equals the
    computed frame (to the 16 significant digits a CSV keeps), and the score matrices rebuilt
    from final_scores.csv are the computed ones."""
    scores, status = collected
    status = status[status["status"] != "not in config"]
    result = stats.compute_all(scores, status, reps=REPS, seed=0)
    stats.write_tables(result, tmp_path, provenance_of(status, runs[1], "analysis.benchmark.stats"))
    back = stats.read_tables(tmp_path)
    for attr in ("aggregate", "poi", "profile", "iqm_curve", "curves"):
        pd.testing.assert_frame_equal(back.__dict__[attr], getattr(result, attr),
                                      check_dtype=False, rtol=1e-14, atol=0, obj=attr)
    assert len(result.curves) and set(result.curves["task"]) == set(scores["task"])
    assert back.markdown == result.markdown and back.params == result.params
    assert back.matrices.seeds == result.matrices.seeds
    assert back.matrices.excluded_tasks == result.matrices.excluded_tasks
    for algo, matrix in result.matrices.matrices.items():
        np.testing.assert_allclose(back.matrices.matrices[algo], matrix, rtol=1e-14, atol=0)


def test_figures_cli_writes_png_and_pdf(pipeline_outputs):
    from analysis.benchmark import figures
    _, tables, outdir = pipeline_outputs
    for name in figures.FIGURE_NAMES:
        for ext in ("png", "pdf"):
            f = outdir / f"{name}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
    assert (tables / "aggregate.csv").is_file()


def test_figure_labels_and_colours(collected):
    from analysis import plotting
    scores, status = collected
    assert plotting.run_label("sac", status, ["walker_walk"]) == "sac (5/5 seeds; 1 diverged)"
    assert plotting.run_label("random", status, ["hopper_hop"]) == "random (4/5 seeds; 1 missing)"
    assert plotting.algo_color("qsm") == plotting.PALETTE["qsm"]
    assert plotting.algo_color("brand_new") == plotting.algo_color("brand_new")
    assert plotting.step_budget_text(status, scores) == "step budget 10,000 environment steps"


def test_figures_survive_empty_and_audit_only_data(runs, collected, tmp_path):
    from analysis.benchmark import figures
    scores, status = collected
    empty_manifest = write_manifest(tmp_path / "m.json", tmp_path / "no_runs", [])
    empty_scores, empty_status = aggregate.collect(empty_manifest)
    toy = scores[scores["task"] == "toy_bandit"], status[status["task"] == "toy_bandit"]
    for k, (sc, st, manifest) in enumerate([(empty_scores, empty_status, empty_manifest),
                                            (*toy, runs[1])]):
        result = stats.compute_all(sc, st, reps=20)
        paths = figures.make_figures(result, sc, st, tmp_path / f"f{k}",
                                     provenance_of(st, manifest))
        assert result.aggregate.empty and result.poi.empty
        assert len(paths) == 2 * len(figures.FIGURE_NAMES)
        assert all(p.stat().st_size > 0 for p in paths)


# ---------------------------------------------------------------------------------------------
# (d) provenance: sidecars of the tables, footers and metadata of the figures
# ---------------------------------------------------------------------------------------------

STATS_TABLES = ("aggregate.csv", "probability_of_improvement.csv", "performance_profile.csv",
                "iqm_curve.csv", "learning_curves.csv", "final_scores.csv", "final_scores.md")


def _listed(manifest):
    obj = json.loads(manifest.read_text())
    return obj, {r["path"]: r for r in obj["runs"] if r["role"] in ("benchmark", "audit")}


def test_every_table_has_a_sidecar_that_matches_the_manifest(pipeline_outputs, collected):
    from qsm.contract.identity import code_version
    manifest, tables, _ = pipeline_outputs
    obj, listed = _listed(manifest)
    _, status = collected
    status = status[status["status"] != "not in config"]
    expected_status = dict(zip(status["path"], status["status"]))
    for name, module in [("scores.csv", "analysis.benchmark.aggregate"),
                         ("run_status.csv", "analysis.benchmark.aggregate")] + \
            [(name, "analysis.benchmark.stats") for name in STATS_TABLES]:
        side = json.loads(sidecar_path(tables / name).read_text())
        assert side["output"] == name
        assert side["config_hash"] == CONFIG_HASH == obj["config_hash"]
        assert side["manifest"] == {"path": str(manifest), "digest": hash_of(obj)}
        assert side["analysis"] == {"module": module, "code_version": code_version([module])}
        assert side["training_code"] == {a: ["test"] for a in ("qsm", "random", "sac")}
        assert side["n_runs"] == len(listed) == len(side["runs"])
        assert {r["path"]: r["status"] for r in side["runs"]} == expected_status
        assert side["by_status"] == status["status"].value_counts().to_dict()
        for r in side["runs"]:  # every run traceable to its directory and identity
            assert {k: r[k] for k in listed[r["path"]]} == listed[r["path"]]
        assert side["n_used"] == sum(r["used"] for r in side["runs"])


def test_sidecars_mark_the_runs_each_table_used(pipeline_outputs):
    manifest, tables, _ = pipeline_outputs

    def used(name):
        side = json.loads(sidecar_path(tables / name).read_text())
        return {(r["algo"], r["task"], r["seed"]) for r in side["runs"] if r["used"]}

    agg = used("aggregate.csv")
    assert len(agg) == 3 * 4 * 3          # the matrices: 4 seeds x 3 tasks per algorithm
    assert not any(t == "toy_bandit" for _, t, _ in agg)             # audit role
    assert ("qsm", "cheetah_run", 3) not in agg                      # invalid
    assert ("qsm", "walker_walk", 4) not in agg                      # dropped (rectangular)
    assert used("probability_of_improvement.csv") == agg == used("iqm_curve.csv")
    final = used("final_scores.md")
    assert len(final) == 44 and ("qsm", "toy_bandit", 0) in final    # scored runs, audit too
    assert used("learning_curves.csv") == final
    assert ("sac", "walker_walk", 2) in final                        # diverged runs score
    assert ("sac", "hopper_hop", 0) not in final                     # running
    assert len(used("scores.csv")) == 44 and len(used("run_status.csv")) == 3 * 3 * 5 + 2
    side = json.loads(sidecar_path(tables / "run_status.csv").read_text())
    assert side["not_in_config"] == 1


def test_figures_carry_the_provenance_in_caption_and_metadata(pipeline_outputs):
    from PIL import Image

    from analysis.benchmark import figures
    manifest, _, figures_dir = pipeline_outputs
    prov = stats.provenance_of(load_manifest(manifest), None, "analysis.benchmark.figures")
    footer = prov.footer()
    assert footer.startswith(f"config {CONFIG_HASH[:8]} · 47 runs (benchmark, audit) · code ")
    assert "qsm test, random test, sac test" in footer and footer.endswith(prov.code[:8])
    for name in figures.FIGURE_NAMES:
        meta = Image.open(figures_dir / f"{name}.png").text
        assert meta["Description"] == footer, name
        summary = json.loads(meta["Provenance"])
        assert summary["config_hash"] == CONFIG_HASH and summary["n_runs"] == 47
        assert summary["run_dirs"]["qsm/cheetah_run"] == ["0123456789ab"]
        pdf = (figures_dir / f"{name}.pdf").read_bytes()
        assert f'"config_hash":"{CONFIG_HASH}"'.encode() in pdf, name
    assert json.loads(Image.open(figures_dir / "aggregate_metrics.png").text["Provenance"])[
        "n_used"] == 36


def test_a_figure_without_the_footer_is_refused(tmp_path, runs):
    import matplotlib.pyplot as plt

    from analysis.records.outputs import write_figure
    prov = stats.provenance_of(load_manifest(runs[1]), None, "analysis.benchmark.figures")
    fig = plt.figure()
    fig.text(0, 0, "a caption without provenance")
    with pytest.raises(ValueError, match="no provenance footer"):
        write_figure(fig, tmp_path, "aggregate_metrics", prov, "a caption without provenance")
    assert not list(tmp_path.iterdir())
    fig = plt.figure()
    from analysis.plotting import caption_with_footer
    fig.text(0, 0, caption_with_footer("a caption", prov, width=40))  # wrapped footer is fine
    assert [p.name for p in write_figure(fig, tmp_path, "aggregate_metrics", prov, "a caption")] \
        == ["aggregate_metrics.png", "aggregate_metrics.pdf"]


def test_report_captions_get_the_figures_footer_before_anything_runs(runs):
    """The pipeline computes the footer from the manifest it is about to write (DAG time); the
    commands compute it from the manifest file. They must agree, word for word."""
    from analysis.records.provenance import Provenance, footer_of_manifest
    manifest = runs[1]
    obj = json.loads(manifest.read_text())
    for roles, module in ((("benchmark", "audit"), "analysis.benchmark.figures"),
                          (("benchmark",), "analysis.training.profile")):
        assert footer_of_manifest(obj, roles, module) == \
            Provenance.of(load_manifest(manifest), roles, module).footer()
    # the report's table captions show that footer (the figures' captions end with their own)
    from analysis.records import catalogue
    for row in catalogue.OUTPUTS:
        for table in row.reported:
            assert "{{ snakemake.params.provenance }}" in catalogue.report_caption(table), table


def test_figures_are_byte_reproducible(pipeline_outputs, tmp_path):
    """Drawn again in another process, from the tables the pipeline wrote, a figure has the same
    bytes (no timestamps; nothing random is drawn)."""
    from analysis.benchmark import figures
    manifest, tables, figures_dir = pipeline_outputs
    scores, status = stats.load_inputs(tables / "scores.csv", tables / "run_status.csv")
    np.random.seed(7)  # the global RNG state must not matter
    paths = figures.plot_learning_curves(stats.read_tables(tables), scores, status, tmp_path,
                                         provenance_of(status, manifest))
    assert [p.name for p in paths] == ["learning_curves.png", "learning_curves.pdf"]
    for path in paths:
        assert path.read_bytes() == (figures_dir / path.name).read_bytes(), path.name
