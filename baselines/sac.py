"""Soft actor-critic (Haarnoja et al. 2018) as in QSM's official baseline (jaxrl5 SACLearner, sac_config).

Per update, on a seed-batched replay sample:
  1. Critic:  a' ~ pi(s'),  y = r + gamma * mask * (min_j Q'_j(s', a') - alpha * log pi(a'|s'))
              minimise mean_j mean_B (Q_j(s, a) - y)^2; Polyak-average the target critics.
  2. Actor:   a ~ pi(s) (reparameterised),  minimise alpha * log pi(a|s) - mean_j Q_j(s, a)
  3. Alpha:   minimise alpha * (H - H_target),  H = -mean log pi,  H_target = -act_dim / 2
Policy: tanh-squashed Gaussian, log-std clipped to [-20, 2]. Evaluation acts with tanh(mean).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.sac_config import SACConfig
from qsm.learners.agent_base import Agent, adam, frozen_copy, no_param_grads
from qsm.learners.nets import BatchedLinear, BatchedMLP, TwinCritic


class TanhGaussianActor(nn.Module):
    def __init__(self, generators, obs_dim, act_dim, hidden, log_std_min, log_std_max, device):
        super().__init__()
        self.trunk = BatchedMLP(generators, obs_dim, hidden[:-1], hidden[-1], "relu", device)
        self.mean = BatchedLinear(generators, hidden[-1], act_dim, device)
        self.log_std = BatchedLinear(generators, hidden[-1], act_dim, device)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs):
        h = F.relu(self.trunk(obs))
        return self.mean(h), self.log_std(h).clamp(self.log_std_min, self.log_std_max)


def tanh_gaussian_log_prob(u, mean, log_std):
    """log density of a = tanh(u), u ~ N(mean, exp(log_std)^2), summed over action dims."""
    gauss = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    # log(1 - tanh(u)^2) written stably as 2 (log 2 - u - softplus(-2u))
    squash = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (gauss - squash).sum(-1)


class SAC(Agent):
    Config = SACConfig

    def __init__(self, obs_dim, act_dim, seeds, cfg, device="cpu"):
        super().__init__(obs_dim, act_dim, seeds, cfg, device)
        g = self.init_gens
        self.actor = TanhGaussianActor(g, obs_dim, act_dim, cfg.hidden, cfg.log_std_min,
                                       cfg.log_std_max, self.device)
        self.critic = TwinCritic(g, obs_dim, act_dim, cfg.hidden, "relu", self.device)
        self.critic_target = frozen_copy(self.critic)
        self.log_alpha = nn.Parameter(torch.full((len(self.seeds),), math.log(cfg.init_temperature),
                                                 device=self.device))
        self.target_entropy = -cfg.target_entropy_scale * act_dim
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr)
        # The official critics are one vmapped ensemble with one Adam and a loss averaged over
        # both critics: the same as one Adam over the stacked critics with that same loss.
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)
        self.alpha_opt = adam([self.log_alpha], cfg.temp_lr)

    @staticmethod
    def squash(mean, log_std, noise):
        """Reparameterised tanh-Gaussian sample and its log-density."""
        u = mean + log_std.exp() * noise
        return torch.tanh(u), tanh_gaussian_log_prob(u, mean, log_std)

    @torch.no_grad()
    def act(self, obs, mode):
        if mode == "eval":
            return torch.tanh(self.actor(obs)[0])
        mean, log_std = self.actor(obs)
        return self.squash(mean, log_std, self.act_noise.randn(*mean.shape[1:]))[0]

    def update(self, batch, timer):
        with timer.phase("critic_update"):
            metrics = self.update_critic(batch)
        with timer.phase("actor_update"):
            actor_loss, entropy = self.update_actor(batch)
            alpha = self.update_temperature(entropy)
        self.updates += 1
        return {**metrics, "actor_loss": actor_loss, "entropy": entropy, "alpha": alpha}

    def update_critic(self, b):
        with torch.no_grad():
            noise = self.update_noise.randn(*b["action"].shape[1:])
            target = self.td_target(b["reward"], b["mask"], b["next_obs"], noise)
        return self.fit_critic(b, target, over_critics="mean")

    def td_target(self, reward, mask, next_obs, noise):
        """y = r + gamma * mask * (min_j Q'_j(s', a') - alpha log pi(a'|s')), a' = tanh(mu + std * noise)."""
        cfg = self.cfg
        next_a, next_logp = self.squash(*self.actor(next_obs), noise)
        next_q = self.critic_target(next_obs, next_a).min(dim=1).values                  # (S, B)
        if cfg.backup_entropy:
            next_q = next_q - self.log_alpha.exp().unsqueeze(1) * next_logp
        return reward + cfg.gamma * mask * next_q

    def update_actor(self, b):
        noise = self.update_noise.randn(*b["action"].shape[1:])
        per_seed, entropy = self.actor_loss(b["obs"], noise)
        self.actor_opt.zero_grad(set_to_none=True)
        per_seed.sum().backward()
        self.actor_opt.step()
        return per_seed.detach(), entropy.detach()

    def actor_loss(self, obs, noise):
        """Per seed: mean_B (alpha log pi(a|s) - mean_j Q_j(s, a)), a = tanh(mu + std * noise);
        also returns the entropy estimate -mean log pi."""
        a, logp = self.squash(*self.actor(obs), noise)
        with no_param_grads(self.critic):
            q = self.critic(obs, a).mean(dim=1)                                          # (S, B)
        alpha = self.log_alpha.detach().exp().unsqueeze(1)
        return (alpha * logp - q).mean(dim=1), -logp.mean(dim=1)

    def update_temperature(self, entropy):
        """One Adam step on log(alpha); returns the alpha this update used (before the step)."""
        alpha = self.log_alpha.exp()
        loss = (alpha * (entropy - self.target_entropy)).sum()
        self.alpha_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.alpha_opt.step()
        return alpha.detach()
