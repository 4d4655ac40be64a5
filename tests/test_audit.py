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

from analysis import audit
from analysis.audit.scale import SCALE_COLUMNS
from analysis.audit.tables import INITIAL_COLUMNS, PATTERN_COLUMNS
from analysis.records.provenance import sidecar_path
import contract
from conftest import ROOT
from contract import run_config, seed_dir, write_manifest
from qsm.contract.rundir import TIMING_PHASES, SeedRunWriter
from rliable import library as rly

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


def with_atoms(rng, n, lower, upper, centres, sd):
    """A 1-D policy with atoms on the bounds (clipped actions) and interior modes at `centres`."""
    u = rng.random(n)
    x = mixture(rng, [[c] for c in centres], sd, n)
    x[u < lower] = -1.0
    x[(u >= lower) & (u < lower + upper)] = 1.0
    return x


# Per (algo, task): a sampler rng -> (N, act_dim) behaviour samples, and the true number of
# interior modes. The policy samples are the same except TD3's (a point mass).
# Known optima come from config.json alone: "pair_bandit" has them under a name without the toy
# prefix; "toy_plain" has the prefix but no optima. "clip_bandit": atoms on both bounds.
DIM = {"toy_bimodal": 1, "toy_quadmodal": 2, "cheetah_run": 6, "pair_bandit": 1, "toy_plain": 1,
       "clip_bandit": 1}
BEHAVIOUR = {
    ("qsm", "toy_bimodal"): (lambda r: mixture(r, [[-0.5], [0.5]], 0.05, N), 2),
    ("sac", "toy_bimodal"): (lambda r: mixture(r, [[0.5]], 0.08, N), 1),
    ("qsm", "toy_quadmodal"): (lambda r: mixture(r, [[-.5, -.5], [-.5, .5], [.5, -.5], [.5, .5]],
                                                 0.05, N), 4),
    ("qsm", "cheetah_run"): (lambda r: mixture(r, [np.full(6, -0.5), np.full(6, 0.5)], 0.08, N), 2),
    ("sac", "cheetah_run"): (lambda r: mixture(r, [np.zeros(6)], 0.15, N), 1),
    # mu + N(0, 0.1) with mu at 0.97 in the first dimension, clipped: 38% on the bound +1
    ("td3", "cheetah_run"): (lambda r: mixture(r, [[0.97, 0, 0, 0, 0, 0]], 0.1, N), 1),
    ("qsm", "pair_bandit"): (lambda r: mixture(r, [[-0.3], [0.6]], 0.05, N), 2),
    ("qsm", "toy_plain"): (lambda r: mixture(r, [[0.1]], 0.1, N), 1),
    # 25% at -1, 25% at +1 (atoms), the rest in 2 interior modes
    ("qsm", "clip_bandit"): (lambda r: with_atoms(r, N, 0.25, 0.25, (-0.4, 0.4), 0.06), 2),
}
SEEDS = {"toy_bimodal": (0, 1, 2), "toy_quadmodal": (0,), "cheetah_run": (0, 1),
         "pair_bandit": (0, 1), "toy_plain": (0,), "clip_bandit": (0, 1)}
OPTIMA = {"toy_bimodal": [[-0.5], [0.5]],
          "toy_quadmodal": [[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]],
          "pair_bandit": [[-0.3], [0.6]], "clip_bandit": [[-0.4], [0.4]]}
# final evaluation return as a share of the task's maximum: qsm learned the toy bandits, sac not
FINAL = {("qsm", "toy_bimodal"): 0.9, ("sac", "toy_bimodal"): 0.3, ("qsm", "clip_bandit"): 0.5}
STATES = {task: np.random.default_rng(7).uniform(-1, 1, size=(P, 3)) for task in DIM}
SWEEP_RUN_ID = "5ca1e0000005"  # QSM on toy_bimodal at M_q = 5: every sample on a bound


