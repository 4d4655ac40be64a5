"""Definitions the suite keeps in one place: the diffusion agents' sampler (one method that acting,
the critic's target and the probes draw through), the evaluation schedule (one function that the
training loop and the random policy use) and the final score of a run (one function that the
scores and the audit use)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys

import pandas as pd
import pytest
import torch

from conftest import ROOT, python_env
from qsm.contract import rundir
from qsm.declare.registry import get_agent, resolve_config
from qsm.harness.evaluation import eval_steps, is_eval_step
from qsm.learners.diffusion import ddpm_sample
from qsm.runtime.timing import PhaseTimer

OBS, ACT, B = 3, 2, 5
SMALL = dict(actor_hidden=(8, 8), cond_hidden=(6, 6), time_dim=4, critic_hidden=(7, 7))


def batch(S, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(S, B, OBS, generator=g),
            "action": torch.rand(S, B, ACT, generator=g) * 2 - 1,
            "reward": torch.randn(S, B, generator=g),
            "next_obs": torch.randn(S, B, OBS, generator=g),
            "mask": torch.ones(S, B)}


# -- the sampler ------------------------------------------------------------------------------------

def with_sampler(algo, value, **over):
    """An agent whose sampler is overridden (one method) to return `value` everywhere, recording
    each call's stream and whether autograd was on."""
    base = get_agent(algo)

    class Variant(base):
        calls = []

        def sample(self, obs, noise):
            self.calls.append((noise, torch.is_grad_enabled()))
            out = torch.full((*obs.shape[:2], self.act_dim), value)
            # keep a path to the denoiser so that a loss through the sampler can backpropagate
            return out + 0.0 * self.denoiser(obs, out, torch.zeros(obs.shape[:2], dtype=torch.long))

    Variant.name = base.name
    return Variant(OBS, ACT, [0, 1], resolve_config(base, "cheetah_run", {**SMALL, **over}))


@pytest.mark.parametrize("algo", ["qsm", "dql"])
def test_acting_and_the_probes_draw_through_the_one_sampler(algo):
    agent = with_sampler(algo, 0.25)
    obs = torch.randn(2, 4, OBS)
    for mode in ("eval", "policy"):
        assert torch.equal(agent.act(obs, mode), torch.full((2, 4, ACT), 0.25))
    assert not torch.equal(agent.act(obs, "explore"), torch.full((2, 4, ACT), 0.25))  # + noise
    policy, _ = agent.probe_samples(torch.randn(2, 3, OBS), 5)
    assert torch.equal(policy, torch.full((2, 3, 5, ACT), 0.25))
    assert agent.calls and all(noise is agent.act_noise and not grad for noise, grad in agent.calls)


@pytest.mark.parametrize("value,share", [(1.0, 1.0), (0.25, 0.0)])
def test_the_critics_target_draws_through_the_one_sampler(value, share):
    agent = with_sampler("qsm", value)
    out = agent.update(batch(2), PhaseTimer(enabled=False))
    assert out["bound_share"].tolist() == [share, share]  # the next actions it sampled
    assert [(noise is agent.update_noise, grad) for noise, grad in agent.calls] == [(True, False)]


def test_dqls_actor_loss_draws_through_the_one_sampler_with_gradient():
    agent = with_sampler("dql", 0.5)
    agent.update(batch(2), PhaseTimer(enabled=False))
    # the critic's target (no gradient), then the actor loss (with gradient), on the update stream
    assert [(noise is agent.update_noise, grad) for noise, grad in agent.calls] == [(True, False),
                                                                                    (True, True)]


@pytest.mark.parametrize("algo", ["qsm", "dql"])
def test_the_sampler_is_the_ddpm_sampler(algo):
    """The default sample() draws what qsm.learners.diffusion.ddpm_sample draws from the same
    stream."""
    base = get_agent(algo)
    agent = base(OBS, ACT, [0, 1], resolve_config(base, "cheetah_run", SMALL))
    obs = torch.randn(2, 6, OBS)
    state = agent.act_noise.state_dict()
    with torch.no_grad():
        ours = agent.sample(obs, agent.act_noise)
    agent.act_noise.load_state_dict(state)
    theirs = ddpm_sample(agent.denoiser, agent.schedule, obs, ACT, agent.act_noise,
                         agent.cfg.temperature)
    assert torch.equal(ours, theirs)


