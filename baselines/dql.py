"""Diffusion-QL-style actor (Wang, Hunt, Zhou; ICLR 2023) on QSM's networks, seed-batched.

The update that the QSM paper contrasts with its own: the diffusion policy is improved by
backpropagating the critic's value through the WHOLE reverse sampler. Everything except the
actor update is QSM's, inherited unchanged (same Denoiser, Schedule, TwinCritic, critic update,
acting), so the two agents differ in exactly one step.

Per update, on a seed-batched replay sample:
  1. Critic:  exactly QSM's (inherited):  a' = clip(sampler(s') + N(0, sigma_target^2)),
              y = r + gamma * mask * min_j Q'_j(s', a');  minimise (Q_j(s, a) - y)^2;
              Polyak-average the target critics.
  2. Actor:   a_0 = sampler(s), drawn WITH gradient through all T denoiser calls
              (a_T ~ N(0, I); a_{t-1} = clip((a_t - c_t eps_theta(s, a_t, t)) / sqrt(alpha_t) + sigma_t z))
              L_q  = -mean_j Q_j(s, a_0) / sg(mean_j |Q_j(s, a_0)|)       (Diffusion-QL's scaling)
              L_bc = mean_dims (eps - eps_theta(s, sqrt(abar_t) a + sqrt(1 - abar_t) eps, t))^2,
                     t ~ U{0..T-1}, eps ~ N(0, I), a from the replay buffer
              minimise L_q + bc_weight * L_bc  (gradient into the denoiser only, not the critics)
     T + 1 denoiser calls with gradient per sample (T without the BC term), against QSM's one.
  Acting: QSM's DDPM sampler; exploration adds N(0, sigma_explore^2) and clips.

Choices and differences from Diffusion-QL (documented in docs/adding_a_baseline.md):
  * Q normalisation: both critics' mean in the numerator, the batch mean of |Q| over both critics
    in the denominator, per seed and detached. Diffusion-QL instead draws one critic at random for
    the numerator and uses the other for the denominator; averaging is its deterministic version.
  * Diffusion-QL writes the loss as L_bc + eta * L_q; here it is L_q + bc_weight * L_bc, the same
    direction with bc_weight = 1 / eta (up to the overall step size). bc_weight = 1.0 corresponds
    to eta = 1, its value on the D4RL locomotion tasks. Online from scratch the BC term anchors the
    denoiser to the replay actions (the agent's own recent behaviour) so that the sampler stays a
    sampler while the Q term pushes its output uphill.
  * Not included: Diffusion-QL's EMA actor, max-Q action selection among several samples, and
    actor gradient-norm clipping; the critic target is QSM's, not Diffusion-QL's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from qsm.agent import QSM
from qsm.agent_base import no_param_grads
from qsm.diffusion import reverse_chain
from qsm.hparams import hp
from qsm.registry import register


@register("dql")
class DiffusionQL(QSM):
    @dataclass
    class Config:
        bc_weight: float = hp(1.0, ge=0, doc="weight of the denoising (behaviour-cloning) loss; 1/eta")
        T: int = hp(5, ge=1, doc="diffusion steps (the actor graph holds all T calls)")
        beta_min: float = hp(0.1, gt=0, doc="VP schedule, as QSM")
        beta_max: float = hp(10.0, gt=0, doc="VP schedule, as QSM")
        temperature: float = hp(1.0, ge=0, doc="sampler noise multiplier")
        actor_lr: float = hp(3e-4, gt=0, doc="Adam step size of the denoiser")
        actor_lr_decay_steps: int = hp(2_000_000, ge=1, doc="cosine decay of the actor lr, as QSM")
        critic_lr: float = hp(3e-4, gt=0, doc="Adam step size of the critics")
        actor_hidden: tuple = hp((512, 512), sizes=True, doc="denoiser MLP widths")
        time_dim: int = hp(64, gt=0, even=True, doc="Fourier features of t")
        cond_hidden: tuple = hp((128, 128), sizes=True, doc="time-conditioning MLP widths")
        critic_hidden: tuple = hp((512, 512), sizes=True, doc="critic MLP widths")
        gamma: float = hp(0.99, gt=0, lt=1, doc="discount")
        tau: float = hp(0.005, gt=0, le=1, doc="Polyak step of the target critics")
        explore_noise: float = hp(0.1, ge=0, doc="std of the exploration noise")
        target_noise: float = hp(0.1, ge=0, doc="std of the noise on next actions in the target")
        RELATIONS = (("beta_min", "<=", "beta_max"),)

    TASK_OVERRIDES = {}  # QSM's per-task overrides concern M_q, which this agent does not have

    # __init__, act, update_critic, td_target and set_actor_lr are QSM's; its score-matching
    # methods (update_score, score_loss) are not used.

    def update(self, batch, timer):
        with timer.phase("critic_update"):
            critic_loss, q = self.update_critic(batch)
        with timer.phase("actor_update"):
            actor_loss, q_loss, bc_loss = self.update_actor(batch)
        self.updates += 1
        return {"critic_loss": critic_loss, "actor_loss": actor_loss, "q": q,
                "q_loss": q_loss, "bc_loss": bc_loss}

    def update_actor(self, b):
        self.set_actor_lr()
        q_loss, bc_loss = self.actor_losses(b["obs"], b["action"])
        per_seed = q_loss + self.cfg.bc_weight * bc_loss
        self.actor_opt.zero_grad(set_to_none=True)
        per_seed.sum().backward()
        self.actor_opt.step()
        return per_seed.detach(), q_loss.detach(), bc_loss.detach()

    def actor_losses(self, obs, action):
        """Per seed (S,): the normalised Q loss through the sampler, and the denoising loss."""
        a0 = reverse_chain(self.denoiser, self.schedule, obs, self.act_dim,
                                   self.update_noise, self.cfg.temperature)
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
        abar = self.schedule.alpha_bars[t].unsqueeze(-1)
        noisy = abar.sqrt() * action + (1 - abar).sqrt() * eps
        eps_pred = self.denoiser(obs, noisy, t)
        return ((eps - eps_pred) ** 2).mean(dim=(1, 2))
