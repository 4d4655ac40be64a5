"""Q-score matching (Psenka, Escontrela, Abbeel, Ma; ICML 2024), seed-batched.

Algorithm, per environment step after the random warm-up:
  1. Critic:  a' = clip(sampler(s') + N(0, sigma_target^2)),  y = r + gamma * mask * min_j Q'_j(s', a')
              minimise mean_B (Q_j(s, a) - y)^2 for j = 1, 2 (each critic its own loss and Adam);
              Polyak-average the target critics.
              (the diffusion actor-critic's, qsm/learners/diffusion_agent.py)
  2. Score:   t ~ U{0..T-1}, eps ~ N(0, I),  a~ = sqrt(abar_t) a + sqrt(1 - abar_t) eps
              g = mean_j dQ_j/da (s, a~)   (no gradient into the critics)
              minimise mean_dims (-M_q g - eps_theta(s, a~, t))^2
              (score_target=sigma_scaled: -sigma_t M_q g, sigma_t = sqrt(1 - abar_t); not the paper's)
     One denoiser call per sample: the update never backpropagates through the sampler.
  Acting: the DDPM sampler; exploration adds N(0, sigma_explore^2) and clips; evaluation uses the
  stochastic sampler alone.
Hyperparameters: qsm/agent_config.py.
"""
from __future__ import annotations

import torch

from qsm.agent_config import QSMConfig
from qsm.learners.agent_base import rms
from qsm.learners.diffusion import score_target
from qsm.learners.diffusion_agent import DiffusionActorCritic


class QSM(DiffusionActorCritic):
    Config = QSMConfig

    def update_actor(self, b):
        """Step 2: one score-matching step of the denoiser."""
        S, B, A = b["action"].shape
        t = self.update_noise.randint(self.cfg.T, B)                                     # (S, B)
        eps = self.update_noise.randn(B, A)
        per_seed, q_grad, eps_pred, target = self.score_terms(b["obs"], b["action"], t, eps)
        self.step_actor(per_seed)
        dq_da_rms = rms(q_grad)
        # the target's scale against the sampler's unit noise (the constant form's as M_q times
        # dQ/da's, as the runs archived before the sigma_scaled form existed computed it)
        constant = self.cfg.score_target == "constant"
        return {"actor_loss": per_seed.detach(), "dq_da_rms": dq_da_rms,
                "score_target_rms": self.cfg.M_q * dq_da_rms if constant else rms(target),
                "eps_pred_rms": rms(eps_pred.detach())}

    def score_loss(self, obs, action, t, eps):
        """Per seed: mean over batch and action dims of (-M_q dQ/da(s, a~) - eps_theta(s, a~, t))^2
        with a~ = sqrt(abar_t) a + sqrt(1 - abar_t) eps. One denoiser call, no sampler in the graph."""
        return self.score_terms(obs, action, t, eps)[0]

    def score_terms(self, obs, action, t, eps):
        """The score loss, dQ/da, eps_theta and the target it is regressed onto (S, B, A)."""
        noisy = self.noised(action, t, eps)
        q_grad = self.action_gradient(obs, noisy)                                         # (S, B, A)
        eps_pred = self.denoiser(obs, noisy, t)
        target = self.regression_target(q_grad, t)
        return ((target - eps_pred) ** 2).mean(dim=(1, 2)), q_grad, eps_pred, target

    def regression_target(self, q_grad, t):
        """What eps_theta is regressed onto at noised actions of steps t (S, B), from dQ/da there
        (S, B, A): the score target of the configured form (qsm.learners.diffusion.score_target). A
        variant target is one override of this method."""
        sigma = self.sigma(t) if self.cfg.score_target == "sigma_scaled" else None
        return score_target(q_grad, self.cfg.M_q, self.cfg.score_target, sigma)

    def sigma(self, t):
        """sqrt(1 - abar_t) per sample (S, B, 1): the noise level of the sigma_scaled target."""
        return (1 - self.schedule.alpha_bars[t]).sqrt().unsqueeze(-1)

    def action_gradient(self, obs, actions):
        """Mean over the two critics of dQ/da, detached (critic parameters get no gradient)."""
        a = actions.detach().requires_grad_(True)
        q = self.critic(obs, a).mean(dim=1)                                       # (S, B)
        (grad,) = torch.autograd.grad(q.sum(), a)
        return grad.detach()
