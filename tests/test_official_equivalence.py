"""Update-level equivalence with the authors' official JAX implementation.

Both implementations get identical parameters (the official learner's initialisation copied into
ours), the same replay batches and the same noise (the official draws replayed from its PRNG keys,
tests/official_impl.py), and after every update these must agree:
  * the losses and Q statistics the official learner reports, and the critic targets (their
    mean, std, min and max, which is what the official learner reports of them);
  * QSM's action gradient mean_j dQ_j/da at the noised replay actions, elementwise, against
    jax.grad of the official critics, and against the learner's own statistics of it;
  * every parameter of every network, target networks included, and Adam's first and second
    moments (the second moment is the squared gradient: a gradient off by a constant factor, to
    which Adam's parameter step is blind, still shows there);
  * the key the official learner holds afterwards, against our replay of its key splitting.
Also: the DDPM sampler given the same initial noise and per-step z's, and acting (explore and
eval) given the same draws. QSM runs at small widths over 3 updates for two seeds in one block
(each seed against its own official learner), and once at the paper's sizes.

Tolerances (float32 on CPU; XLA and torch sum matrix products in different orders, so results
differ by rounding, which grows with depth and width). Each compared array must satisfy
|ours - official| <= atol + rtol * max|official|, the maximum over that array: float32 rounding
in a sum follows the size of its terms, so an element that cancels to nearly 0 keeps an absolute
error set by the array's scale (official_impl.Tolerance). Statistics (mean, std, min, max) use the
scale of their array. Small sizes:
  * parameters (targets included): atol 1e-6, rtol 1e-5  (one Adam step moves a parameter by up
    to lr = 3e-4, so a step off by a few percent already fails);
  * Adam's first and second moments: atol 1e-9, rtol 1e-4;
  * losses, critic targets, Q statistics, action gradients, sampler and acting outputs: atol
    1e-5, rtol 1e-4.
Measured (official_impl.MEASURED, |diff| / bound, worst per run): below 0.04 for QSM, SAC, TD3,
the sampler and acting; 0.30 for dql's denoiser parameters, whose gradients through the clipped
sampler are often near 0, where Adam amplifies rounding (see below). At the paper's
sizes (512-wide networks, batch 256) every bound is 5x wider, and online parameters are allowed
half an Adam step (atol 1.5e-4): there some gradient elements are within a few eps (1e-8) of 0,
where Adam's step lr * g / (|g| + eps) turns the rounding of g into up to ~0.2 of a step
(measured: 0.35 of this bound); those gradients themselves are held to the tight bound through
the moments (0.02 of it).

Enabling: install the optional extra (pip install -e ".[official]", or QSM_EXTRAS=official bash
scripts/install.sh) and make the official checkout findable (QSM_OFFICIAL_PATH, or
../shared/official/score_matching_rl next to the repository; see qsm/harness/official.py). Without
either, every test here is skipped with the reason; with QSM_REQUIRE_OFFICIAL=1 (CI) it fails.
"""
from __future__ import annotations

import os

# One XLA thread, like the one torch thread of every test worker (conftest.py).
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np
import pytest
import torch

from qsm.harness import official

try:
    official.check_extra()
    official.find_checkout()
