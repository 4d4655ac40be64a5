"""Training diagnostics (metrics.csv), the kept policy (policy.pt) and `python -m qsm.policy`."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, python_env
from qsm.contract import rundir
from qsm.declare.budget import default_log_every
from qsm.declare.catalog import CatalogError, get_entry, read_declaration
from qsm.declare.registry import get_agent, resolve_config
from qsm.harness.metrics import (COMMON, METRICS, MetricsLog, UndeclaredMetric, file_columns,
                                 metric_steps)
from qsm.learners.agent_base import bound_share, critic_diagnostics, rms
from qsm.runtime.timing import PhaseTimer


def run(args, **kw):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          env=python_env(), timeout=600, **kw)


# -- the logging schedule -----------------------------------------------------------------------

def test_metric_steps_by_hand():
    assert metric_steps(10, 4, 3) == [6, 9, 10]        # after learning starts, and the last step
    assert metric_steps(12, 4, 3) == [6, 9, 12]
    assert metric_steps(5, 5, 1) == []                 # no learning step, no row
    assert metric_steps(3, 0, 1) == [1, 2, 3]
    assert default_log_every(3000, 1000) == 10         # about 200 rows at any budget
    for steps, start in ((100_000, 10_000), (1_000_000, 10_000), (3_000, 1_000), (20_000, 500)):
        # 200, and one more where the grid misses the last step
        assert len(metric_steps(steps, start, default_log_every(steps, start))) in (200, 201)


# -- the accumulator -----------------------------------------------------------------------------

def test_metrics_log_means_per_interval_and_column():
    log = MetricsLog(2, ("bc_loss", "alpha"), "mine")
    log.add({"critic_loss": torch.tensor([1.0, 2.0]), "q_mean": torch.tensor([0.0, 1.0])})
    log.add({"critic_loss": torch.tensor([3.0, 4.0]), "q_mean": torch.tensor([2.0, 3.0]),
             "actor_loss": torch.tensor([5.0, 6.0]), "bc_loss": torch.tensor([9.0, 8.0])})
    rows = log.flush(7)
    # the common columns and the declared ones, None where no update gave a value
    assert rows[0] == {"step": 7, **{k: None for k in COMMON}, "alpha": None, "critic_loss": 2.0,
                       "q_mean": 1.0, "actor_loss": 5.0, "bc_loss": 9.0}
    assert rows[1]["critic_loss"] == 3.0 and rows[1]["actor_loss"] == 6.0
    assert rows[1]["bc_loss"] == 8.0
    assert log.flush(8)[0]["critic_loss"] is None  # a fresh interval


def test_an_undeclared_key_is_an_error_naming_the_learner_and_the_key():
    log = MetricsLog(2, ("alpha",), "mine")
    log.add({"critic_loss": torch.ones(2)})
    with pytest.raises(UndeclaredMetric, match=r"^mine: .*'bc_loss'.*declared: critic_loss, "
                                               r"actor_loss, q_mean, q_std, target_q_mean, alpha"):
        log.add({"critic_loss": torch.ones(2), "bc_loss": torch.ones(2)})
    assert log.counts == {"critic_loss": 1}  # nothing of the refused update was added
    with pytest.raises(UndeclaredMetric, match="'alpha'"):
        MetricsLog(1, (), "other").add({"alpha": torch.ones(1)})


@pytest.mark.parametrize("declared,problem", [
    (("q_mean",), "common column"), (("step",), "step column"), (("a", "a"), "twice"),
    (("two words",), "identifier")])
def test_a_learner_cannot_declare_a_common_or_malformed_column(declared, problem):
    with pytest.raises(ValueError, match=problem):
        MetricsLog(1, declared, "mine")


def test_file_layout_is_the_standard_columns_then_the_learners_own():
    assert file_columns(("alpha", "entropy")) == ("step", *METRICS)  # a v3 column: in place
    assert file_columns(("bound_share", "q_loss", "bc_loss")) == ("step", *METRICS, "q_loss",
                                                                 "bc_loss")
    assert tuple(METRICS[:len(COMMON)]) == tuple(COMMON)


# -- the declarations ----------------------------------------------------------------------------

def test_every_agent_declares_its_own_columns():
    """Each agent's declaration says which columns beyond the common ones its update reports
    (and what they mean); the framework declares the common ones only."""
    declared = {algo: set(get_entry(algo).metrics) for algo in EXPECTED}
    assert declared == {algo: EXPECTED[algo] - set(COMMON) | EXTRA.get(algo, set())
                        for algo in EXPECTED}
    assert all(meaning for algo in EXPECTED for meaning in get_entry(algo).metrics.values())
    # the standard layout's columns are each declared, with its meaning, by an agent
    assert set(METRICS) - set(COMMON) <= set().union(*declared.values())


@pytest.mark.parametrize("metrics,problem", [
    ({"q_mean": "again"}, "common column"), (["alpha"], "must be {column: meaning}"),
    ({"alpha": ""}, "must be {column: meaning}"), ({"bad name": "x"}, "identifier")])
def test_the_catalog_rejects_a_bad_metrics_declaration(tmp_path, monkeypatch, metrics, problem):
    module = f"mine_{abs(hash(repr(metrics)))}_config"  # one module per case
    (tmp_path / f"{module}.py").write_text(
        "from dataclasses import dataclass\n"
        "NAME = 'mine'\nLEARNER = 'mine:Mine'\n"
        "@dataclass\nclass C:\n    pass\nCONFIG = C\n"
        f"METRICS = {metrics!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CatalogError, match=re.escape(problem)):
        read_declaration(module)


def test_metrics_log_sees_every_non_finite_value():
    log = MetricsLog(3)
    log.add({"critic_loss": torch.tensor([1.0, float("nan"), 1.0])})
    log.add({"critic_loss": torch.tensor([1.0, 1.0, float("inf")])})
    log.add({"critic_loss": torch.tensor([1.0, 1.0, -float("inf")])})
    assert log.nonfinite().tolist() == [False, True, True]


def test_adding_reads_no_value(monkeypatch):
    """Logging adds no device-to-host transfer to an update: add() never reads a tensor."""
    log = MetricsLog(2)
    for name in ("cpu", "item", "tolist", "numpy", "__bool__", "__float__"):
        monkeypatch.setattr(torch.Tensor, name, lambda *a, _n=name: pytest.fail(f"read: {_n}"))
    for _ in range(3):
        log.add({"critic_loss": torch.ones(2), "q_mean": torch.zeros(2)})


def test_numpy_values_as_the_official_program_gives_them():
    log = MetricsLog(2, ("alpha", "entropy"), "sac_official")
    log.add({"alpha": np.array([0.5, 1.0])})
    log.add({"alpha": np.array([1.5, 2.0])})
    assert [r["alpha"] for r in log.flush(3)] == [1.0, 1.5]


def test_state_round_trip_continues_the_interval():
    log = MetricsLog(1)
    log.add({"q_mean": torch.tensor([1.0])})
    other = MetricsLog(1)
    other.load_state_dict(log.state_dict())
    other.add({"q_mean": torch.tensor([3.0])})
    assert other.flush(2)[0]["q_mean"] == 2.0


# -- what the agents report, by hand --------------------------------------------------------------

def test_diagnostics_by_hand():
    q = torch.tensor([[[1.0, 3.0], [5.0, 7.0]]])                       # (S=1, 2 critics, B=2)
    d = critic_diagnostics(torch.tensor([0.5]), q, torch.tensor([[2.0, 4.0]]))
    assert d["q_mean"].item() == 4.0 and d["target_q_mean"].item() == 3.0
    assert d["q_std"].item() == pytest.approx(np.sqrt(5.0))           # population std of 1,3,5,7
    x = torch.tensor([[[3.0, 4.0]]])                                   # (1, 1, 2)
    assert rms(x).item() == pytest.approx(np.sqrt(12.5))
    a = torch.tensor([[[1.0, 0.9995], [-0.9989, -1.0]]])
    assert bound_share(a).item() == 0.75                              # 1e-3 of a bound


def batch(S, B=16, obs=3, act=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(S, B, obs, generator=g), "action": torch.rand(S, B, act, generator=g) * 2 - 1,
            "reward": torch.randn(S, B, generator=g), "next_obs": torch.randn(S, B, obs, generator=g),
            "mask": torch.ones(S, B)}


SMALL = {"qsm": {"actor_hidden": [16, 16], "critic_hidden": [16, 16], "cond_hidden": [8, 8], "time_dim": 8},
         "dql": {"actor_hidden": [16, 16], "critic_hidden": [16, 16], "cond_hidden": [8, 8], "time_dim": 8},
         "sac": {"hidden": [16, 16]}, "td3": {"hidden": [16, 16]}}
EXPECTED = {
    "qsm": {"critic_loss", "actor_loss", "q_mean", "q_std", "target_q_mean", "dq_da_rms",
            "score_target_rms", "eps_pred_rms", "bound_share"},
    "dql": {"critic_loss", "actor_loss", "q_mean", "q_std", "target_q_mean", "bound_share"},
    "sac": {"critic_loss", "actor_loss", "q_mean", "q_std", "target_q_mean", "alpha", "entropy"},
    "td3": {"critic_loss", "actor_loss", "q_mean", "q_std", "target_q_mean", "actor_q"},
}
EXTRA = {"dql": {"q_loss", "bc_loss"}}  # declared, given by variant=diffusion_ql_paper only


@pytest.mark.parametrize("algo", sorted(EXPECTED))
def test_every_agent_reports_its_columns(algo):
    cls = get_agent(algo)
    agent = cls(3, 2, [0, 1], resolve_config(cls, "toy_quadmodal", SMALL[algo]))
    timer = PhaseTimer(enabled=False)
    out = {**agent.update(batch(2), timer), **agent.update(batch(2, seed=1), timer)}
    assert set(out) & set(METRICS) == EXPECTED[algo]
    assert set(out) <= set(COMMON) | set(get_entry(algo).metrics)  # nothing undeclared
    for key, value in out.items():
        assert value.shape == (2,) and torch.isfinite(value).all() and not value.requires_grad, key
    if algo == "qsm":
        torch.testing.assert_close(out["score_target_rms"], agent.cfg.M_q * out["dq_da_rms"])
    if algo == "sac":  # the temperature the update used: 1 at the first update
        agent2 = cls(3, 2, [0, 1], resolve_config(cls, "toy_quadmodal", SMALL[algo]))
        assert agent2.update(batch(2), timer)["alpha"].tolist() == [1.0, 1.0]


# -- a trained run: metrics rows, the kept policy, probe and evaluate -------------------------------

ARGS = ["--task", "toy_quadmodal", "--seeds", "0", "1", "--steps", "60", "--start-steps", "30",
        "--eval-every", "30", "--eval-episodes", "2", "--batch-size", "16", "--probe-states", "3",
        "--probe-samples", "40", "--log-every", "7", "--threads", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-seed block of each agent (small networks), trained once; TD3 also writes TensorBoard
    scalars if the extra is installed. Each run's log (stderr) is kept in ROOT/<algo>.log."""
    root = tmp_path_factory.mktemp("trained")
    for algo in ("qsm", "sac", "td3"):
        sets = [x for k, v in SMALL[algo].items() for x in ("--set", f"{k}={json.dumps(v)}")]
        if algo == "td3" and importlib.util.find_spec("tensorboard"):
            sets += ["--tensorboard", str(root / "tb")]
        proc = run(["-m", "qsm.train", "--algo", algo, *ARGS, *sets, "--out", str(root / algo)])
        assert proc.returncode == 0, proc.stderr
        (root / f"{algo}.log").write_text(proc.stderr)
    return root


