"""Shapes and maths of every agent against hand computations on tiny inputs."""
import copy
import math

import numpy as np
import pytest
import torch

import reference as ref
from qsm.declare.registry import get_agent, resolve_config
from qsm.harness.seeding import ReplayedDraws
from qsm.learners.diffusion import Schedule, ddpm_sample, vp_beta_schedule
from qsm.runtime.timing import PhaseTimer

OBS, ACT, B = 3, 2, 5


def make(algo, seeds=(0,), **over):
    cls = get_agent(algo)
    small = {"qsm": dict(actor_hidden=(8, 8), cond_hidden=(6, 6), time_dim=4, critic_hidden=(7, 7)),
             "sac": dict(hidden=(6, 6)), "td3": dict(hidden=(6, 6)),
             "dql": dict(actor_hidden=(8, 8), cond_hidden=(6, 6), time_dim=4, critic_hidden=(7, 7))}[algo]
    cfg = resolve_config(cls, "cheetah_run", {**small, **over})
    return cls(OBS, ACT, list(seeds), cfg)


def batch(S, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(S, B, OBS, generator=g),
            "action": torch.rand(S, B, ACT, generator=g) * 2 - 1,
            "reward": torch.randn(S, B, generator=g),
            "next_obs": torch.randn(S, B, OBS, generator=g),
            "mask": (torch.rand(S, B, generator=g) > 0.3).float()}


def np_(x):
    return x.detach().double().numpy()


# -- diffusion pieces ------------------------------------------------------------------------

def test_vp_schedule_matches_design_numbers():
    betas = vp_beta_schedule(5).numpy()
    np.testing.assert_allclose(betas, [0.196, 0.459, 0.636, 0.755, 0.835], atol=1e-3)
    abar = np.cumprod(1 - betas)
    np.testing.assert_allclose(abar, [0.80, 0.44, 0.16, 0.039, 0.0064], rtol=0.03)
    np.testing.assert_allclose(betas, ref.vp_schedule(5)[0], rtol=1e-12)


def replayed_normals(draws):
    """Pre-chosen normal draws for one seed, handed out in order
    (qsm.harness.seeding.ReplayedDraws)."""
    return ReplayedDraws([d.unsqueeze(0) for d in draws])


def test_replayed_draws_check_kind_and_shape():
    draws = ReplayedDraws([torch.zeros(2, 3), torch.tensor([[1], [0]])])
    with pytest.raises(RuntimeError, match="shape"):
        draws.randn(4)
    draws = ReplayedDraws([torch.zeros(2, 3), torch.tensor([[1], [0]])])
    assert draws.randn(3).shape == (2, 3)
    with pytest.raises(RuntimeError, match="outside"):
        draws.randint(1, 1)
    with pytest.raises(RuntimeError, match="no replayed draw left"):
        draws.randn(3)


