"""TD3 (Fujimoto et al. 2018) as in QSM's official baseline (jaxrl5 TD3Learner, td3_config).

Per update, on a seed-batched replay sample:
  1. Critic:  a' = mu'(s') + clip(N(0, 0.2^2), -0.5, 0.5)
              y = r + gamma * mask * min_j Q'_j(s', a');  minimise mean_j mean_B (Q_j(s, a) - y)^2
              Polyak-average the target critics (after EVERY critic update).
  2. Every `policy_delay` critic updates: the actor maximises mean_j Q_j(s, mu(s)) (the mean of
     the two critics, not Q_1 alone); Polyak-average the target actor.
Exploration: mu(s) + N(0, 0.1^2), clipped. Evaluation: mu(s).
As in the official code the noised target action a' is NOT clipped back into [-1, 1] (the critic
is queried slightly outside the action box); `clip_target_action=True` clips it as the TD3 paper
does.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from baselines.td3_config import TD3Config
from qsm.learners.agent_base import Agent, adam, frozen_copy, no_param_grads
from qsm.learners.nets import BatchedMLP, TwinCritic, polyak_update


class DeterministicActor(nn.Module):
    def __init__(self, generators, obs_dim, act_dim, hidden, device):
        super().__init__()
        self.net = BatchedMLP(generators, obs_dim, hidden, act_dim, "relu", device)

    def forward(self, obs):
        return torch.tanh(self.net(obs))


class TD3(Agent):
    Config = TD3Config

    def __init__(self, obs_dim, act_dim, seeds, cfg, device="cpu"):
        super().__init__(obs_dim, act_dim, seeds, cfg, device)
        g = self.init_gens
        self.actor = DeterministicActor(g, obs_dim, act_dim, cfg.hidden, self.device)
        self.critic = TwinCritic(g, obs_dim, act_dim, cfg.hidden, "relu", self.device)
        self.actor_target = frozen_copy(self.actor)
        self.critic_target = frozen_copy(self.critic)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr)
        # The official critics are one vmapped ensemble with one Adam and a loss averaged over
        # both critics: the same as one Adam over the stacked critics with that same loss.
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)

    @torch.no_grad()
    def act(self, obs, mode):
        a = self.actor(obs)
        if mode == "explore":
            a = (a + self.cfg.explore_noise * self.act_noise.randn(*a.shape[1:])).clamp(-1, 1)
        return a

    def update(self, batch, timer):
        with timer.phase("critic_update"):
            out = self.update_critic(batch)
        self.updates += 1
        if self.updates % self.cfg.policy_delay == 0:
            with timer.phase("actor_update"):
                out["actor_loss"] = self.update_actor(batch)
                out["actor_q"] = -out["actor_loss"]  # the actor loss is -mean_B mean_j Q_j(s, mu(s))
        return out

    def update_critic(self, b):
        with torch.no_grad():
            noise = self.update_noise.randn(*b["action"].shape[1:])
            target = self.td_target(b["reward"], b["mask"], b["next_obs"], noise)
        return self.fit_critic(b, target, over_critics="mean")

    def td_target(self, reward, mask, next_obs, noise):
        """y = r + gamma * mask * min_j Q'_j(s', mu'(s') + clip(0.2 noise, -0.5, 0.5))."""
        cfg = self.cfg
        smoothing = (cfg.target_noise * noise).clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
        next_a = self.actor_target(next_obs) + smoothing
        if cfg.clip_target_action:
            next_a = next_a.clamp(-1, 1)
        next_q = self.critic_target(next_obs, next_a).min(dim=1).values
        return reward + cfg.gamma * mask * next_q

    def update_actor(self, b):
        per_seed = self.actor_loss(b["obs"])
        self.actor_opt.zero_grad(set_to_none=True)
        per_seed.sum().backward()
        self.actor_opt.step()
        polyak_update(self.actor_target, self.actor, self.cfg.tau)
        return per_seed.detach()

    def actor_loss(self, obs):
        """Per seed: -mean_B mean_j Q_j(s, mu(s)) (gradient into the actor only)."""
        with no_param_grads(self.critic):
            q = self.critic(obs, self.actor(obs)).mean(dim=1)                            # (S, B)
        return -q.mean(dim=1)
