"""Tests of analysis.audit on synthetic run directories whose probe actions have known modes."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import audit, stats
from analysis.provenance import sidecar_path
from contract import run_config, seed_dir, write_manifest
from qsm.rundir import TIMING_PHASES, SeedRunWriter

REPO = Path(__file__).resolve().parents[1]
REPS = 200
P, N = 4, 400  # probe states, samples per state (small: the file must stay fast)


# ---------------------------------------------------------------------------------------------
# Synthetic runs
# ---------------------------------------------------------------------------------------------

def mixture(rng, centres, sd, n):
    """n samples from an equal-weight Gaussian mixture, clipped to [-1, 1]."""
    centres = np.atleast_2d(np.asarray(centres, dtype=float))
    k = rng.integers(0, len(centres), size=n)
    return np.clip(centres[k] + rng.normal(0.0, sd, size=(n, centres.shape[1])), -1, 1)


# Per (algo, task): a sampler rng -> (N, act_dim) behaviour samples, and the true mode count.
# Known optima come from config.json alone: "pair_bandit" has them under a name without the toy
# prefix; "toy_plain" has the prefix but no optima.
DIM = {"toy_bimodal": 1, "toy_quadmodal": 2, "cheetah_run": 6, "pair_bandit": 1, "toy_plain": 1}
BEHAVIOUR = {
    ("qsm", "toy_bimodal"): (lambda r: mixture(r, [[-0.5], [0.5]], 0.05, N), 2),
    ("sac", "toy_bimodal"): (lambda r: mixture(r, [[0.5]], 0.08, N), 1),
    ("qsm", "toy_quadmodal"): (lambda r: mixture(r, [[-.5, -.5], [-.5, .5], [.5, -.5], [.5, .5]],
                                                 0.05, N), 4),
    ("qsm", "cheetah_run"): (lambda r: mixture(r, [np.full(6, -0.5), np.full(6, 0.5)], 0.08, N), 2),
    ("sac", "cheetah_run"): (lambda r: mixture(r, [np.zeros(6)], 0.15, N), 1),
    # mu + N(0, 0.1) with mu at 0.97 in the first dimension: a mode piled up at the bound +1
    ("td3", "cheetah_run"): (lambda r: mixture(r, [[0.97, 0, 0, 0, 0, 0]], 0.1, N), 1),
    ("qsm", "pair_bandit"): (lambda r: mixture(r, [[-0.3], [0.6]], 0.05, N), 2),
    ("qsm", "toy_plain"): (lambda r: mixture(r, [[0.1]], 0.1, N), 1),
}
SEEDS = {"toy_bimodal": (0, 1, 2), "toy_quadmodal": (0,), "cheetah_run": (0, 1),
         "pair_bandit": (0, 1), "toy_plain": (0,)}
OPTIMA = {"toy_bimodal": [[-0.5], [0.5]],
          "toy_quadmodal": [[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]],
          "pair_bandit": [[-0.3], [0.6]]}
STATES = {task: np.random.default_rng(7).uniform(-1, 1, size=(P, 3)) for task in DIM}


def write_run(root, algo, task, seed, status="complete"):
    """One seed directory following the run-directory contract, with known probe actions."""
    w = SeedRunWriter(seed_dir(root, algo, task, seed))
    rng = np.random.default_rng(zlib.crc32(f"{algo}/{task}/{seed}".encode()))
    w.write_config(run_config(algo, task, seed, act_dim=DIM[task], optima=OPTIMA.get(task)))
    for step in (0, 500, 1000):
        w.add_eval(step, [1.0, 2.0], wall_time_s=float(step))
    w.write_timing([{"phase": p, "calls": 1, "total_s": 1.0, "env_steps": 1000, "block_size": 1,
                     "device": "cpu"} for p in TIMING_PHASES])
    sampler, _ = BEHAVIOUR[(algo, task)]
    behaviour = np.stack([sampler(rng) for _ in range(P)])
    if algo == "td3":  # deterministic policy: a point mass at mu
        policy = np.broadcast_to(np.array([0.97, 0, 0, 0, 0, 0]), behaviour.shape).copy()
    else:
        policy = behaviour
    w.write_probe_actions(STATES[task], policy, behaviour)
    w.write_status(status, 1000, "" if status == "complete" else "stopped early")
    return w.dir


def role(task):
    return "benchmark" if task == "cheetah_run" else "audit"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runs and the manifest that lists them."""
    root = tmp_path_factory.mktemp("runs")
    listed = []
    for (algo, task) in BEHAVIOUR:
        for seed in SEEDS[task]:
            write_run(root, algo, task, seed)
            listed.append((algo, task, seed, role(task)))
    # an invalid run (mangled probe file) and one still running: listed, never audited
    bad = write_run(root, "sac", "toy_bimodal", 3)
    (bad / "probe_actions.npz").write_bytes(b"not a zip file")
    write_run(root, "qsm", "cheetah_run", 5, status="running")
    # a seed directory without config.json at all
    seed_dir(root, "td3", "toy_bimodal", 0).mkdir(parents=True)
    listed += [("sac", "toy_bimodal", 3, "audit"), ("qsm", "cheetah_run", 5, "benchmark"),
               ("td3", "toy_bimodal", 0, "audit")]
    return write_manifest(root / "manifest.json", root, listed, config_hash=CONFIG_HASH)