def write_run(root, algo, task, seed, status="complete", run_id=None, m_q=50.0, sampler=None,
              final=None):
    """One seed directory following the run-directory contract, with known probe actions."""
    run_id = run_id or contract.RUN_ID
    w = SeedRunWriter(seed_dir(root, algo, task, seed, run_id))
    rng = np.random.default_rng(zlib.crc32(f"{algo}/{task}/{seed}/{run_id}".encode()))
    cfg = run_config(algo, task, seed, act_dim=DIM[task], optima=OPTIMA.get(task),
                     max_return=100.0, run_id=run_id)
    if algo == "qsm":
        cfg["hparams"] = {"M_q": m_q}
    w.write_config(cfg)
    final = FINAL.get((algo, task), 0.01) if final is None else final
    for step, share in ((0, 0.1), (500, 0.2), (1000, final)):
        w.add_eval(step, [100.0 * share, 100.0 * share], wall_time_s=float(step))
    w.write_timing([{"phase": p, "calls": 1, "total_s": 1.0, "env_steps": 1000, "block_size": 1,
                     "device": "cpu"} for p in TIMING_PHASES])
    sampler = sampler or BEHAVIOUR[(algo, task)][0]
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
    # the M_q sweep: the audit's qsm runs (M_q = 50) listed again, and runs at M_q = 5
    for seed in SEEDS["toy_bimodal"]:
        listed.append(("qsm", "toy_bimodal", seed, "mq_sweep"))
        write_run(root, "qsm", "toy_bimodal", seed, run_id=SWEEP_RUN_ID, m_q=5.0, final=0.25,
                  sampler=lambda r: r.choice([-1.0, 1.0], size=(N, 1)))
        listed.append(("qsm", "toy_bimodal", seed, "mq_sweep", SWEEP_RUN_ID))
    return write_manifest(root / "manifest.json", root, listed, config_hash=CONFIG_HASH)


CONFIG_HASH = "a0d1e2f3c4b5"