class ConstantDenoiser(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def at(self, obs):
        return lambda a, t: torch.full_like(a, self.value)


def test_sampler_update_matches_hand_computation():
    T, temp, eps = 3, 0.7, 0.4
    sch = Schedule(T)
    betas, alphas, abar = ref.vp_schedule(T)
    rng = np.random.default_rng(0)
    draws = [torch.tensor(rng.normal(size=(1, 1)), dtype=torch.float32) for _ in range(T)]
    out = ddpm_sample(ConstantDenoiser(eps), sch, torch.zeros(1, 1, 4), 1,
                      replayed_normals(draws), temperature=temp)
    a = float(draws[0])
    for i, t in enumerate(range(T - 1, -1, -1)):
        a = (a - (1 - alphas[t]) / math.sqrt(1 - abar[t]) * eps) / math.sqrt(alphas[t])
        if t > 0:
            a += math.sqrt(betas[t]) * temp * float(draws[i + 1])
        a = min(max(a, -1.0), 1.0)
    assert out.shape == (1, 1, 1)
    assert float(out) == pytest.approx(a, abs=1e-6)


def test_denoiser_split_first_layer_equals_concatenated_layer():
    """The denoiser's split first layer (observation term once, cond(t) once per step value) is
    the network as written, [a, s, cond(t)] through the MLP, for per-row steps and for the
    sampler's single step, with and without gradients."""
    den = make("qsm", seeds=(0, 3)).denoiser
    obs, a = torch.randn(2, 9, OBS), torch.randn(2, 9, ACT)

    def as_written(t_float):
        cond = den.cond(den.time_features(t_float))
        return den.net(torch.cat([a, obs, cond], dim=-1))

    t = torch.randint(5, (2, 9), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(den(obs, a, t), as_written(t.unsqueeze(-1).float()), rtol=1e-5, atol=1e-6)
    eps_theta = den.at(obs)
    for step in range(5):
        torch.testing.assert_close(eps_theta(a, step), as_written(torch.full((2, 9, 1), float(step))),
                                   rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(den.at(obs)(a, 2), as_written(torch.full((2, 9, 1), 2.0)),
                                   rtol=1e-5, atol=1e-6)


def test_cpu_mish_is_torchs_mish():
    from qsm.learners.nets import mish
    x = torch.linspace(-60, 60, 20001)
    torch.testing.assert_close(mish(x), torch.nn.functional.mish(x), rtol=0, atol=2e-6)
    xd = torch.linspace(-20, 20, 401, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mish, (xd,))
    np.testing.assert_allclose(mish(xd).detach().numpy(), ref.np_mish(xd.detach().numpy()), atol=1e-12)


def test_sampler_without_a_score_leaves_two_thirds_of_the_mass_on_the_bounds():
    """The facts docs/audit.md ("Why the bounds") reasons from: the T = 5 chain scales by
    1/sqrt(alpha_t) at every step (12.5 over the chain), so with eps_theta = 0 about 2/3 of every
    coordinate ends on a bound, and a denoiser output eps moves the sample by eps_coef/sqrt(alpha)
    * eps per step, 0.49 (last step) to 2.06 (first)."""
    sch = Schedule(5)
    assert 1 / math.sqrt(sch.alpha_bars[-1]) == pytest.approx(12.5, abs=0.05)
    steps = [eps_coef * inv_sqrt_alpha for eps_coef, inv_sqrt_alpha, _ in sch.step_constants]
    np.testing.assert_allclose(steps, [0.494, 0.830, 1.148, 1.555, 2.063], atol=1e-3)

    class Normals:
        g = torch.Generator().manual_seed(0)

        def randn(self, *shape):
            return torch.randn(1, *shape, generator=self.g)

    a = ddpm_sample(ConstantDenoiser(0.0), sch, torch.zeros(1, 50_000, 4), 2, Normals())
    on_bound = float((a.abs() == 1).float().mean())
    assert 0.655 < on_bound < 0.675, on_bound  # 0.666 at 10^5 draws; +-0.003 is 3 sd at this size


def test_sampler_clips_every_step_and_shapes():
    agent = make("qsm", seeds=(0, 1))
    a = agent.act(torch.randn(2, 7, OBS), "eval")
    assert a.shape == (2, 7, ACT) and a.abs().max() <= 1


# -- QSM -------------------------------------------------------------------------------------

def test_qsm_score_loss_matches_hand_computation():
    agent = make("qsm", M_q=3.0)
    b = batch(1)
    t = torch.tensor([[0, 4, 2, 1, 3]])
    eps = torch.randn(1, B, ACT, generator=torch.Generator().manual_seed(5))
    loss = float(agent.score_loss(b["obs"], b["action"], t, eps).detach())

    _, _, abar = ref.vp_schedule(5)
    tt = t[0].numpy()
    noisy = np.sqrt(abar[tt])[:, None] * np_(b["action"][0]) + np.sqrt(1 - abar[tt])[:, None] * np_(eps[0])
    obs = np_(b["obs"][0])
    # dQ/da by central differences on the mean of the two critics
    h, grad = 1e-5, np.zeros_like(noisy)
    for j in range(ACT):
        d = np.zeros_like(noisy)
        d[:, j] = h
        grad[:, j] = (ref.twin_q(agent.critic, 0, obs, noisy + d).mean(0)
                      - ref.twin_q(agent.critic, 0, obs, noisy - d).mean(0)) / (2 * h)
    eps_pred = ref.denoiser(agent.denoiser, 0, obs, noisy, tt.astype(float))
    expected = np.mean((-3.0 * grad - eps_pred) ** 2)
    assert loss == pytest.approx(expected, rel=1e-4)
    # the sigma_scaled form: the same gradient, scaled by sigma_t = sqrt(1 - abar_t) per sample
    scaled = make("qsm", M_q=3.0, score_target="sigma_scaled")
    loss = float(scaled.score_loss(b["obs"], b["action"], t, eps).detach())
    sigma = np.sqrt(1 - abar[tt])[:, None]
    assert loss == pytest.approx(np.mean((-3.0 * sigma * grad - eps_pred) ** 2), rel=1e-4)
    assert loss != pytest.approx(expected, rel=1e-2)


def test_qsm_td_target_matches_hand_computation():
    agent = make("qsm")
    b = batch(1)
    next_a = torch.rand(1, B, ACT) * 2 - 1
    noise = torch.randn(1, B, ACT)
    y = agent.td_target(b["reward"], b["mask"], b["next_obs"], next_a, noise)
    a2 = np.clip(np_(next_a[0]) + 0.1 * np_(noise[0]), -1, 1)
    q = ref.twin_q(agent.critic_target, 0, np_(b["next_obs"][0]), a2).min(0)
    expected = np_(b["reward"][0]) + 0.99 * np_(b["mask"][0]) * q
    np.testing.assert_allclose(np_(y[0]), expected, rtol=1e-5, atol=1e-6)


def test_qsm_score_update_calls_denoiser_once_whatever_T():
    """The efficiency claim: the score update never runs (or backpropagates through) the sampler."""
    for T in (2, 5, 20):
        agent = make("qsm", T=T)
        calls = []
        net = agent.denoiser.net  # every denoiser evaluation, training or chain path, runs its hidden layers
        original = net.forward_hidden
        net.forward_hidden = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
        agent.update_actor(batch(1))
        assert len(calls) == 1, f"score update ran the denoiser {len(calls)} times at T={T}"
        calls.clear()
        agent.act(torch.randn(1, 1, OBS), "eval")
        assert len(calls) == T  # sampling does grow with T


def test_qsm_actor_lr_follows_cosine_decay():
    agent = make("qsm")
    agent.updates = 1_000_000
    agent.set_actor_lr()
    assert agent.actor_opt.param_groups[0]["lr"] == pytest.approx(1.5e-4)
    agent.updates = 3_000_000
    agent.set_actor_lr()
    assert agent.actor_opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_qsm_paper_M_q_on_every_task_and_opt_in_override():
    """The official paper-settings config has M_q = 50 on every task; 120 is an opt-in."""
    cls = get_agent("qsm")
    for task in ("cheetah_run", "quadruped_walk", "humanoid_walk", "walker_run"):
        assert resolve_config(cls, task, {}).M_q == 50.0, task
    assert resolve_config(cls, "quadruped_walk", {"M_q": 120}).M_q == 120.0


def test_qsm_critic_update_gives_each_critic_its_own_mean_loss_gradient():
    """Official: two critics, each minimising mean_B (Q_j - y)^2 with its own Adam. Our one Adam
    over both must see exactly that gradient per critic (the sum of the two losses, not their
    mean): checked on the output-layer bias, whose gradient is 2 mean_B (Q_j - y)."""
    agent = make("qsm")
    b = batch(1)
    obs, act = np_(b["obs"][0]), np_(b["action"][0])
    q_before = ref.twin_q(agent.critic, 0, obs, act)                                    # (2, B)
    seen = {}

    def td_target(*args):  # record the target the update used (its next actions are sampled)
        y = type(agent).td_target(agent, *args)
        seen["y"] = np_(y[0])
        return y

    agent.td_target = td_target
    loss = agent.update_critic(b)["critic_loss"]
    y = seen["y"]
    expected_loss = ((q_before - y) ** 2).mean(axis=1).sum()
    assert float(loss[0]) == pytest.approx(expected_loss, rel=1e-5)
    bias_grad = np_(agent.critic.net.layers[-1].bias.grad[:, 0, 0])                    # (2,)
    np.testing.assert_allclose(bias_grad, 2 * (q_before - y).mean(axis=1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_sac_td3_critic_step_averages_the_two_critics_losses(algo):
    """jaxrl5's SAC and TD3: one loss, mean_j mean_B (Q_j - y)^2, over the vmapped twin critics:
    each critic's output-layer bias gets the gradient (2 / 2) mean_B (Q_j - y); the target
    critic moves by tau towards the stepped critic."""
    agent = make(algo, seeds=(0, 1))
    b = batch(2, seed=3)
    y = torch.randn(2, B, generator=torch.Generator().manual_seed(4))
    q_before = [ref.twin_q(agent.critic, s, np_(b["obs"][s]), np_(b["action"][s])) for s in (0, 1)]
    target_before = copy.deepcopy(agent.critic_target.state_dict())
    loss = agent.fit_critic(b, y, over_critics="mean")["critic_loss"]
    for s in (0, 1):  # per seed, from that seed's own critics only
        err = q_before[s] - np_(y[s])
        assert float(loss[s]) == pytest.approx((err ** 2).mean(), rel=1e-5)
        bias_grad = agent.critic.net.layers[-1].bias.grad[2 * s:2 * s + 2, 0, 0]  # members 2s, 2s+1
        np.testing.assert_allclose(np_(bias_grad), err.mean(axis=1), rtol=1e-4, atol=1e-6)
    tau = agent.cfg.tau
    for key, value in agent.critic_target.state_dict().items():
        expected = (1 - tau) * target_before[key] + tau * agent.critic.state_dict()[key]
        torch.testing.assert_close(value, expected)
    with pytest.raises(ValueError, match="over_critics"):
        agent.fit_critic(b, y, over_critics="max")


class QuadraticCritic(torch.nn.Module):
    """Q(s, a) = -|a - a*|^2 for both critics; shape (S, 2, B)."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def forward(self, obs, act):
        q = -((act - self.target) ** 2).sum(-1)
        return torch.stack([q, q], dim=1)


def test_qsm_denoiser_moves_samples_toward_max_of_known_q():
    """With Q = -|a - a*|^2 the regression target is eps = 2 M_q (a~ - a*). At M_q = 1 the last
    reverse step (coefficient ~0.49 on eps at T=5) lands near a*; larger M_q overshoots and the
    clipped chain piles mass on the action bounds (the bang-bang actions seen in the paper)."""
    torch.manual_seed(0)
    target = torch.tensor([0.5, -0.3])
    agent = make("qsm", actor_hidden=(64, 64), cond_hidden=(32, 32), time_dim=16, M_q=1.0,
                 actor_lr=3e-3)
    agent.critic = QuadraticCritic(target)
    obs = torch.zeros(1, 512, OBS)
    before = (agent.act(obs, "eval")[0] - target).norm(dim=-1).mean()
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        # replay actions spread over the whole action box, as under a random policy
        b = {"obs": torch.zeros(1, 128, OBS), "action": torch.rand(1, 128, ACT, generator=g) * 2 - 1}
        agent.update_actor(b)
    after_samples = agent.act(obs, "eval")[0]
    after = (after_samples - target).norm(dim=-1).mean()
    assert after < 0.25 * before, (before, after)
    assert (after_samples.mean(0) - target).norm() < 0.1


# -- SAC -------------------------------------------------------------------------------------

def np_tanh_gauss(mean, log_std, noise):
    u = mean + np.exp(log_std) * noise
    logp = (-0.5 * noise**2 - log_std - 0.5 * np.log(2 * np.pi) - np.log(1 - np.tanh(u) ** 2)).sum(-1)
    return np.tanh(u), logp


def np_sac_actor(agent, obs):
    h = ref.np_relu(ref.mlp(agent.actor.trunk.layers, 0, obs, ref.np_relu))
    mean = ref.mlp([agent.actor.mean], 0, h, None)
    log_std = np.clip(ref.mlp([agent.actor.log_std], 0, h, None), -20, 2)
    return mean, log_std


def test_sac_td_target_matches_hand_computation():
    agent = make("sac", init_temperature=0.3)
    b = batch(1)
    noise = torch.randn(1, B, ACT, generator=torch.Generator().manual_seed(2))
    y = agent.td_target(b["reward"], b["mask"], b["next_obs"], noise)
    nobs = np_(b["next_obs"][0])
    a, logp = np_tanh_gauss(*np_sac_actor(agent, nobs), np_(noise[0]))
    q = ref.twin_q(agent.critic_target, 0, nobs, a).min(0)
    expected = np_(b["reward"][0]) + 0.99 * np_(b["mask"][0]) * (q - 0.3 * logp)
    np.testing.assert_allclose(np_(y[0]), expected, rtol=1e-4, atol=1e-5)


def test_sac_actor_loss_and_target_entropy():
    agent = make("sac", init_temperature=0.5)
    assert agent.target_entropy == -ACT / 2
    b = batch(1)
    noise = torch.randn(1, B, ACT, generator=torch.Generator().manual_seed(3))
    loss, entropy = agent.actor_loss(b["obs"], noise)
    obs = np_(b["obs"][0])
    a, logp = np_tanh_gauss(*np_sac_actor(agent, obs), np_(noise[0]))
    q = ref.twin_q(agent.critic, 0, obs, a).mean(0)
    assert float(loss.detach()) == pytest.approx(np.mean(0.5 * logp - q), rel=1e-4)
    assert float(entropy.detach()) == pytest.approx(-logp.mean(), rel=1e-4)


def test_sac_temperature_step_direction():
    agent = make("sac")
    # entropy above target -> temperature must decrease; below -> increase
    before = float(agent.log_alpha.detach())
    agent.update_temperature(torch.tensor([agent.target_entropy + 1.0]))
    assert float(agent.log_alpha.detach()) < before
    before = float(agent.log_alpha.detach())
    agent.update_temperature(torch.tensor([agent.target_entropy - 1.0]))
    assert float(agent.log_alpha.detach()) > before


def test_sac_eval_is_tanh_mean():
    agent = make("sac")
    obs = torch.randn(1, 4, OBS)
    mean, _ = np_sac_actor(agent, np_(obs[0]))
    np.testing.assert_allclose(np_(agent.act(obs, "eval")[0]), np.tanh(mean), rtol=1e-5, atol=1e-6)


# -- TD3 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("clip_target_action", [False, True])
def test_td3_td_target_matches_hand_computation(clip_target_action):
    """Official: mu'(s') + clip(0.2 noise, -0.5, 0.5), NOT clipped back into [-1, 1]; the TD3
    paper's clip is an option."""
    agent = make("td3", clip_target_action=clip_target_action)
    with torch.no_grad():  # target actions near the bound, so that the smoothing crosses it
        agent.actor_target.net.layers[-1].bias.fill_(1.5)
    b = batch(1)
    noise = torch.randn(1, B, ACT, generator=torch.Generator().manual_seed(4)) * 3  # exercise the clip
    y = agent.td_target(b["reward"], b["mask"], b["next_obs"], noise)
    nobs = np_(b["next_obs"][0])
    mu = np.tanh(ref.mlp(agent.actor_target.net.layers, 0, nobs, ref.np_relu))
    a = mu + np.clip(0.2 * np_(noise[0]), -0.5, 0.5)
    assert np.abs(a).max() > 1  # the case where the two choices differ occurs
    if clip_target_action:
        a = np.clip(a, -1, 1)
    q = ref.twin_q(agent.critic_target, 0, nobs, a).min(0)
    expected = np_(b["reward"][0]) + 0.99 * np_(b["mask"][0]) * q
    np.testing.assert_allclose(np_(y[0]), expected, rtol=1e-5, atol=1e-6)


def test_td3_actor_loss_is_mean_of_both_critics():
    agent = make("td3")
    obs = torch.randn(1, B, OBS, generator=torch.Generator().manual_seed(6))
    o = np_(obs[0])
    mu = np.tanh(ref.mlp(agent.actor.net.layers, 0, o, ref.np_relu))
    qs = ref.twin_q(agent.critic, 0, o, mu)
    assert not np.allclose(qs[0], qs[1])  # Q_1 alone would give another number
    assert float(agent.actor_loss(obs)[0].detach()) == pytest.approx(-qs.mean(), rel=1e-5)


def test_td3_delays_actor_and_target_actor_but_not_target_critics():
    """Official: target critics after every critic update; actor and target actor every 2nd."""
    agent = make("td3")
    timer = PhaseTimer()
    actor0 = copy.deepcopy(agent.actor.state_dict())
    actor_target0 = copy.deepcopy(agent.actor_target.state_dict())
    critic_target0 = copy.deepcopy(agent.critic_target.state_dict())
    out = agent.update(batch(1), timer)
    assert "actor_loss" not in out
    assert all(torch.equal(actor0[k], v) for k, v in agent.actor.state_dict().items())
    assert all(torch.equal(actor_target0[k], v) for k, v in agent.actor_target.state_dict().items())
    # target critics moved tau of the way to the updated critics
    for k, v in agent.critic_target.state_dict().items():
        expected = 0.995 * critic_target0[k] + 0.005 * agent.critic.state_dict()[k]
        torch.testing.assert_close(v, expected)
    assert not all(torch.equal(critic_target0[k], v) for k, v in agent.critic_target.state_dict().items())
    out = agent.update(batch(1, seed=1), timer)
    assert "actor_loss" in out
    assert not all(torch.equal(actor0[k], v) for k, v in agent.actor.state_dict().items())
    assert not all(torch.equal(actor_target0[k], v) for k, v in agent.actor_target.state_dict().items())


# -- every agent -----------------------------------------------------------------------------

@pytest.mark.parametrize("algo", ["qsm", "sac", "td3"])
def test_xavier_uniform_init_and_zero_bias(algo):
    agent = make(algo)
    for name, p in agent.named_parameters():
        if name.endswith("bias"):
            assert torch.all(p == 0), name
        elif name.endswith("weight"):
            fan_in, fan_out = p.shape[1], p.shape[2]
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert p.abs().max() <= bound + 1e-7, name


@pytest.mark.parametrize("algo", ["qsm", "sac", "td3"])
def test_update_shapes_and_finite(algo):
    agent = make(algo, seeds=(0, 1, 2))
    timer = PhaseTimer()
    for i in range(2):
        out = agent.update(batch(3, seed=i), timer)
    for k, v in out.items():
        assert v.shape == (3,), k
        assert torch.isfinite(v).all(), k
    for mode in ("explore", "eval", "policy"):
        a = agent.act(torch.randn(3, 4, OBS), mode)
        assert a.shape == (3, 4, ACT) and a.abs().max() <= 1
    policy, behaviour = agent.probe_samples(torch.randn(3, 2, OBS), 6)
    assert policy.shape == behaviour.shape == (3, 2, 6, ACT)
