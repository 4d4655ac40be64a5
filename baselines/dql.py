"""Online Diffusion-QL (the official QSM repository's DiffusionOnlineLearner), seed-batched.

The update that the QSM paper contrasts with its own: the diffusion policy is improved by
backpropagating the critic's value through the WHOLE reverse sampler. Everything except the
actor update is the diffusion actor-critic that QSM also builds on
(qsm/learners/diffusion_agent.py: same Denoiser, Schedule, TwinCritic, critic update, acting), so
the two agents differ in exactly one step.

Per update, on a seed-batched replay sample:
  1. Critic:  exactly QSM's (the shared base):  a' = clip(sampler(s') + N(0, sigma_target^2)),
              y = r + gamma * mask * min_j Q'_j(s', a');  minimise mean_B (Q_j(s, a) - y)^2
              for each critic; Polyak-average the target critics.
  2. Actor:   a_0 = sampler(s), drawn WITH gradient through all T denoiser calls
              (a_T ~ N(0, I); a_{t-1} = clip((a_t - c_t eps_theta(s, a_t, t)) / sqrt(alpha_t) + sigma_t z))
              minimise  -mean_B min_j Q'_j(s, a_0)      (the TARGET critics; no other term)
              (gradient into the denoiser only). T denoiser calls with gradient per sample,
              against QSM's one.
  Acting: QSM's DDPM sampler; exploration adds N(0, sigma_explore^2) and clips.

`variant="diffusion_ql_paper"` instead uses the actor loss of the Diffusion-QL paper (Wang, Hunt,
Zhou; ICLR 2023) on the same networks:
              L_q  = -mean_j Q_j(s, a_0) / sg(mean_j |Q_j(s, a_0)|)    (online critics, scale-free)
              L_bc = mean_dims (eps - eps_theta(s, sqrt(abar_t) a + sqrt(1 - abar_t) eps, t))^2,
                     t ~ U{0..T-1}, eps ~ N(0, I), a from the replay buffer
              minimise L_q + bc_weight * L_bc      (T + 1 denoiser calls with gradient)
  Diffusion-QL draws one critic at random for the numerator and the other for the denominator;
  averaging both is its deterministic version. It writes L_bc + eta * L_q; bc_weight = 1 / eta,
  and bc_weight = 1 is its eta = 1 of the D4RL locomotion tasks. Not included in either variant:
  Diffusion-QL's EMA actor, max-Q selection among several samples, gradient-norm clipping.
Hyperparameters: baselines/dql_config.py.
"""
from __future__ import annotations

import torch

from baselines.dql_config import DQLConfig
from qsm.learners.agent_base import no_param_grads
from qsm.learners.diffusion_agent import DiffusionActorCritic


class DiffusionQL(DiffusionActorCritic):
    Config = DQLConfig

    def update_actor(self, b):
        """Step 2: one step of the denoiser on the value of its own samples."""
        if self.cfg.variant == "official":
            per_seed = self.actor_loss(b["obs"])
            losses = {"actor_loss": per_seed.detach()}
        else:
            q_loss, bc_loss = self.paper_actor_losses(b["obs"], b["action"])
            per_seed = q_loss + self.cfg.bc_weight * bc_loss
            losses = {"actor_loss": per_seed.detach(), "q_loss": q_loss.detach(),
                      "bc_loss": bc_loss.detach()}
        self.step_actor(per_seed)
        return losses

    def sample_with_gradient(self, obs):
        """The acting sampler (the base's `sample`: same draws, clipped every step), on the update
        stream, with autograd through all T calls."""
        return self.sample(obs, self.update_noise)

    def actor_loss(self, obs):
        """Per seed (S,): -mean_B min_j Q'_j(s, a_0) with the target critics, a_0 = sampler(s)."""
        a0 = self.sample_with_gradient(obs)
        q = self.critic_target(obs, a0)            # target critics: frozen, no parameter grads
        return -q.min(dim=1).values.mean(dim=1)

    def paper_actor_losses(self, obs, action):
        """Per seed (S,): the normalised Q loss through the sampler, and the denoising loss."""
        a0 = self.sample_with_gradient(obs)
        with no_param_grads(self.critic):
            q = self.critic(obs, a0)                                                     # (S, 2, B)
        q_loss = -q.mean(dim=(1, 2)) / q.detach().abs().mean(dim=(1, 2)).clamp_min(1e-8)
        if not self.cfg.bc_weight:
            return q_loss, torch.zeros_like(q_loss)
        return q_loss, self.denoising_loss(obs, action)

    def denoising_loss(self, obs, action):
        """Per seed: mean over batch and action dims of (eps - eps_theta(s, a~, t))^2."""
        S, B, A = action.shape
        t = self.update_noise.randint(self.cfg.T, B)                                     # (S, B)
        eps = self.update_noise.randn(B, A)
        eps_pred = self.denoiser(obs, self.noised(action, t, eps), t)
        return ((eps - eps_pred) ** 2).mean(dim=(1, 2))
