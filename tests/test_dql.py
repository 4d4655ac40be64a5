"""The online Diffusion-QL baseline (baselines/dql.py): interface, seed batching, the official
actor loss by hand, and the defining property that its actor update backpropagates through all T
denoiser calls of the sampler."""
import subprocess
import sys

import math

import numpy as np
import pytest
import torch

import reference as ref
from conftest import python_env
from qsm.contract import rundir
from qsm.declare.registry import AgentError, get_agent, resolve_config
from qsm.harness.seeding import SeedStreams
from qsm.runtime.timing import PhaseTimer
from test_agents import ACT, OBS, replayed_normals, QuadraticCritic, batch, np_

SMALL = dict(actor_hidden=(8, 8), cond_hidden=(6, 6), time_dim=4, critic_hidden=(7, 7))
B_HAND = 6


def make(seeds=(0,), **over):
    cls = get_agent("dql")
    return cls(OBS, ACT, list(seeds), resolve_config(cls, "cheetah_run", {**SMALL, **over}))


def count_denoiser_calls(agent):
    """Wrap the denoiser's hidden layers (run by every evaluation, training or chain path); every
    call records whether autograd was on and keeps its output."""
    calls = []
    original = agent.denoiser.net.forward_hidden

    def wrapped(*args, **kwargs):
        out = original(*args, **kwargs)
        if out.requires_grad:
            out.retain_grad()
        calls.append((torch.is_grad_enabled(), out))
        return out

    agent.denoiser.net.forward_hidden = wrapped
    return calls


# -- interface ---------------------------------------------------------------------------------

def test_registered_with_its_own_config():
    cls = get_agent("dql")
    assert cls.name == "dql"
    cfg = resolve_config(cls, "quadruped_walk", {})
    assert cfg.variant == "official" and cfg.T == 5 and not hasattr(cfg, "M_q")
    assert resolve_config(cls, "cheetah_run", {"variant": "diffusion_ql_paper"}).bc_weight == 1.0
    with pytest.raises(AgentError, match="variant='dql_paper'.*official, diffusion_ql_paper"):
        resolve_config(cls, "cheetah_run", {"variant": "dql_paper"})


@pytest.mark.parametrize("variant,keys", [("official", {"actor_loss"}),
                                          ("diffusion_ql_paper", {"actor_loss", "q_loss", "bc_loss"})])
def test_update_shapes_and_finite(variant, keys):
    agent = make(seeds=(0, 1, 2), variant=variant)
    timer = PhaseTimer()
    for i in range(2):
        out = agent.update(batch(3, seed=i), timer)
    assert set(out) == {"critic_loss", "q_mean", "q_std", "target_q_mean", "bound_share"} | keys
    for k, v in out.items():
        assert v.shape == (3,) and torch.isfinite(v).all(), k
    assert timer.calls["critic_update"] == 2 and timer.calls["actor_update"] == 2
    for mode in ("explore", "eval", "policy"):
        a = agent.act(torch.randn(3, 4, OBS), mode)
        assert a.shape == (3, 4, ACT) and a.abs().max() <= 1
    policy, behaviour = agent.probe_samples(torch.randn(3, 2, OBS), 6)
    assert policy.shape == behaviour.shape == (3, 2, 6, ACT)
    assert type(agent.critic).__name__ == "TwinCritic"  # fault injection relies on its layout


# -- the defining property -----------------------------------------------------------------------

def test_official_actor_loss_matches_hand_computation():
    """-mean_B min_j Q'_j(s, a_0) with the TARGET critics, a_0 the clipped sampler's output from
    the given draws; no normalisation, no behaviour-cloning term."""
    T = 3
    agent = make(T=T)
    with torch.no_grad():  # targets different from the online critics, so the test can tell
        for p in agent.critic_target.parameters():
            p.mul_(1.5)
    obs = torch.randn(1, B_HAND, OBS, generator=torch.Generator().manual_seed(7))
    rng = np.random.default_rng(3)
    draws = [torch.tensor(rng.normal(size=(B_HAND, ACT)), dtype=torch.float32) for _ in range(T)]
    agent.update_noise = replayed_normals([d.clone() for d in draws])
    loss = float(agent.actor_loss(obs)[0].detach())

    betas, alphas, abar = ref.vp_schedule(T)
    o, a = np_(obs[0]), np_(draws[0])
    for i, t in enumerate(range(T - 1, -1, -1)):
        eps = ref.denoiser(agent.denoiser, 0, o, a, np.full(B_HAND, float(t)))
        a = (a - (1 - alphas[t]) / math.sqrt(1 - abar[t]) * eps) / math.sqrt(alphas[t])
        if t > 0:
            a = a + math.sqrt(betas[t]) * np_(draws[i + 1])
        a = np.clip(a, -1, 1)
    target_q = ref.twin_q(agent.critic_target, 0, o, a)
    online_q = ref.twin_q(agent.critic, 0, o, a)
    expected = -target_q.min(0).mean()
    assert loss == pytest.approx(expected, rel=1e-4)
    assert abs(expected + online_q.min(0).mean()) > 1e-3 * abs(expected)  # online critics differ