except official.OfficialUnavailable as e:
    if os.environ.get("QSM_REQUIRE_OFFICIAL"):  # CI: these tests must run, not skip
        raise
    pytest.skip(f"{e} (then run pytest tests/test_official_equivalence.py)", allow_module_level=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import official_impl as oi  # noqa: E402
from qsm.declare.registry import get_agent, resolve_config  # noqa: E402
from qsm.harness.seeding import ReplayedDraws  # noqa: E402
from qsm.learners.agent_base import critic_diagnostics  # noqa: E402
from qsm.learners.diffusion import ddpm_sample, reverse_chain  # noqa: E402
from qsm.learners.nets import polyak_update  # noqa: E402
from qsm.runtime.timing import PhaseTimer  # noqa: E402

PARAMS = oi.Tolerance(rtol=1e-5, atol=1e-6)
MOMENTS = oi.Tolerance(rtol=1e-4, atol=1e-9)
VALUES = oi.Tolerance(rtol=1e-4, atol=1e-5)
PAPER_SCALE = 5.0
# At the paper's sizes some gradient elements are within a few eps (1e-8) of 0, where Adam's step
# lr * g / (|g| + eps) turns the rounding of g into a fraction of a step: online parameters are
# compared to within half an Adam step (lr = 3e-4); their gradients, through the moments, and the
# target networks stay at the tight bounds.
PAPER_PARAMS = oi.Tolerance(rtol=5e-5, atol=1.5e-4)

OBS, ACT, B = 5, 3, 32
SEEDS = (0, 1)


def wider(tol: oi.Tolerance, by: float) -> oi.Tolerance:
    return oi.Tolerance(tol.rtol * by, tol.atol * by)


spaces = official.gym_spaces


def make_batches(n_updates, seeds, obs_dim, act_dim, batch_size, seed=0):
    """Per update: one official batch per seed, and the same data as our (S, B, ...) batch."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_updates):
        per_seed = [{"observations": rng.normal(size=(batch_size, obs_dim)).astype(np.float32),
                     "actions": rng.uniform(-1, 1, (batch_size, act_dim)).astype(np.float32),
                     "rewards": rng.normal(size=batch_size).astype(np.float32),
                     "masks": (rng.uniform(size=batch_size) > 0.2).astype(np.float32),
                     "next_observations": rng.normal(size=(batch_size, obs_dim)).astype(np.float32)}
                    for _ in range(seeds)]
        ours = {k: torch.from_numpy(np.stack([b[src] for b in per_seed]))
                for k, src in (("obs", "observations"), ("action", "actions"), ("reward", "rewards"),
                               ("mask", "masks"), ("next_obs", "next_observations"))}
        out.append((per_seed, ours))
    return out


class OfficialRun:
    """The official learners (one per seed) trained for a few updates, with everything recorded."""

    def __init__(self, algo, create_kwargs, seeds, obs_dim, act_dim, batch_size, n_updates, T=None):
        self.algo, self.kwargs = algo, create_kwargs
        self.seeds, self.obs_dim, self.act_dim, self.B = len(seeds), obs_dim, act_dim, batch_size
        cls = official.load_learner(algo)
        obs_space, act_space = spaces(obs_dim, act_dim)
        perturb = np.random.default_rng(7)
        self.initial = [oi.perturb_targets(cls.create(s, obs_space, act_space, **create_kwargs), perturb)
                        for s in seeds]
        self.batches = make_batches(n_updates, len(seeds), obs_dim, act_dim, batch_size)
        self.draws, self.infos, self.after = [], [], []
        learners = list(self.initial)
        for u, (per_seed, _) in enumerate(self.batches):
            draws, infos = [], []
            for i, learner in enumerate(learners):
                d, expected_key = self.replay(learner.rng, u)
                if algo in ("sac", "td3"):
                    learner, info = learner.update(per_seed[i], 1)
                else:
                    learner, info = learner.update(per_seed[i])
                assert oi.same_key(learner.rng, expected_key), \
                    f"{algo}: the replay of the official key splitting is out of step at update {u}"
                learners[i] = learner
                draws.append(d)
                infos.append({k: float(v) for k, v in info.items()})
            self.draws.append(oi.stack_seeds(draws))
            self.infos.append(infos)
            self.after.append(list(learners))

    def replay(self, rng, update_index):
        B, A, T = self.B, self.act_dim, self.kwargs.get("T", 5)
        if self.algo == "qsm":
            return oi.qsm_update_draws(rng, B, A, T)
        if self.algo == "dql":
            return oi.dql_update_draws(rng, B, A, T)
        if self.algo == "sac":
            return oi.sac_update_draws(rng, B, A)
        return oi.td3_update_draws(rng, B, A, actor_step=(update_index + 1) % 2 == 0)


def build_ours(run: OfficialRun, config: dict):
    cls = get_agent(run.algo)
    agent = cls(run.obs_dim, run.act_dim, list(range(run.seeds)),
                resolve_config(cls, "cheetah_run", config))
    link_list = oi.links(run.algo, agent, run.seeds)
    oi.load_official_params(agent, run.initial, link_list)
    return agent, link_list


def record(agent, name, log):
    """Keep the arguments and result of every call of agent.<name> (the update's intermediates)."""
    original = getattr(agent, name)

    def wrapped(*args):
        out = original(*args)
        log.setdefault(name, []).append((args, out))
        return out

    setattr(agent, name, wrapped)


def stats(x):
    x = np.asarray(x, dtype=np.float64)
    return {"mean": x.mean(), "std": x.std(), "min": x.min(), "max": x.max()}


def assert_stats(what, ours, info, prefix, suffix, tol):
    """A statistic (mean, std, min, max) of an array, at the array's scale: a mean near 0 keeps
    the rounding of its terms."""
    scale = float(np.abs(np.asarray(ours, dtype=np.float64)).max())
    for key, value in stats(ours).items():
        oi.assert_close(f"{what} {key}", value, info[f"{prefix}_{key}{suffix}"], tol, scale=scale)


def official_action_gradient(learner, obs, actions):
    """mean_j dQ_j/da through the official critic networks (what update_actor differentiates)."""
    grads = [jax.grad(lambda a, c=c: c.apply_fn({"params": c.params}, obs, a).sum())(actions)
             for c in (learner.critic_1, learner.critic_2)]
    return np.asarray(jnp.stack(grads).mean(0))


def stats_rms(info, prefix):
    """RMS of a tensor from the official tensorstats (mean, population std): sqrt(mean^2 + std^2)."""
    return np.sqrt(np.asarray(info[f"{prefix}_mean"], np.float64) ** 2
                   + np.asarray(info[f"{prefix}_std"], np.float64) ** 2)


def pooled_std(info, prefix):
    """Std of the two critics' values pooled, from each critic's mean and (population) std."""
    m1, m2 = (np.asarray(info[f"{prefix}_mean_{j}"], np.float64) for j in (1, 2))
    v1, v2 = (np.asarray(info[f"{prefix}_std_{j}"], np.float64) ** 2 for j in (1, 2))
    return np.sqrt((v1 + v2) / 2 + ((m1 - m2) / 2) ** 2)


def check_against(run: OfficialRun, config: dict, mutate=None, paper_sizes: bool = False):
    """Train ours beside the recorded official run; AssertionError at the first disagreement."""
    agent, link_list = build_ours(run, config)
    if mutate is not None:
        mutate(agent)
    scale = PAPER_SCALE if paper_sizes else 1.0
    values, targets, moments = wider(VALUES, scale), wider(PARAMS, scale), wider(MOMENTS, scale)
    params = PAPER_PARAMS if paper_sizes else PARAMS
    log = {}
    for name in ("td_target", "action_gradient"):
        if hasattr(agent, name):
            record(agent, name, log)
    for u, (per_seed, batch) in enumerate(run.batches):
        log.clear()
        agent.update_noise = ReplayedDraws(run.draws[u])
        out = agent.update(batch, PhaseTimer(enabled=False))
        assert len(agent.update_noise) == 0, "our update drew less noise than the official one"
        for i in range(run.seeds):
            info, learner = run.infos[u][i], run.after[u][i]
            where = f"update {u}, seed index {i}"
            if run.algo in ("qsm", "dql"):
                target = log["td_target"][0][1][i]
                assert_stats(f"{where}: critic target", target, info, "target_q", "", values)
                oi.assert_close(f"{where}: critic loss (sum of both)", out["critic_loss"][i],
                                info["c_loss_mean_1"] + info["c_loss_mean_2"], values)
                oi.assert_close(f"{where}: Q", out["q_mean"][i], (info["q_mean_1"] + info["q_mean_2"]) / 2, values)
                oi.assert_close(f"{where}: actor loss", out["actor_loss"][i], info["actor_loss_mean"], values)
                # the diagnostics of metrics.csv, from the official learner's tensorstats
                oi.assert_close(f"{where}: target Q mean", out["target_q_mean"][i], info["target_q_mean"], values)
                oi.assert_close(f"{where}: Q std over both critics", out["q_std"][i],
                                pooled_std(info, "q"), values)
                if run.algo == "qsm":
                    oi.assert_close(f"{where}: RMS of eps_theta", out["eps_pred_rms"][i],
                                    stats_rms(info, "eps_pred"), values)
                    oi.assert_close(f"{where}: RMS of dQ/da", out["dq_da_rms"][i],
                                    stats_rms(info, "critic_jacobian"), values)
            else:
                oi.assert_close(f"{where}: critic loss", out["critic_loss"][i], info["critic_loss"], values)
                oi.assert_close(f"{where}: Q", out["q_mean"][i], info["q"], values)
                if "actor_loss" in out or info.get("actor_loss", 0.0) != 0.0:
                    assert "actor_loss" in out, f"{where}: the official learner updated its actor here"
                    oi.assert_close(f"{where}: actor loss", out["actor_loss"][i], info["actor_loss"], values)
                if run.algo == "sac":
                    oi.assert_close(f"{where}: entropy", out["entropy"][i], info["entropy"], values)
            if run.algo == "qsm":
                (obs, noisy), grad = log["action_gradient"][0]
                t, eps = run.draws[u][-2][i].numpy(), run.draws[u][-1][i].numpy()
                abar = np.asarray(learner.alpha_hats)[t][:, None]
                noisy_official = np.sqrt(abar) * per_seed[i]["actions"] + np.sqrt(1 - abar) * eps
                oi.assert_close(f"{where}: noised replay actions", noisy[i], noisy_official, values)
                oi.assert_close(f"{where}: action gradient dQ/da", grad[i],
                                official_action_gradient(learner, per_seed[i]["observations"], noisy_official),
                                values)
                assert_stats(f"{where}: action gradient", grad[i], info, "critic_jacobian", "", values)
        oi.compare_state(agent, run.after[u], link_list, params, targets, moments)
    return agent


# -- QSM ----------------------------------------------------------------------------------------

SMALL_QSM = dict(T=5, M_q=50.0, actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32),
                 time_dim=16, decay_steps=10)   # a short cosine decay, so the schedule shows


def qsm_config(kwargs):
    """Our hyperparameters for the official create() arguments (cond MLP: (128, 128) in both)."""
    return {"M_q": float(kwargs["M_q"]), "T": kwargs["T"], "actor_hidden": kwargs["actor_hidden_dims"],
            "critic_hidden": kwargs["critic_hidden_dims"], "time_dim": kwargs["time_dim"],
            "actor_lr_decay_steps": kwargs["decay_steps"]}


@pytest.fixture(scope="module")
def qsm_run():
    return OfficialRun("qsm", SMALL_QSM, SEEDS, OBS, ACT, B, n_updates=3)


def test_qsm_updates_match_official(qsm_run):
    check_against(qsm_run, qsm_config(SMALL_QSM))


# Each mutation changes one hyperparameter or one line of our update; the comparison must notice.
def _mean_over_critics(agent):
    """The critic loss averaged over the two critics (the form before the fix): halves each
    critic's gradient, which Adam's parameter step hides and its second moment shows."""
    def update_critic(b):
        with torch.no_grad():
            next_a = ddpm_sample(agent.denoiser, agent.schedule, b["next_obs"], agent.act_dim,
                                 agent.update_noise, agent.cfg.temperature)
            noise = agent.update_noise.randn(*next_a.shape[1:])
            target = agent.td_target(b["reward"], b["mask"], b["next_obs"], next_a, noise)
        q = agent.critic(b["obs"], b["action"])
        per_seed = ((q - target.unsqueeze(1)) ** 2).mean(dim=(1, 2))
        agent.critic_opt.zero_grad(set_to_none=True)
        per_seed.sum().backward()
        agent.critic_opt.step()
        polyak_update(agent.critic_target, agent.critic, agent.cfg.tau)
        # report the sum, as the fixed code does, so that only the gradients can give it away
        return critic_diagnostics(per_seed * 2, q, target)
    agent.update_critic = update_critic


def _first_critic_gradient(agent):
    def action_gradient(obs, actions):
        a = actions.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(agent.critic(obs, a)[:, 0].sum(), a)
        return grad
    agent.action_gradient = action_gradient


MUTATIONS = {
    "M_q=49": ({"M_q": 49.0}, None),
    "tau=0.006": ({"tau": 0.006}, None),
    "target_noise=0.11": ({"target_noise": 0.11}, None),
    "gamma=0.98": ({"gamma": 0.98}, None),
    "actor_lr_decay_steps=20": ({"actor_lr_decay_steps": 20}, None),
    "critic loss averaged over critics": ({}, _mean_over_critics),
    "dQ/da of critic 1 only": ({}, _first_critic_gradient),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_qsm_comparison_detects_a_changed_line_or_hyperparameter(qsm_run, mutation):
    override, mutate = MUTATIONS[mutation]
    with pytest.raises(AssertionError) as failure:
        check_against(qsm_run, {**qsm_config(SMALL_QSM), **override}, mutate)
    print(f"{mutation}: {failure.value}")


def test_qsm_paper_sizes_match_official():
    """The paper's networks (512x512 denoiser and critics, 64 Fourier features, M_q = 50) on
    cheetah_run's dimensions, batch 256, one seed, two updates."""
    kwargs = dict(T=5, M_q=50.0, actor_hidden_dims=(512, 512), critic_hidden_dims=(512, 512),
                  time_dim=64, decay_steps=int(2e6))
    run = OfficialRun("qsm", kwargs, (3,), 17, 6, 256, n_updates=2)
    check_against(run, qsm_config(kwargs), paper_sizes=True)


@pytest.mark.parametrize("T,temperature,clip", [(5, 1.0, True), (3, 0.5, False)])
def test_sampler_matches_official(T, temperature, clip):
    """Same initial noise and per-step z's, same output. clip=False leaves the intermediate steps
    unclipped; the official sampler clips its final output in either case, so ours is clipped once
    at the end there (no agent samples unclipped: both codes default to clipping)."""
    learner_cls = official.load_learner("qsm")
    diffusion = official.load_module("jaxrl5.networks.diffusion")
    obs_space, act_space = spaces(OBS, ACT)
    learner = learner_cls.create(4, obs_space, act_space, T=T, ddpm_temperature=temperature,
                                 clip_sampler=clip, actor_hidden_dims=(32, 32), time_dim=16)
    obs = np.random.default_rng(1).normal(size=(64, OBS)).astype(np.float32)
    key = jax.random.PRNGKey(11)

    def official_sample(clip_steps):
        out, _ = diffusion.ddpm_sampler(learner.score_model.apply_fn, learner.score_model.params, T,
                                        key, ACT, obs, learner.alphas, learner.alpha_hats,
                                        learner.betas, temperature, clip_steps)
        return np.asarray(out)

    theirs = official_sample(clip)
    if not clip:  # the unclipped intermediate steps make a difference here
        assert np.abs(theirs - official_sample(True)).max() > 1e-3
    cls = get_agent("qsm")
    agent = cls(OBS, ACT, [0], resolve_config(cls, "cheetah_run", {
        "T": T, "temperature": temperature, "actor_hidden": (32, 32), "time_dim": 16}))
    oi.load_official_params(agent, [learner], [link for link in oi.links("qsm", agent, 1)
                                               if link.state == "score_model"])
    draws, _ = oi.sampler_draws(key, 64, ACT, T)
    with torch.no_grad():
        ours = reverse_chain(agent.denoiser, agent.schedule, torch.from_numpy(obs)[None], ACT,
                             ReplayedDraws(oi.stack_seeds([draws])), temperature, clip=clip)[0]
    oi.assert_close(f"sampler output (T={T}, temperature={temperature}, clip={clip})",
                    ours.clamp(-1, 1), theirs, VALUES)


def test_acting_matches_official(qsm_run):
    """eval_actions: the sampler alone; sample_actions: plus N(0, 0.1^2), clipped (one state)."""
    learner = qsm_run.initial[0]
    agent, _ = build_ours(qsm_run, qsm_config(SMALL_QSM))
    obs = qsm_run.batches[0][0][0]["observations"][0]
    eval_action, after_eval = learner.eval_actions(obs)
    explore_action, _ = learner.sample_actions(obs)
    draws, rng = oi.sampler_draws(learner.rng, 1, ACT, SMALL_QSM["T"])
    _, rng = oi.split(rng)
    assert oi.same_key(rng, after_eval.rng)
    key, _ = oi.split(rng)
    explore_noise = jax.random.normal(key, (ACT,)).reshape(1, ACT)
    obs_t = torch.from_numpy(obs).reshape(1, 1, OBS).expand(2, 1, OBS)  # seeds 0 and 1 of the block
    other = oi.sampler_draws(qsm_run.initial[1].rng, 1, ACT, SMALL_QSM["T"])[0]
    agent.act_noise = ReplayedDraws(oi.stack_seeds([draws, other]))
    oi.assert_close("evaluation action", agent.act(obs_t, "eval")[0, 0], np.asarray(eval_action), VALUES)
    agent.act_noise = ReplayedDraws(oi.stack_seeds([draws + [explore_noise], other + [explore_noise]]))
    oi.assert_close("exploration action", agent.act(obs_t, "explore")[0, 0], np.asarray(explore_action), VALUES)


def test_replay_of_official_keys_is_checked(qsm_run):
    """The bookkeeping guard itself: a replay one split short does not end on the learner's key."""
    learner = qsm_run.initial[0]
    _, expected = oi.qsm_update_draws(learner.rng, B, ACT, SMALL_QSM["T"])
    _, short = oi.diffusion_critic_draws(learner.rng, B, ACT, SMALL_QSM["T"])
    after = qsm_run.after[0][0]
    assert oi.same_key(after.rng, expected) and not oi.same_key(after.rng, short)


# -- online Diffusion-QL (dql), SAC, TD3 ---------------------------------------------------------

def test_dql_updates_match_official_online_diffusion_ql():
    kwargs = dict(T=3, actor_hidden_dims=(32, 32), critic_hidden_dims=(32, 32), time_dim=16,
                  decay_steps=10)
    run = OfficialRun("dql", kwargs, SEEDS, OBS, ACT, B, n_updates=2)
    check_against(run, {"T": 3, "actor_hidden": (32, 32), "critic_hidden": (32, 32),
                        "time_dim": 16, "actor_lr_decay_steps": 10})
    with pytest.raises(AssertionError):  # the Diffusion-QL paper form is not the official update
        check_against(run, {"T": 3, "actor_hidden": (32, 32), "critic_hidden": (32, 32), "time_dim": 16,
                            "actor_lr_decay_steps": 10, "variant": "diffusion_ql_paper", "bc_weight": 0.0})


def test_sac_updates_match_official():
    try:
        official.check_extra(sac=True)
    except official.OfficialUnavailable as e:
        pytest.skip(str(e))
    run = OfficialRun("sac", dict(hidden_dims=(32, 32)), SEEDS, OBS, ACT, B, n_updates=3)
    check_against(run, {"hidden": (32, 32)})


def test_td3_updates_match_official():
    """Four updates: the actor and target actor move at the 2nd and 4th, the target critics at
    every one; the target action is not clipped into [-1, 1] (default, as official)."""
    run = OfficialRun("td3", dict(hidden_dims=(32, 32)), SEEDS, OBS, ACT, B, n_updates=4)
    check_against(run, {"hidden": (32, 32)})
    for over in ({"clip_target_action": True}, {"policy_delay": 1}):
        with pytest.raises(AssertionError):
            check_against(run, {"hidden": (32, 32), **over})