CONFIG_HASH = "a0d1e2f3c4b5"


@pytest.fixture(scope="module")
def cli_out(runs, tmp_path_factory):
    """The command line exactly as the Snakemake rule calls it (with fewer bootstrap reps)."""
    out = tmp_path_factory.mktemp("audit")
    cmd = [sys.executable, "-m", "analysis.audit", "--manifest", str(runs),
           "--tables", str(out / "tables"), "--figures", str(out / "figures"),
           "--distribution", "behaviour", "--histogram-states", "2", "--reps", str(REPS),
           "--seed", "0"]
    from conftest import python_env
    res = subprocess.run(cmd, cwd=REPO, env=python_env(), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    tables = {name: pd.read_csv(out / "tables" / name, keep_default_na=True)
              for name in audit.TABLE_NAMES}
    return out, tables, res.stderr


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------

def test_cli_writes_every_output(cli_out):
    out, tables, _ = cli_out
    for name in audit.TABLE_NAMES:
        assert (out / "tables" / name).stat().st_size > 0
    for name in audit.FIGURE_NAMES:
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 1000, (name, ext)
    assert list(tables["modes.csv"].columns) == audit.MODES_COLUMNS
    assert list(tables["modes_summary.csv"].columns) == audit.SUMMARY_COLUMNS
    assert list(tables["kl.csv"].columns) == audit.KL_COLUMNS
    assert list(tables["toy_optima.csv"].columns) == audit.toy_columns(4)  # quadmodal: 4


def test_mode_counts_match_truth(cli_out):
    modes = cli_out[1]["modes.csv"]
    ok = modes[modes["status"] == "complete"]
    assert len(ok) == sum(P * len(SEEDS[t]) for (_, t) in BEHAVIOUR)
    for (algo, task), (_, truth) in BEHAVIOUR.items():
        got = ok[(ok["algo"] == algo) & (ok["task"] == task)]["n_modes"]
        assert len(got) == P * len(SEEDS[task])
        assert (got == truth).mean() >= 0.9, (algo, task, got.tolist())
    # the TD3-like distribution has its mode at the bound +1; the interior mixtures do not
    td3 = ok[(ok["algo"] == "td3")]
    assert (td3["n_bound_modes"] >= 1).mean() >= 0.75, td3["n_bound_modes"].tolist()
    inner = ok[(ok["algo"] == "qsm") & (ok["task"] == "toy_bimodal")]
    assert (inner["n_bound_modes"] == 0).all()
    assert np.isfinite(ok["kl_gaussian_fit"]).all()


def test_bad_runs_are_listed_not_audited(cli_out):
    modes = cli_out[1]["modes.csv"]
    assert not modes.duplicated(["algo", "task", "seed", "state"]).any()
    key = modes[modes["state"].isna()].set_index(["algo", "task", "seed"])
    assert key.index.is_unique
    bad = key.loc[("sac", "toy_bimodal", 3)]
    assert bad["status"] == "invalid" and "probe_actions.npz" in bad["detail"]
    assert pd.isna(bad["state"]) and pd.isna(bad["n_modes"])
    assert key.loc[("qsm", "cheetah_run", 5), "status"] == "running"
    assert key.loc[("td3", "toy_bimodal", 0), "status"] == "invalid"
    assert "config.json" in key.loc[("td3", "toy_bimodal", 0), "detail"]
    toy = cli_out[1]["toy_optima.csv"].set_index(["algo", "task", "seed"])
    assert toy.loc[("sac", "toy_bimodal", 3), "status"] == "invalid"
    summary = cli_out[1]["modes_summary.csv"].set_index(["algo", "task"])
    assert summary.loc[("sac", "toy_bimodal"), "n_skipped"] == 1
    assert summary.loc[("sac", "toy_bimodal"), "n_seeds"] == 3
    assert summary.loc[("td3", "toy_bimodal"), "n_seeds"] == 0


def test_modes_summary(cli_out):
    s = cli_out[1]["modes_summary.csv"].set_index(["algo", "task"])
    q = s.loc[("qsm", "toy_bimodal")]
    assert q["n_seeds"] == 3 and q["n_states"] == P and q["true_modes"] == 2
    assert q["mean_modes"] == pytest.approx(2, abs=0.2) and q["frac_multimodal"] > 0.8
    assert q["ci_low"] <= q["mean_modes"] <= q["ci_high"]
    assert s.loc[("sac", "toy_bimodal"), "mean_modes"] == pytest.approx(1, abs=0.2)
    assert s.loc[("sac", "toy_bimodal"), "frac_multimodal"] < 0.2
    single = s.loc[("qsm", "toy_quadmodal")]  # one seed: no interval, and the note says so
    assert single["n_seeds"] == 1 and single["true_modes"] == 4
    assert math.isnan(single["ci_low"]) and math.isnan(single["ci_high"])
    assert "1 seed" in single["note"]
    assert math.isnan(s.loc[("qsm", "cheetah_run"), "true_modes"])
    assert s.loc[("qsm", "pair_bandit"), "true_modes"] == 2       # optima from config.json
    assert math.isnan(s.loc[("qsm", "toy_plain"), "true_modes"])  # the name does not count


def test_toy_optima(cli_out):
    toy = cli_out[1]["toy_optima.csv"]
    ok = toy[toy["status"] == "complete"].set_index(["algo", "task", "seed"])
    for seed in SEEDS["toy_bimodal"]:
        q, s = ok.loc[("qsm", "toy_bimodal", seed)], ok.loc[("sac", "toy_bimodal", seed)]
        assert q["optima_covered"] == 2 and s["optima_covered"] == 1
        assert q["frac_opt1"] == pytest.approx(0.5, abs=0.1)
        assert s["frac_opt2"] > 0.9 and s["frac_opt1"] < 0.05
        assert math.isnan(q["frac_opt3"])
        assert q["true_modes"] == 2 and q["n_modes_median"] == 2 and s["n_modes_median"] == 1
        assert q["n_samples"] == P * N
    quad = ok.loc[("qsm", "toy_quadmodal", 0)]
    assert quad["optima_covered"] == 4 and quad["true_modes"] == 4


def test_known_optima_come_from_config_json_not_the_task_name(cli_out):
    toy = cli_out[1]["toy_optima.csv"]
    assert set(toy["task"]) == {"toy_bimodal", "toy_quadmodal", "pair_bandit"}
    pair = toy[toy["task"] == "pair_bandit"].set_index("seed")
    assert list(pair.index) == list(SEEDS["pair_bandit"])
    for seed in SEEDS["pair_bandit"]:
        row = pair.loc[seed]
        assert row["optima"] == "(-0.3) (0.6)" and row["true_modes"] == 2
        assert row["optima_covered"] == 2 and math.isnan(row["frac_opt3"])
    # runs that could not be read are listed under their task's optima, from its other runs
    bad = toy.set_index(["algo", "task", "seed"]).loc[("td3", "toy_bimodal", 0)]
    assert bad["status"] == "invalid" and bad["optima"] == "(-0.5) (0.5)"


def test_the_audit_does_not_import_the_environments():
    """The contract is the only coupling: what the audit knows of a task comes from its runs."""
    from qsm.identity import closure
    modules = closure(["analysis.audit"])
    assert "analysis.audit.load" in modules and "analysis.stats" in modules
    assert not [m for m in modules if m.startswith("qsm.") and m not in ("qsm.rundir",
                                                                          "qsm.identity")]


def test_kl_rows(cli_out):
    kl = cli_out[1]["kl.csv"]
    kl["other_algo"] = kl["other_algo"].fillna("")
    g = kl[kl["kind"] == "gaussian_fit"].set_index(["algo", "task"])
    audited = {k for k in BEHAVIOUR}
    assert audited <= set(g.index)
    assert (g.loc[list(audited), "other_algo"] == "").all()
    # a well-separated bimodal mixture is far from its Gaussian fit; a Gaussian is not
    assert (g.loc[("qsm", "toy_bimodal"), "estimate"]
            > g.loc[("sac", "toy_bimodal"), "estimate"] + 0.3)
    assert g.loc[("qsm", "toy_bimodal"), "n_seeds"] == 3
    b = kl[kl["kind"] == "between_algos"]
    pairs = set(zip(b["algo"], b["other_algo"], b["task"]))
    expected = {("qsm", "sac", "toy_bimodal"), ("sac", "qsm", "toy_bimodal")}
    expected |= {(a, o, "cheetah_run") for a in ("qsm", "sac", "td3")
                 for o in ("qsm", "sac", "td3") if a != o}
    assert pairs == expected  # the other tasks have a single algorithm: no pair
    r = b.set_index(["algo", "other_algo", "task"]).loc[("qsm", "sac", "toy_bimodal")]
    assert r["n_seeds"] == 3 and r["estimate"] > 0.3
    assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
    two = b.set_index(["algo", "other_algo", "task"]).loc[("qsm", "td3", "cheetah_run")]
    assert two["n_seeds"] == 2 and np.isfinite(two["estimate"])


# ---------------------------------------------------------------------------------------------
# The policy distribution (TD3 point mass), empty input, bootstrap
# ---------------------------------------------------------------------------------------------

def test_default_distribution_is_the_configs_policy(runs, tmp_path, capsys):
    """Without --distribution the audit reads the policy samples, as the pipeline config does;
    there TD3's deterministic policy is a point mass, which every estimate must handle."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config["audit"]["distribution"] == audit.DEFAULT_DISTRIBUTION == "policy"
    assert audit.main(["--manifest", str(runs), "--tables", str(tmp_path / "t"),
                       "--figures", str(tmp_path / "f"), "--histogram-states", "1",
                       "--reps", "50"]) == 0
    assert "(policy distribution)" in capsys.readouterr().err
    modes = pd.read_csv(tmp_path / "t" / "modes.csv")
    td3 = modes[(modes["algo"] == "td3") & (modes["status"] == "complete")]
    assert len(td3) == P * 2 and (td3["n_modes"] == 1).all()
    assert td3["kl_gaussian_fit"].isna().all() and td3["detail"].str.contains("point mass").all()
    kl = pd.read_csv(tmp_path / "t" / "kl.csv")
    row = kl[(kl["kind"] == "gaussian_fit") & (kl["algo"] == "td3")].iloc[0]
    assert math.isnan(row["estimate"]) and "point mass" in row["note"] and row["n_seeds"] == 0
    pair = kl[(kl["kind"] == "between_algos") & (kl["algo"] == "qsm") & (kl["other_algo"] == "td3")]
    assert pair["estimate"].isna().all() and pair["note"].str.contains("point mass").all()
    for name in audit.FIGURE_NAMES:
        assert (tmp_path / "f" / f"{name}.png").exists()


def test_no_runs_gives_empty_tables_and_no_data_figures(tmp_path):
    (tmp_path / "runs").mkdir()
    manifest = write_manifest(tmp_path / "m.json", tmp_path / "runs", [])
    paths = audit.run_audit(manifest, tmp_path / "t", tmp_path / "f", reps=10,
                            log=lambda m: None)
    assert len(paths) == len(audit.TABLE_NAMES) + 2 * len(audit.FIGURE_NAMES)
    for name, cols in zip(audit.TABLE_NAMES, (audit.MODES_COLUMNS, audit.SUMMARY_COLUMNS,
                                              audit.KL_COLUMNS, audit.toy_columns(0))):
        df = pd.read_csv(tmp_path / "t" / name)
        assert list(df.columns) == cols and len(df) == 0
        assert json.loads(sidecar_path(tmp_path / "t" / name).read_text())["n_runs"] == 0


def test_intervals_over_seeds_are_rliables(cli_out):
    """The audit's intervals are rliable's bootstrap, seeded as every interval of the analysis:
    recompute kl.csv's interval from modes.csv's per-state values with rliable called directly."""
    modes, kl = cli_out[1]["modes.csv"], cli_out[1]["kl.csv"]
    ok = modes[(modes["status"] == "complete") & modes["state"].notna()]
    per_seed = ok[(ok["algo"] == "qsm") & (ok["task"] == "toy_bimodal")].groupby("seed")[
        "kl_gaussian_fit"].mean().to_numpy()
    assert len(per_seed) == 3 and per_seed.std() > 0  # a non-degenerate interval
    np.random.seed(0)  # the CLI's --seed
    point, ci = stats.rly.get_interval_estimates({"x": per_seed[:, None]},
                                                 lambda m: np.mean(m, axis=0), reps=REPS)
    row = kl[(kl["kind"] == "gaussian_fit") & (kl["algo"] == "qsm")
             & (kl["task"] == "toy_bimodal")].iloc[0]
    assert row["estimate"] == pytest.approx(point["x"][0], rel=1e-4)  # the CSVs hold 6 digits
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(ci["x"][:, 0]), rel=1e-4)
    assert row["ci_low"] < row["estimate"] < row["ci_high"]


def test_bootstrap_mean_ci_is_rliable_on_one_task():
    values = [1.0, 2.0, 3.0, 4.0, 7.5]
    est, lo, hi = stats.bootstrap_mean_ci(values, reps=500, seed=3)
    np.random.seed(3)
    point, ci = stats.rly.get_interval_estimates({"x": np.array(values)[:, None]},
                                                 lambda m: np.mean(m, axis=0), reps=500)
    assert (est, lo, hi) == (point["x"][0], ci["x"][0, 0], ci["x"][1, 0])
    assert 1.0 <= lo < est < hi <= 7.5
    np.random.seed(99)  # the caller's global RNG state does not matter, and is kept
    state = np.random.get_state()[1].copy()
    assert stats.bootstrap_mean_ci(values, reps=500, seed=3) == (est, lo, hi)
    assert (np.random.get_state()[1] == state).all()
    est, lo, hi = stats.bootstrap_mean_ci([5.0, np.nan], reps=500, seed=0)
    assert est == 5.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in stats.bootstrap_mean_ci([], reps=10))


def test_mean_bands_are_rliable_per_block_of_runs():
    """Learning-curve bands: steps where the same runs have values form one rliable call."""
    rng = np.random.default_rng(1)
    curves = rng.normal(size=(4, 6))
    curves[3, 4:] = np.nan      # a run that diverged after step 3
    curves[1:, 5] = np.nan      # the last step: one run left, no interval
    mean, lo, hi, n = stats.mean_bands(curves, reps=300, seed=2)
    assert n.tolist() == [4, 4, 4, 4, 3, 1]
    np.testing.assert_allclose(mean, np.nanmean(curves, axis=0))
    np.random.seed(2)
    _, ci = stats.rly.get_interval_estimates({"x": curves[:, None, :4]},
                                             lambda m: np.mean(m, axis=0).ravel(), reps=300)
    assert (lo[:4] == ci["x"][0]).all() and (hi[:4] == ci["x"][1]).all()
    np.random.seed(2)
    _, ci = stats.rly.get_interval_estimates({"x": curves[:3, None, 4:5]},
                                             lambda m: np.mean(m, axis=0).ravel(), reps=300)
    assert (lo[4], hi[4]) == (ci["x"][0, 0], ci["x"][1, 0])
    assert math.isnan(lo[5]) and math.isnan(hi[5]) and mean[5] == curves[0, 5]


def test_audit_outputs_carry_their_provenance(cli_out, runs):
    from PIL import Image
    out, tables, _ = cli_out
    listed = {r["path"]: r for r in json.loads(runs.read_text())["runs"]}
    for name in audit.TABLE_NAMES:
        side = json.loads(sidecar_path(out / "tables" / name).read_text())
        assert side["config_hash"] == CONFIG_HASH and side["roles"] == ["benchmark", "audit"]
        assert side["analysis"]["module"] == "analysis.audit"
        assert {r["path"] for r in side["runs"]} == set(listed)
        status = {(r["algo"], r["task"], r["seed"]): r["status"] for r in side["runs"]}
        assert status[("sac", "toy_bimodal", 3)] == "invalid"
        assert status[("qsm", "cheetah_run", 5)] == "running"
        used = {(r["algo"], r["task"], r["seed"]) for r in side["runs"] if r["used"]}
        assert ("qsm", "cheetah_run", 5) not in used and ("sac", "toy_bimodal", 3) not in used
        if name == "toy_optima.csv":  # only runs of tasks with known optima
            assert {t for _, t, _ in used} == {"toy_bimodal", "toy_quadmodal", "pair_bandit"}
        else:
            assert len(used) == sum(len(SEEDS[t]) for (_, t) in BEHAVIOUR)
    for name in audit.FIGURE_NAMES:
        meta = Image.open(out / "figures" / f"{name}.png").text
        assert meta["Description"].startswith(f"config {CONFIG_HASH[:8]} · {len(listed)} runs")


def test_kl_wrappers_flag_point_masses_and_atoms():
    rng = np.random.default_rng(0)
    smooth = rng.normal(0.0, 0.2, size=(300, 1))
    clipped = np.clip(rng.normal(0.9, 0.2, size=(300, 1)), -1, 1)  # an atom at +1
    point = np.full((300, 1), 0.3)
    v, note = audit.gaussian_kl(smooth)
    assert np.isfinite(v) and note == ""
    v, note = audit.gaussian_kl(clipped)
    assert np.isfinite(v) and "atom" in note
    v, note = audit.gaussian_kl(point)
    assert math.isnan(v) and "point mass" in note
    for x, y in ((point, smooth), (smooth, point)):
        v, note = audit.between_kl(x, y)
        assert math.isnan(v) and "point mass" in note
    v, note = audit.between_kl(smooth, clipped)
    assert np.isfinite(v) and note == ""