@pytest.mark.parametrize("algo", ["qsm", "sac", "td3"])
def test_run_writes_metrics_rows_and_policy(trained, algo):
    for seed in (0, 1):
        r = rundir.load_run(trained / algo / f"seed{seed}")
        assert r.config["budget"]["log_every"] == 7
        assert r.metrics["step"].tolist() == [35, 42, 49, 56, 60]
        given = {c for c in METRICS if r.metrics[c].notna().any()}
        assert given == EXPECTED[algo]
        assert r.config["metrics"] == list(get_entry(algo).metrics)  # what its agent declares
        header = (r.path / "metrics.csv").read_text().splitlines()[0].split(",")
        assert header == list(file_columns(get_entry(algo).metrics))
        assert (r.path / "policy.pt").is_file()


@pytest.mark.parametrize("algo", ["qsm", "sac", "td3"])
def test_probing_the_saved_policy_reproduces_the_probe_samples(trained, algo, tmp_path):
    """At the run's probe states, from the run's stream: the same bits, for the second seed of a
    block too (a seed's numbers never depend on its block)."""
    seed_dir = trained / algo / "seed1"
    out = tmp_path / "again.npz"
    proc = run(["-m", "qsm.policy", "probe", str(seed_dir), "--compare", "--out", str(out)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical to the run's probe_actions.npz" in proc.stdout
    with np.load(out) as again, np.load(seed_dir / "probe_actions.npz") as original:
        for key in ("states", "policy", "behaviour"):
            np.testing.assert_array_equal(again[key], original[key])
    # other states and a fresh stream: new samples of the right shape
    states = tmp_path / "states.npy"
    np.save(states, np.zeros((2, 2), np.float32))
    proc = run(["-m", "qsm.policy", "probe", str(seed_dir), "--states", str(states), "--samples",
                "5", "--stream-seed", "4", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as z:
        assert z["policy"].shape == z["behaviour"].shape == (2, 5, 2)


def test_evaluate_runs_fresh_seeded_episodes(trained, tmp_path):
    seed_dir = trained / "qsm" / "seed0"
    outs = [tmp_path / f"e{i}.csv" for i in range(3)]
    for out, seed in zip(outs, (0, 0, 1)):
        proc = run(["-m", "qsm.policy", "evaluate", str(seed_dir), "--episodes", "4", "--seed",
                    str(seed), "--out", str(out)])
        assert proc.returncode == 0, proc.stderr
        assert "over 4 episodes" in proc.stdout
    a, b, c = (pd.read_csv(o)["return"].to_numpy() for o in outs)
    assert len(a) == 4 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)          # the same seed: the same episodes
    assert not np.array_equal(a, c)              # another seed: other episodes


def test_a_policy_file_of_another_run_is_refused(trained, tmp_path):
    d = tmp_path / "seed0"
    shutil.copytree(trained / "sac" / "seed0", d)
    shutil.copy(trained / "sac" / "seed1" / "policy.pt", d / "policy.pt")
    proc = run(["-m", "qsm.policy", "probe", str(d)])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "belongs to another run" in lines[0] and "seed 1 != 0" in lines[0]
    (d / "policy.pt").unlink()
    proc = run(["-m", "qsm.policy", "evaluate", str(d)])
    assert proc.returncode == 2 and "policy.pt is missing" in proc.stderr


def test_a_cuda_runs_stream_is_not_continued_on_the_cpu(trained, tmp_path):
    """A run trained on CUDA saves its acting stream as a CUDA generator's state (16 bytes of
    Philox seed and offset: what an H200 run wrote), which no CPU generator can load. Redrawing
    its probe samples on the CPU is refused in one line that says what works instead; fresh
    samples (--stream-seed) still work."""
    d = tmp_path / "seed0"
    shutil.copytree(trained / "qsm" / "seed0", d)
    state = torch.load(d / "policy.pt", weights_only=False)
    state["streams"]["act"] = torch.zeros(16, dtype=torch.uint8)
    torch.save(state, d / "policy.pt")
    config = json.loads((d / "config.json").read_text())
    config["provenance"]["device"] = "cuda"
    (d / "config.json").write_text(json.dumps(config))
    proc = run(["-m", "qsm.policy", "probe", str(d)])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "random stream on cuda" in lines[0] and "--device cuda" in lines[0], lines[0]
    assert "--stream-seed" in lines[0]
    proc = run(["-m", "qsm.policy", "probe", str(d), "--stream-seed", "3", "--samples", "4"])
    assert proc.returncode == 0, proc.stderr


def test_log_lines_say_elapsed_speed_and_time_left(trained):
    log = (trained / "td3.log").read_text()
    lines = [line for line in log.splitlines() if "eval return per seed" in line]
    assert len(lines) == 2  # evaluations at steps 30 and 60 (step 0 comes before any step)
    assert all("elapsed 0:" in line and "steps/s" in line and " left" in line for line in lines)


def test_tensorboard_scalars(trained):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tb = trained / "tb"
    run_id = json.loads((trained / "td3" / "seed1" / "config.json").read_text())["run_id"]
    events = EventAccumulator(str(tb / "td3" / "toy_quadmodal" / run_id / "seed1"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/critic_loss", "train/q_mean", "train/actor_q", "eval/return",
            "time/steps_per_second"} <= tags
    metrics = pd.read_csv(trained / "td3" / "seed1" / "metrics.csv")
    logged = [e.value for e in events.Scalars("train/critic_loss")]
    np.testing.assert_allclose(logged, metrics["critic_loss"], rtol=1e-6)


# -- declared columns in a run and in the validator ------------------------------------------------

def test_a_declared_column_is_written_and_required(tmp_path):
    """dql's paper variant reports its two loss terms, declared by dql: they are written after the
    standard columns and recorded in config.json; the validator then requires them, naming the
    agent, while a column no learner declares may be left out."""
    sets = [x for k, v in SMALL["dql"].items() for x in ("--set", f"{k}={json.dumps(v)}")]
    proc = run(["-m", "qsm.train", "--algo", "dql", *ARGS[:3], "0", *ARGS[5:], *sets,
                "--set", "variant=diffusion_ql_paper", "--out", str(tmp_path / "dql")])
    assert proc.returncode == 0, proc.stderr
    d = tmp_path / "dql" / "seed0"
    r = rundir.load_run(d)
    assert r.config["metrics"] == ["bound_share", "q_loss", "bc_loss"]
    assert list(r.metrics.columns) == list(file_columns(r.config["metrics"]))
    assert r.metrics[["q_loss", "bc_loss", "bound_share"]].notna().all().all()
    assert r.metrics[["alpha", "dq_da_rms"]].isna().all().all()

    table = pd.read_csv(d / "metrics.csv", dtype=str, keep_default_na=False)
    table.drop(columns=["alpha", "entropy", "actor_q", "dq_da_rms"]).to_csv(d / "metrics.csv",
                                                                             index=False)
    assert rundir.load_run(d).metrics["alpha"].isna().all()  # undeclared: may be left out
    table.drop(columns=["bc_loss"]).to_csv(d / "metrics.csv", index=False)
    with pytest.raises(rundir.ContractError, match=r"metrics.csv: is missing columns \['bc_loss'\] "
                                                   r"\(bc_loss declared by dql"):
        rundir.load_run(d)
    table.assign(bc_loss="x").to_csv(d / "metrics.csv", index=False)
    with pytest.raises(rundir.ContractError, match="column 'bc_loss' holds a value that is not"):
        rundir.load_run(d)
    table.to_csv(d / "metrics.csv", index=False)
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, "metrics": "bc_loss"}))
    with pytest.raises(rundir.ContractError, match="config.json: metrics must be a list"):
        rundir.load_run(d)
    (d / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "metrics"}))
    table.drop(columns=["bc_loss"]).to_csv(d / "metrics.csv", index=False)
    assert rundir.load_run(d).status["status"] == "complete"  # declares nothing: the common only
    table.drop(columns=["q_std"]).to_csv(d / "metrics.csv", index=False)
    with pytest.raises(rundir.ContractError, match=r"is missing columns \['q_std'\] \(has"):
        rundir.load_run(d)