@pytest.fixture(scope="module")
def cli_out(runs, tmp_path_factory):
    """The command line exactly as the Snakemake rule calls it (with fewer bootstrap reps)."""
    out = tmp_path_factory.mktemp("audit")
    cmd = [sys.executable, "-m", "analysis.audit", "--manifest", str(runs),
           "--tables", str(out / "tables"), "--figures", str(out / "figures"),
           "--histogram-states", "2", "--reps", str(REPS), "--seed", "0"]
    from conftest import python_env
    res = subprocess.run(cmd, cwd=REPO, env=python_env(), capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    tables = {name: pd.read_csv(out / "tables" / name, keep_default_na=True)
              for name in audit.TABLE_NAMES + ("mq_sweep.csv",)}  # the manifest's one sweep
    return out, tables, res.stderr


def rows(df, **where):
    for k, v in where.items():
        df = df[df[k] == v]
    return df


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------

def test_cli_writes_every_output(cli_out):
    out, tables, _ = cli_out
    for name in audit.TABLE_NAMES:
        assert (out / "tables" / name).stat().st_size > 0
    for name in audit.FIGURE_NAMES + ("mq_sweep",):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 1000, (name, ext)
    assert list(tables["modes.csv"].columns) == audit.MODES_COLUMNS
    assert list(tables["modes_summary.csv"].columns) == audit.SUMMARY_COLUMNS
    assert list(tables["bound_mass.csv"].columns) == audit.BOUND_COLUMNS
    assert list(tables["kl.csv"].columns) == audit.KL_COLUMNS
    assert list(tables["toy_optima.csv"].columns) == audit.toy_columns(4)  # quadmodal: 4
    assert list(tables["mq_sweep.csv"].columns) == audit.SWEEP_COLUMNS


def test_both_distributions_are_audited_side_by_side(cli_out):
    for name in ("modes.csv", "modes_summary.csv", "bound_mass.csv", "kl.csv", "toy_optima.csv",
                 "mq_sweep.csv"):
        assert set(cli_out[1][name]["distribution"]) == {"policy", "behaviour"}, name


def test_interior_modes_match_truth(cli_out):
    modes = cli_out[1]["modes.csv"]
    ok = modes[modes["status"] == "complete"]
    assert len(ok) == 2 * sum(P * len(SEEDS[t]) for (_, t) in BEHAVIOUR)
    for (algo, task), (_, truth) in BEHAVIOUR.items():
        for dist in ("policy", "behaviour"):
            got = rows(ok, algo=algo, task=task, distribution=dist)["interior_modes"]
            assert len(got) == P * len(SEEDS[task])
            assert (got == truth).mean() >= 0.9, (algo, task, dist, got.tolist())
    assert (rows(ok, algo="qsm", task="toy_bimodal")["mass_any_bound"] == 0).all()


def test_atoms_on_the_bounds_are_measured_as_mass_not_as_modes(cli_out):
    """clip_bandit: 25% of the samples on each bound, 2 interior modes: the mass is reported per
    dimension and side, the modes are those of the interior part, the atoms are 2 components."""
    ok = rows(cli_out[1]["modes.csv"], algo="qsm", task="clip_bandit", status="complete")
    sd = math.sqrt(0.5 * 0.5 / N)
    assert (abs(ok["mass_any_bound"] - 0.5) < 4 * sd).all()
    assert (ok["mass_corner"] == ok["mass_any_bound"]).all()   # 1-D: a bound is a corner
    assert (ok["interior_modes"] == 2).mean() >= 0.9 and (ok["components"] == 4).mean() >= 0.9
    bounds = cli_out[1]["bound_mass.csv"]
    clip = rows(bounds, algo="qsm", task="clip_bandit", distribution="policy").iloc[0]
    assert clip["lower"] == pytest.approx(0.25, abs=0.03)
    assert clip["upper"] == pytest.approx(0.25, abs=0.03)
    assert clip["lower_ci_low"] <= clip["lower"] <= clip["lower_ci_high"]
    # TD3's exploration: mu = 0.97 in dimension 0 plus N(0, 0.1^2), clipped: P(a_0 = 1) = 0.38
    td3 = rows(bounds, algo="td3", task="cheetah_run", distribution="behaviour")
    assert len(td3) == 6 and td3.iloc[0]["upper"] == pytest.approx(0.382, abs=0.04)
    assert (td3.iloc[1:][["lower", "upper"]] == 0).all().all()
    assert (rows(bounds, algo="td3", task="cheetah_run", distribution="policy")[
        ["lower", "upper"]] == 0).all().all()  # the point mass at 0.97 is inside the box


def test_bad_runs_are_listed_not_audited(cli_out):
    modes = cli_out[1]["modes.csv"]
    assert not modes.duplicated(["algo", "task", "seed", "distribution", "state"]).any()
    key = modes[modes["state"].isna()].set_index(["algo", "task", "seed", "distribution"])
    assert key.index.is_unique
    for dist in ("policy", "behaviour"):
        bad = key.loc[("sac", "toy_bimodal", 3, dist)]
        assert bad["status"] == "invalid" and "probe_actions.npz" in bad["detail"]
        assert pd.isna(bad["interior_modes"])
        assert key.loc[("qsm", "cheetah_run", 5, dist), "status"] == "running"
        assert key.loc[("td3", "toy_bimodal", 0, dist), "status"] == "invalid"
        assert "config.json" in key.loc[("td3", "toy_bimodal", 0, dist), "detail"]
    toy = cli_out[1]["toy_optima.csv"].set_index(["algo", "task", "seed", "distribution"])
    assert toy.loc[("sac", "toy_bimodal", 3, "policy"), "status"] == "invalid"
    summary = cli_out[1]["modes_summary.csv"].set_index(["algo", "task", "distribution"])
    assert summary.loc[("sac", "toy_bimodal", "policy"), "n_skipped"] == 1
    assert summary.loc[("sac", "toy_bimodal", "policy"), "n_seeds"] == 3
    assert summary.loc[("td3", "toy_bimodal", "policy"), "n_seeds"] == 0


def test_modes_summary(cli_out):
    s = cli_out[1]["modes_summary.csv"].set_index(["algo", "task", "distribution"])
    q = s.loc[("qsm", "toy_bimodal", "behaviour")]
    assert q["n_seeds"] == 3 and q["n_states"] == P and q["true_modes"] == 2
    assert q["interior_modes"] == pytest.approx(2, abs=0.2) and q["frac_multimodal"] > 0.8
    assert q["interior_modes_ci_low"] <= q["interior_modes"] <= q["interior_modes_ci_high"]
    assert q["final_normalized"] == pytest.approx(0.9) and q["n_learned"] == 3
    sac = s.loc[("sac", "toy_bimodal", "policy")]
    assert sac["interior_modes"] == pytest.approx(1, abs=0.2) and sac["frac_multimodal"] < 0.2
    assert sac["n_learned"] == 0 and "did not learn the task" in sac["note"]
    clip = s.loc[("qsm", "clip_bandit", "policy")]
    assert clip["mass_any_bound"] == pytest.approx(0.5, abs=0.04) and clip["components"] > 3.5
    single = s.loc[("qsm", "toy_quadmodal", "policy")]  # one seed: no interval, the note says so
    assert single["n_seeds"] == 1 and single["true_modes"] == 4
    assert math.isnan(single["interior_modes_ci_low"]) and "1 seed" in single["note"]
    assert math.isnan(s.loc[("qsm", "cheetah_run", "policy"), "true_modes"])
    assert math.isnan(s.loc[("qsm", "cheetah_run", "policy"), "n_learned"])  # no known optima
    assert s.loc[("qsm", "pair_bandit", "policy"), "true_modes"] == 2      # from config.json
    assert math.isnan(s.loc[("qsm", "toy_plain", "policy"), "true_modes"])  # not from the name


def test_toy_optima_with_returns_and_learned_flags(cli_out):
    toy = cli_out[1]["toy_optima.csv"]
    ok = toy[toy["status"] == "complete"].set_index(["algo", "task", "seed", "distribution"])
    for seed in SEEDS["toy_bimodal"]:
        q = ok.loc[("qsm", "toy_bimodal", seed, "behaviour")]
        s = ok.loc[("sac", "toy_bimodal", seed, "behaviour")]
        assert q["optima_covered"] == 2 and s["optima_covered"] == 1
        assert q["frac_opt1"] == pytest.approx(0.5, abs=0.1)
        assert s["frac_opt2"] > 0.9 and s["frac_opt1"] < 0.05
        assert math.isnan(q["frac_opt3"])
        assert q["true_modes"] == 2 and q["interior_modes_mean"] == 2
        assert q["n_samples"] == P * N
        assert q["final_normalized"] == pytest.approx(0.9) and bool(q["learned"])
        assert s["final_normalized"] == pytest.approx(0.3) and not bool(s["learned"])
        assert "did not learn the task" in s["detail"]
    quad = ok.loc[("qsm", "toy_quadmodal", 0, "policy")]
    assert quad["optima_covered"] == 4 and quad["true_modes"] == 4


def test_known_optima_come_from_config_json_not_the_task_name(cli_out):
    toy = cli_out[1]["toy_optima.csv"]
    assert set(toy["task"]) == {"toy_bimodal", "toy_quadmodal", "pair_bandit", "clip_bandit"}
    pair = rows(toy, task="pair_bandit", distribution="policy").set_index("seed")
    assert list(pair.index) == list(SEEDS["pair_bandit"])
    for seed in SEEDS["pair_bandit"]:
        row = pair.loc[seed]
        assert row["optima"] == "(-0.3) (0.6)" and row["true_modes"] == 2
        assert row["optima_covered"] == 2 and math.isnan(row["frac_opt3"])
    # runs that could not be read are listed under their task's optima, from its other runs
    bad = toy.set_index(["algo", "task", "seed", "distribution"]).loc[
        ("td3", "toy_bimodal", 0, "policy")]
    assert bad["status"] == "invalid" and bad["optima"] == "(-0.5) (0.5)"


def test_the_audit_does_not_import_the_environments():
    """The contract is the only coupling: what the audit knows of a task comes from its runs. The
    exceptions are the two prediction models, which read the qsm agent's declarations to predict
    what the runs will learn: the oracle (analysis/audit/oracle.py) runs the agent's sampler on the
    toys' rewards, and the score-scale model (analysis/audit/scale_model.py) reads the paper's
    setting from the agent's declared defaults. No other audit module imports either."""
    from qsm.contract.identity import closure, imports_of
    predictors = ("oracle", "scale_model")
    audit = ["analysis.audit." + p.stem for p in (ROOT / "analysis" / "audit").glob("*.py")
             if p.stem not in ("__init__", "__main__", *predictors)]
    modules = closure(["analysis.audit", *audit])
    assert not [m for m in modules if m in {f"analysis.audit.{p}" for p in predictors}]
    # the score-scale model reaches the declarations only, never an agent or an environment
    assert not [m for m in closure(["analysis.audit.scale_model"]) if m.startswith("qsm.")
                and m not in ("qsm.declare.catalog", "qsm.declare.hparams", "qsm.harness.metrics",
                              "qsm.contract.rundir", "qsm.contract.identity", "qsm.declare.budget",
                              "qsm.declare.cli")]
    assert "analysis.audit.load" in modules and "analysis.estimators.mixed" in modules
    # its intervals come from the engine, not from the benchmark's tables (analysis.benchmark.stats)
    assert "analysis.estimators.bootstrap" in modules
    assert not [m for m in modules if m.startswith("analysis.audit")
                and "analysis.benchmark.stats" in imports_of(m)]
    # the contract's modules only: its validator, identities (with the budget they hold), and
    # metrics.csv's columns (and the command-line help formatter, which imports nothing of the
    # suite)
    assert not [m for m in modules if m.startswith("qsm.") and m not in ("qsm.contract.rundir",
                                                                          "qsm.contract.identity",
                                                                          "qsm.declare.budget",
                                                                          "qsm.harness.metrics",
                                                                          "qsm.declare.cli")]


def test_kl_rows(cli_out):
    kl = cli_out[1]["kl.csv"]
    kl["other_algo"] = kl["other_algo"].fillna("")
    g = kl[kl["kind"] == "interior_gaussian_fit"].set_index(["algo", "task", "distribution"])
    assert {(a, t, "behaviour") for a, t in BEHAVIOUR} <= set(g.index)
    # a well-separated bimodal mixture is far from its Gaussian fit; a Gaussian is not
    assert (g.loc[("qsm", "toy_bimodal", "behaviour"), "estimate"]
            > g.loc[("sac", "toy_bimodal", "behaviour"), "estimate"] + 0.3)
    assert g.loc[("qsm", "toy_bimodal", "behaviour"), "n_seeds"] == 3
    # atoms never enter a Gaussian fit: clip_bandit's value is its interior part's (two modes
    # 0.8 apart, sd 0.06: about 1.4 nats), far below what the atoms would read as (> 5 nats)
    clip = g.loc[("qsm", "clip_bandit", "policy"), "estimate"]
    assert 0.5 < clip < 2.5
    from analysis.estimators.kl import gaussian_fit_kl
    atoms = with_atoms(np.random.default_rng(0), N, 0.25, 0.25, (-0.4, 0.4), 0.06)
    assert gaussian_fit_kl(atoms) > clip + 3
    b = kl[kl["kind"] == "between_algos"]
    pairs = set(zip(b["algo"], b["other_algo"], b["task"], b["distribution"]))
    expected = {(a, o, "toy_bimodal", d) for a, o in (("qsm", "sac"), ("sac", "qsm"))
                for d in ("policy", "behaviour")}
    expected |= {(a, o, "cheetah_run", d) for a in ("qsm", "sac", "td3")
                 for o in ("qsm", "sac", "td3") if a != o for d in ("policy", "behaviour")}
    assert pairs == expected  # the other tasks have a single algorithm: no pair
    r = b.set_index(["algo", "other_algo", "task", "distribution"]).loc[
        ("qsm", "sac", "toy_bimodal", "behaviour")]
    assert r["n_seeds"] == 3 and r["estimate"] > 0.3 and r["covered_mass"] == 1
    assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
    two = b.set_index(["algo", "other_algo", "task", "distribution"]).loc[
        ("qsm", "td3", "cheetah_run", "behaviour")]
    assert two["n_seeds"] == 2 and np.isfinite(two["estimate"])
    # TD3's behaviour has atoms on the face a_0 = +1 that QSM never produces
    back = b.set_index(["algo", "other_algo", "task", "distribution"]).loc[
        ("td3", "qsm", "cheetah_run", "behaviour")]
    assert back["missing_mass"] == pytest.approx(0.38, abs=0.05)
    assert "never produced" in back["note"]


def test_bound_patterns_and_the_initial_state(cli_out):
    """clip_bandit: 25% of each state's samples at -1, 25% at +1, the rest inside: three heavy
    patterns per state, each coordinate balanced; SAC inside the box: one pattern."""
    tables = cli_out[1]
    pats = rows(tables["bound_patterns.csv"], algo="qsm", task="clip_bandit", distribution="policy")
    assert set(pats["pattern"]) == {"-", "0", "+"} and (pats["n_heavy_patterns"] == 3).all()
    share = pats.groupby("pattern")["share"].mean()
    assert share["0"] == pytest.approx(0.5, abs=0.08) and share["-"] == pytest.approx(0.25, abs=0.08)
    assert set(rows(tables["bound_patterns.csv"], algo="sac", task="toy_bimodal")["pattern"]) == {"0"}
    summary = rows(tables["modes_summary.csv"], algo="qsm", task="clip_bandit", distribution="policy")
    assert summary["n_heavy_patterns"].iloc[0] == 3
    assert summary["pattern_entropy"].iloc[0] == pytest.approx(1.5, abs=0.1)
    bal = rows(tables["bound_mass.csv"], algo="qsm", task="clip_bandit", distribution="policy")
    assert bal["balance"].iloc[0] == pytest.approx(0.5, abs=0.1)
    init = rows(tables["initial_state.csv"], algo="qsm", task="clip_bandit", distribution="policy")
    assert len(init) == len(SEEDS["clip_bandit"])
    assert init["lower"].between(0.15, 0.35).all() and init["upper"].between(0.15, 0.35).all()
    assert (init["inside"] - (1 - init["lower"] - init["upper"])).abs().max() < 1e-12


def test_scale_match_interpolates_the_toys_score_scale_to_the_benchmarks():
    """Toy score-target RMS 2 at M_q = 1 and 20 at M_q = 10; a benchmark task's 6: matched at
    M_q = 3 (log-log), nearest audited M_q 1; a reference beyond the toy's range is named."""
    from analysis.audit.load import RunEntry
    from analysis.audit.scale import scale_match_table
    x = np.zeros((2, 10, 1))
    def entry(task, seed, M_q, rms, optima=None, final=0.3):
        return RunEntry("qsm", task, seed, "complete", "", f"{task}/{M_q}/{seed}", actions=x,
                        optima=optima, final_normalized=final, score_target_rms=rms,
                        hparams={"M_q": M_q, "T": 5})
    optima = np.array([[-0.5], [0.5]])
    entries = ([entry("toy", s, 1.0, 2.0, optima) for s in range(2)]
               + [entry("toy", s, 10.0, 20.0, optima) for s in range(2)]
               + [entry("bench", s, 50.0, 6.0) for s in range(3)]
               + [entry("hot", 0, 50.0, 60.0)])
    df = scale_match_table(entries, reps=50)
    bench = df[df["reference_task"] == "bench"].iloc[0]
    assert bench["matched_M_q"] == pytest.approx(3.0) and bench["nearest_M_q"] == 1.0
    assert bench["n_reference_seeds"] == 3 and bench["n_seeds"] == 2
    hot = df[df["reference_task"] == "hot"].iloc[0]
    assert math.isnan(hot["matched_M_q"]) and "outside" in hot["note"] and hot["nearest_M_q"] == 10
    assert "median of the benchmark tasks" in set(df["reference_task"])


def test_the_policy_point_mass_has_no_density(cli_out):
    """TD3's deterministic policy: one interior mode, no KL to or from it."""
    modes = rows(cli_out[1]["modes.csv"], algo="td3", distribution="policy", status="complete")
    assert len(modes) == P * 2 and (modes["interior_modes"] == 1).all()
    assert modes["kl_interior_gaussian_fit"].isna().all()
    assert modes["detail"].str.contains("point mass").all()
    kl = cli_out[1]["kl.csv"]
    row = rows(kl, kind="interior_gaussian_fit", algo="td3", distribution="policy").iloc[0]
    assert math.isnan(row["estimate"]) and "point mass" in row["note"] and row["n_seeds"] == 0
    pair = rows(kl, kind="between_algos", algo="qsm", other_algo="td3", distribution="policy")
    assert pair["estimate"].isna().all() and pair["note"].str.contains("point mass").all()


def test_mq_sweep_table(cli_out):
    """Runs of role mq_sweep by M_q: the audit's own runs at 50, and runs at 5 that put every
    sample on a bound and did not learn the task."""
    sweep = cli_out[1]["mq_sweep.csv"].set_index(["algo", "task", "M_q", "distribution"])
    assert set(sweep.index) == {("qsm", "toy_bimodal", m, d) for m in (5.0, 50.0)
                                for d in ("policy", "behaviour")}
    low, paper = sweep.loc[("qsm", "toy_bimodal", 5.0, "policy")], \
        sweep.loc[("qsm", "toy_bimodal", 50.0, "policy")]
    assert low["n_seeds"] == paper["n_seeds"] == 3
    assert low["mass_any_bound"] == 1 and math.isnan(low["interior_modes"])
    assert low["optima_covered"] == 0 and low["n_learned"] == 0
    assert low["final_normalized"] == pytest.approx(0.25)
    assert paper["mass_any_bound"] == 0 and paper["interior_modes"] == pytest.approx(2, abs=0.2)
    assert paper["optima_covered"] == 2 and paper["n_learned"] == 3
    assert paper["final_normalized_ci_low"] <= paper["final_normalized"]


def test_no_runs_gives_empty_tables_and_no_data_figures(tmp_path):
    (tmp_path / "runs").mkdir()
    manifest = write_manifest(tmp_path / "m.json", tmp_path / "runs", [])
    paths = audit.run_audit(manifest, tmp_path / "t", tmp_path / "f", reps=10,
                            log=lambda m: None)
    # a manifest without "sweeps" (written before sweeps were configurable) has the M_q sweep
    assert len(paths) == len(audit.TABLE_NAMES) + 1 + 2 * (len(audit.FIGURE_NAMES) + 1)
    for name, cols in zip(audit.TABLE_NAMES + ("mq_sweep.csv",),
                          (audit.MODES_COLUMNS, audit.SUMMARY_COLUMNS, audit.BOUND_COLUMNS,
                           audit.KL_COLUMNS, audit.toy_columns(0), audit.RUN_COLUMNS,
                           PATTERN_COLUMNS, INITIAL_COLUMNS, SCALE_COLUMNS, audit.SWEEP_COLUMNS)):
        df = pd.read_csv(tmp_path / "t" / name)
        assert list(df.columns) == cols and len(df) == 0
        assert json.loads(sidecar_path(tmp_path / "t" / name).read_text())["n_runs"] == 0


def test_intervals_over_seeds_are_rliables(cli_out):
    """The audit's intervals are rliable's bootstrap, seeded as every interval of the analysis:
    recompute kl.csv's interval from modes.csv's per-state values with rliable called directly."""
    modes, kl = cli_out[1]["modes.csv"], cli_out[1]["kl.csv"]
    ok = modes[(modes["status"] == "complete") & modes["state"].notna()]
    per_seed = rows(ok, algo="qsm", task="toy_bimodal", distribution="behaviour").groupby(
        "seed")["kl_interior_gaussian_fit"].mean().to_numpy()
    assert len(per_seed) == 3 and per_seed.std() > 0  # a non-degenerate interval
    np.random.seed(0)  # the CLI's --seed
    point, ci = rly.get_interval_estimates({"x": per_seed[:, None]},
                                           lambda m: np.mean(m, axis=0), reps=REPS)
    row = rows(kl, kind="interior_gaussian_fit", algo="qsm", task="toy_bimodal",
               distribution="behaviour").iloc[0]
    assert row["estimate"] == pytest.approx(point["x"][0], rel=1e-4)  # the CSVs hold 6 digits
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(ci["x"][:, 0]), rel=1e-4)
    assert row["ci_low"] < row["estimate"] < row["ci_high"]