def test_only_the_base_calls_the_reverse_chain():
    """Acting, the critic's target, dql's actor loss and the probes reach the reverse chain only
    through DiffusionActorCritic.sample: no other module of the agents, the probes or the policy
    file calls it."""
    callers = {}
    for path in ("qsm/learners/diffusion_agent.py", "qsm/agent.py", "baselines/dql.py",
                 "qsm/harness/probes.py", "qsm/policy.py", "qsm/train.py", "qsm/harness/loop.py",
                 "qsm/learners/agent_base.py"):
        tree = ast.parse((ROOT / path).read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef):
                for node in ast.walk(fn):
                    if isinstance(node, ast.Name) and node.id in ("reverse_chain", "ddpm_sample"):
                        callers.setdefault(path, set()).add(fn.name)
    assert callers == {"qsm/learners/diffusion_agent.py": {"sample"}}


# -- the evaluation schedule ----------------------------------------------------------------------

def test_the_evaluation_schedule_by_hand():
    assert eval_steps(60, 30) == [0, 30, 60]
    assert eval_steps(70, 30) == [0, 30, 60, 70]     # and the last step
    assert eval_steps(5, 10) == [0, 5]
    for steps in range(1, 40):
        for every in range(1, 45):
            assert eval_steps(steps, every) == [s for s in range(steps + 1)
                                                if is_eval_step(s, steps, every)]


def test_the_trainer_and_the_random_policy_evaluate_on_the_same_schedule(tmp_path):
    budget = ["--steps", "50", "--eval-every", "20", "--eval-episodes", "1", "--probe-states", "2",
              "--probe-samples", "3"]
    learner = subprocess.run(
        [sys.executable, "-m", "qsm.train", "--algo", "td3", "--task", "toy_bimodal", "--seeds", "0",
         *budget, "--start-steps", "10", "--batch-size", "8", "--threads", "1",
         "--set", "hidden=[8,8]", "--out", str(tmp_path / "td3")],
        capture_output=True, text=True, cwd=ROOT, env=python_env(), timeout=300)
    assert learner.returncode == 0, learner.stderr
    program = subprocess.run(
        [sys.executable, "workflow/scripts/random_policy.py", "--task", "toy_bimodal", "--seeds",
         "0", *budget, "--run-id", "0123456789ab", "--code-version", "test",
         "--out", str(tmp_path / "random")],
        capture_output=True, text=True, cwd=ROOT, env=python_env(), timeout=300)
    assert program.returncode == 0, program.stderr
    for name in ("td3", "random"):
        run = rundir.load_run(tmp_path / name / "seed0")
        assert run.eval["step"].tolist() == eval_steps(50, 20) == [0, 20, 40, 50], name


# -- the final score ------------------------------------------------------------------------------

def test_the_scores_and_the_audit_take_the_final_score_from_one_definition(tmp_path):
    from analysis.benchmark import aggregate
    from analysis.audit import load
    from analysis.records.manifest import manifest_for_dirs, write_manifest
    assert load.final_evaluation is aggregate.final_evaluation
    evals = pd.DataFrame({"step": [0, 10, 20], "return": [1.0, 2.0, 3.0]})
    assert aggregate.final_evaluation(evals)["step"] == 20
    with pytest.raises(IndexError):
        aggregate.final_evaluation(evals.iloc[:0])
    with pytest.raises(TypeError):  # a running or failed run's evaluations are not read
        aggregate.final_evaluation(None)
    archive = ROOT / "results" / "archive" / "study" / "runs"
    if not archive.is_dir():
        pytest.skip("no archive in this checkout")
    dirs = [rundir.find_seed_dirs(archive / algo)[0] for algo in ("qsm", "sac", "random")]
    write_manifest(tmp_path / "manifest.json", manifest_for_dirs(dirs, runs_root=tmp_path / "none"))
    scores, _ = aggregate.collect(tmp_path / "manifest.json")
    final = aggregate.final_scores(scores).set_index("algo")["final_normalized"]
    for d in dirs:
        run = rundir.load_run(d)
        assert load._final_normalized(run) == final[run.algo], d
        assert final[run.algo] == (float(run.eval["return"].iloc[-1])
                                   / float(run.config["env"]["max_return"]))
    assert json.loads((tmp_path / "manifest.json").read_text())["runs"]