@pytest.mark.parametrize("T", [2, 5])
def test_actor_update_backpropagates_through_all_T_denoiser_calls(T):
    for over, expected in (({}, T),  # official
                           ({"variant": "diffusion_ql_paper", "bc_weight": 0.0}, T),
                           ({"variant": "diffusion_ql_paper", "bc_weight": 1.0}, T + 1)):  # BC: +1 call
        agent = make(T=T, **over)
        calls = count_denoiser_calls(agent)
        # The chain clips after every step (as when acting), which cuts the gradient of clipped
        # entries; a batch of 256 keeps some entries unclipped along the whole chain.
        agent.update_actor({"obs": torch.randn(1, 256, OBS), "action": torch.rand(1, 256, ACT) * 2 - 1})
        assert len(calls) == expected, f"T={T}, {over}: {len(calls)} calls"
        assert all(grad_on for grad_on, _ in calls)
        # the critic's value reached every step of the chain, the first (t = T-1) included
        for i, (_, out) in enumerate(calls[:T]):
            assert out.grad is not None and out.grad.abs().sum() > 0, f"no gradient at call {i}"


@pytest.mark.parametrize("T", [2, 5])
def test_critic_update_samples_without_gradient_and_qsm_differs(T):
    agent = make(T=T)
    calls = count_denoiser_calls(agent)
    agent.update_critic(batch(1))
    assert len(calls) == T and not any(grad_on for grad_on, _ in calls)
    # contrast: QSM's actor step needs one call whatever T
    qsm_cls = get_agent("qsm")
    qsm = qsm_cls(OBS, ACT, [0], resolve_config(qsm_cls, "cheetah_run", {**SMALL, "T": T}))
    calls = count_denoiser_calls(qsm)
    qsm.update_actor(batch(1))
    assert len(calls) == 1


def test_paper_variant_q_loss_is_scale_free():
    """Diffusion-QL paper variant: L_q = -mean Q / sg(mean |Q|) does not change when Q is rescaled."""
    target = torch.tensor([0.5, -0.3])
    agent = make(variant="diffusion_ql_paper", bc_weight=0.0)
    obs = torch.zeros(1, 64, OBS)
    losses = []
    for scale in (1.0, 40.0):
        agent.critic = QuadraticCritic(target)
        agent.critic.forward = (lambda f, s: lambda o, a: s * f(o, a))(agent.critic.forward, scale)
        agent.update_noise = SeedStreams([0], "fixed")
        losses.append(agent.paper_actor_losses(obs, torch.zeros(1, 64, ACT))[0])
    torch.testing.assert_close(losses[0], losses[1])


def test_official_update_moves_samples_uphill():
    """With a known Q = -|a - a*|^2 as the target critics the sampler's output climbs to a*."""
    target = torch.tensor([0.5, -0.3])
    agent = make(actor_hidden=(64, 64), cond_hidden=(32, 32), time_dim=16, actor_lr=1e-3)
    obs = torch.zeros(1, 64, OBS)
    agent.critic_target = QuadraticCritic(target)
    eval_obs = torch.zeros(1, 256, OBS)
    before = (agent.act(eval_obs, "eval")[0] - target).norm(dim=-1).mean()
    # Backpropagating through the clipped chain is not stable (clipped entries pass no gradient,
    # and the samples later drift off again), so check that they reach the maximum, not stay.
    distances = []
    for i in range(150):
        agent.update_actor({"obs": obs, "action": torch.zeros(1, 64, ACT)})
        if i % 10 == 9:
            distances.append((agent.act(eval_obs, "eval")[0] - target).norm(dim=-1).mean())
    assert min(distances) < 0.25 * before, (before, distances)


# -- the training command --------------------------------------------------------------------------

def test_train_command_writes_valid_contract_and_isolates_a_poisoned_seed(tmp_path):
    args = ["--algo", "dql", "--task", "toy_bimodal", "--seeds", "0", "1", "--out", str(tmp_path),
            "--steps", "60", "--start-steps", "20", "--eval-every", "30", "--eval-episodes", "2",
            "--batch-size", "16", "--probe-states", "3", "--probe-samples", "50", "--threads", "1",
            "--set", "actor_hidden=[32,32]", "--set", "critic_hidden=[32,32]",
            "--set", "cond_hidden=[16,16]", "--set", "time_dim=8", "--set", "T=3",
            "--debug-poison", "50:1"]
    proc = subprocess.run([sys.executable, "-m", "qsm.train", *args], capture_output=True,
                          text=True, env=python_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    ok = rundir.load_run(tmp_path / "seed0")
    assert ok.status["status"] == "complete" and ok.algo == "dql" and ok.seed == 0
    assert list(ok.eval["step"]) == [0, 30, 60]
    assert ok.config["hparams"]["variant"] == "official" and ok.config["hparams"]["T"] == 3
    timing = ok.timing.set_index("phase")["calls"]
    assert timing["critic_update"] == timing["actor_update"] == 40
    states, actions = ok.probe_actions("policy")
    assert states.shape == (3, 2) and actions.shape == (3, 50, 1)
    bad = rundir.load_run(tmp_path / "seed1")  # --debug-poison NaNs seed 1's TwinCritic rows
    assert bad.status["status"] == "diverged" and list(bad.eval["step"]) == [0, 30]