def test_the_per_run_table_is_the_runs_mean_over_probe_states(cli_out):
    """audit_runs.csv, what the figures show per seed, holds each audited run's mean over its
    probe states of modes.csv's values, and a row with its status for every run not audited;
    modes_summary.csv's means over seeds are the means of those per-run values."""
    modes, runs = cli_out[1]["modes.csv"], cli_out[1]["audit_runs.csv"]
    summary = cli_out[1]["modes_summary.csv"]
    ok = modes[modes["state"].notna()]
    per_run = ok.groupby(["algo", "task", "seed", "distribution"])[
        ["interior_modes", "mass_corner", "mass_face", "mass_any_bound"]].mean()
    audited = runs[runs["audited"] & runs["role"].isin(["benchmark", "audit"])].set_index(
        ["algo", "task", "seed", "distribution"])
    assert len(audited) == len(per_run)
    for col in per_run.columns:
        np.testing.assert_allclose(audited.loc[per_run.index, col], per_run[col], rtol=1e-5)
    assert set(runs.loc[~runs["audited"], "status"]) >= {"invalid", "running"}
    for r in summary[summary["n_seeds"] > 0].itertuples():
        seeds = audited.loc[(r.algo, r.task, slice(None), r.distribution), "mass_face"]
        assert r.mass_face == pytest.approx(seeds.mean(), rel=1e-5)