def test_archived_runs_record_no_declaration_and_stay_valid():
    """The study's archive predates the declarations: its runs have no config `metrics` and the
    layout of qsm.harness.metrics.COLUMNS, and are valid as they are."""
    archive = ROOT / "results" / "archive" / "study" / "runs"
    if not archive.is_dir():
        pytest.skip("no archive in this checkout")
    for algo in ("qsm", "sac", "td3", "qsm_official", "random"):
        d = rundir.find_seed_dirs(archive / algo)[0]
        r = rundir.load_run(d)
        assert "metrics" not in r.config and list(r.metrics.columns) == ["step", *METRICS]


def test_an_update_returning_an_undeclared_key_stops_the_run(tmp_path, monkeypatch):
    """Named in one line (agent and key); the seeds' runs are marked failed, nothing dropped."""
    from qsm import train
    cls = get_agent("td3")
    update = cls.update

    def with_an_extra_key(self, batch, timer):
        return {**update(self, batch, timer), "surprise": torch.zeros(len(self.seeds))}
    monkeypatch.setattr(cls, "update", with_an_extra_key)
    args = train.build_parser().parse_args(
        ["--algo", "td3", *ARGS[:-2], "--set", "hidden=[16,16]", "--out", str(tmp_path)])
    trainer = train.make_trainer(args, torch.device("cpu"))
    try:
        with pytest.raises(UndeclaredMetric, match=r"^td3: its update returned 'surprise', which "
                                                   r"it does not declare"):
            trainer.run()
    finally:
        trainer.close()
    for seed in (0, 1):
        status = json.loads((tmp_path / f"seed{seed}" / "status.json").read_text())
        assert status["status"] == "failed" and status["step"] == 30, status  # first update
        assert "'surprise'" in status["reason"]
