"""The diffusion actor-critic that QSM (qsm/agent.py) and online Diffusion-QL (baselines/dql.py)
share, seed-batched. The two agents differ only in how they improve the denoiser (`update_actor`).

Networks: a denoiser eps_theta(s, a, t) with its VP schedule (t = 0 .. T-1), twin critics Q_1, Q_2
and their Polyak-averaged targets Q'_j; Adam on each, the actor's step size cosine-decayed to 0.

Per update, on a seed-batched replay sample:
  1. Critic:  a' = clip(sampler(s') + N(0, sigma_target^2)),  y = r + gamma * mask * min_j Q'_j(s', a')
              minimise mean_B (Q_j(s, a) - y)^2 for j = 1, 2 (each critic its own loss and Adam);
              Polyak-average the target critics.
  2. Actor:   the agent's own update of the denoiser (`update_actor`).
Acting: the DDPM sampler (a_T ~ N(0, I), T denoiser calls, clipped to [-1, 1] every step);
exploration adds N(0, sigma_explore^2) and clips; evaluation uses the stochastic sampler alone.
The sampler is one method, `sample(obs, noise)`: acting (and so evaluation, the probe samples and
`python -m qsm.policy`, which draw through `act`), the critic's target and dql's actor loss all
draw through it, so a variant sampler is one override.
Hyperparameters: `DiffusionConfig` (qsm/learners/diffusion_agent_config.py), extended by each agent.
"""
from __future__ import annotations

import abc
import math

import torch

from qsm.learners.agent_base import Agent, adam, bound_share, frozen_copy
from qsm.learners.diffusion import Denoiser, Schedule, reverse_chain
from qsm.learners.nets import TwinCritic


class DiffusionActorCritic(Agent):
    POLICY_MODULES = ("denoiser",)

    def __init__(self, obs_dim, act_dim, seeds, cfg, device="cpu"):
        super().__init__(obs_dim, act_dim, seeds, cfg, device)
        g = self.init_gens
        self.denoiser = Denoiser(g, obs_dim, act_dim, cfg.T, cfg.time_dim, cfg.cond_hidden,
                                 cfg.actor_hidden, "mish", self.device)
        self.critic = TwinCritic(g, obs_dim, act_dim, cfg.critic_hidden, "relu", self.device)
        self.critic_target = frozen_copy(self.critic)
        self.schedule = Schedule(cfg.T, cfg.beta_min, cfg.beta_max).to(self.device)
        self.actor_opt = adam(self.denoiser.parameters(), cfg.actor_lr)
        # Two critics with two Adams in the official code, each on its own loss. Adam is
        # elementwise, so one Adam over both stacked critics on the SUM of the two losses gives
        # each critic exactly its own gradient and update (a mean would halve the gradients,
        # which Adam undoes only up to its eps).
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)

    # -- the sampler ----------------------------------------------------------------------------
    def sample(self, obs, noise):
        """The policy's sampler: one action (S, B, act_dim) in [-1, 1] per observation (S, B,
        obs_dim), drawn from the random streams `noise` (act_noise when acting, update_noise in an
        update): the DDPM reverse chain of the denoiser (qsm.learners.diffusion.reverse_chain). The
        one place every draw of the policy comes from: acting (act: exploration, evaluation, probe
        samples), the critic's target (update_critic) and dql's actor loss. Autograd follows it
        where the caller has gradients enabled (dql's actor loss); act and the critic's target
        call it under no_grad."""
        return reverse_chain(self.denoiser, self.schedule, obs, self.act_dim, noise,
                             self.cfg.temperature)

    # -- acting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs, mode):
        a = self.sample(obs, self.act_noise)
        if mode == "explore":
            a = (a + self.cfg.explore_noise * self.act_noise.randn(*a.shape[1:])).clamp(-1, 1)
        return a

    # -- learning -------------------------------------------------------------------------------
    def update(self, batch, timer):
        with timer.phase("critic_update"):
            metrics = self.update_critic(batch)
        with timer.phase("actor_update"):
            metrics.update(self.update_actor(batch))
        self.updates += 1
        return metrics

    @abc.abstractmethod
    def update_actor(self, b) -> dict:
        """The agent's step on the denoiser (step_actor); returns its per-seed diagnostics."""

    def update_critic(self, b):
        with torch.no_grad():
            next_a = self.sample(b["next_obs"], self.update_noise)
            noise = self.update_noise.randn(*next_a.shape[1:])
            target = self.td_target(b["reward"], b["mask"], b["next_obs"], next_a, noise)
        return {**self.fit_critic(b, target, over_critics="sum"), "bound_share": bound_share(next_a)}

    def td_target(self, reward, mask, next_obs, next_action, noise):
        """y = r + gamma * mask * min_j Q'_j(s', clip(a' + sigma * noise, -1, 1))."""
        next_a = (next_action + self.cfg.target_noise * noise).clamp(-1, 1)
        next_q = self.critic_target(next_obs, next_a).min(dim=1).values                  # (S, B)
        return reward + self.cfg.gamma * mask * next_q

    def noised(self, action, t, eps):
        """The forward process at step t: a~ = sqrt(abar_t) a + sqrt(1 - abar_t) eps (S, B, A)."""
        abar = self.schedule.alpha_bars[t].unsqueeze(-1)
        return abar.sqrt() * action + (1 - abar).sqrt() * eps

    def step_actor(self, per_seed):
        """One Adam step of the denoiser on the sum over seeds of a per-seed loss (S,)."""
        self.set_actor_lr()
        self.actor_opt.zero_grad(set_to_none=True)
        per_seed.sum().backward()
        self.actor_opt.step()

    def set_actor_lr(self):
        """Cosine decay to 0 over `actor_lr_decay_steps` actor updates (optax cosine_decay_schedule)."""
        cfg = self.cfg
        frac = min(self.updates, cfg.actor_lr_decay_steps) / cfg.actor_lr_decay_steps
        lr = cfg.actor_lr * 0.5 * (1 + math.cos(math.pi * frac))
        for group in self.actor_opt.param_groups:
            group["lr"] = lr