def test_audit_outputs_carry_their_provenance(cli_out, runs):
    from PIL import Image
    out, tables, _ = cli_out
    listed = json.loads(runs.read_text())["runs"]
    paths = {r["path"] for r in listed}
    sweep_only = {r["path"] for r in listed if r["role"] == "mq_sweep"} - {
        r["path"] for r in listed if r["role"] != "mq_sweep"}
    for name in audit.TABLE_NAMES + ("mq_sweep.csv",):
        side = json.loads(sidecar_path(out / "tables" / name).read_text())
        assert side["config_hash"] == CONFIG_HASH
        assert side["analysis"]["module"] == "analysis.audit"
        if name == "mq_sweep.csv":  # a sweep's table: the sweep's runs
            assert side["roles"] == ["mq_sweep"]
            assert {r["path"] for r in side["runs"]} == {r["path"] for r in listed
                                                         if r["role"] == "mq_sweep"}
            assert {r["path"] for r in side["runs"] if r["used"]} == {
                r["path"] for r in listed if r["role"] == "mq_sweep"}
            continue
        assert side["roles"] == ["benchmark", "audit", "mq_sweep"]
        assert {r["path"] for r in side["runs"]} == paths
        status = {(r["algo"], r["task"], r["seed"]): r["status"] for r in side["runs"]}
        assert status[("sac", "toy_bimodal", 3)] == "invalid"
        assert status[("qsm", "cheetah_run", 5)] == "running"
        used = {r["path"] for r in side["runs"] if r["used"]}
        used_keys = {(r["algo"], r["task"], r["seed"]) for r in side["runs"] if r["used"]}
        assert ("qsm", "cheetah_run", 5) not in used_keys
        assert ("sac", "toy_bimodal", 3) not in used_keys
        if name == "toy_optima.csv":  # only runs of tasks with known optima
            assert {t for _, t, _ in used_keys} == set(OPTIMA) and not used & sweep_only
        elif name in ("audit_runs.csv", "scale_match.csv"):  # every run, the sweeps' too
            assert len(used) == sum(len(SEEDS[t]) for (_, t) in BEHAVIOUR) + len(sweep_only)
            assert sweep_only and sweep_only <= used
        else:
            assert len(used) == sum(len(SEEDS[t]) for (_, t) in BEHAVIOUR)
    n_listed = len(listed)
    for name in audit.FIGURE_NAMES:
        meta = Image.open(out / "figures" / f"{name}.png").text
        assert meta["Description"].startswith(f"config {CONFIG_HASH[:8]} · {n_listed} runs")


def test_kl_wrappers_flag_point_masses_and_atoms():
    rng = np.random.default_rng(0)
    smooth = rng.normal(0.0, 0.2, size=(300, 1))
    clipped = np.clip(rng.normal(0.9, 0.2, size=(300, 1)), -1, 1)  # an atom at +1
    point = np.full((300, 1), 0.3)
    v, note = audit.interior_gaussian_kl(smooth)
    assert np.isfinite(v) and note == ""
    v, note = audit.interior_gaussian_kl(clipped)  # the interior part only: finite, no atom
    assert np.isfinite(v) and abs(v) < 1 and note == ""
    v, note = audit.interior_gaussian_kl(point)
    assert math.isnan(v) and "point mass" in note
    for x, y in ((point, smooth), (smooth, point)):
        r = audit.between_kl(x, y)
        assert math.isnan(r["kl"]) and "point mass" in r["note"]
    r = audit.between_kl(smooth, clipped)
    assert np.isfinite(r["kl"]) and r["missing_mass"] == 0 and r["covered_mass"] == 1
    r = audit.between_kl(clipped, smooth)  # the atom at +1 has no counterpart: flagged
    assert r["missing_mass"] > 0.2 and "never produced" in r["note"]
