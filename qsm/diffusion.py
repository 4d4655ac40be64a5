"""Diffusion pieces of the QSM policy: VP schedule, Fourier time features, denoiser, DDPM sampler.

Index convention (as in the official code): diffusion steps are t = 0 .. T-1; step t uses
alpha[t] = 1 - beta[t] and alpha_bar[t] = prod_{i<=t} alpha[i]. The sampler runs t = T-1 .. 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .nets import BatchedMLP


def vp_beta_schedule(T: int, b_min: float = 0.1, b_max: float = 10.0) -> torch.Tensor:
    """beta_t = 1 - exp(-b_min/T - (b_max - b_min)(2t - 1) / (2 T^2)) for t = 1..T (float64)."""
    t = torch.arange(1, T + 1, dtype=torch.float64)
    alpha = torch.exp(-b_min / T - 0.5 * (b_max - b_min) * (2 * t - 1) / T**2)
    return 1.0 - alpha


class Schedule(nn.Module):
    """The constants the sampler and the score loss need, as float32 buffers."""

    def __init__(self, T: int, b_min: float = 0.1, b_max: float = 10.0):
        super().__init__()
        betas = vp_beta_schedule(T, b_min, b_max)
        alphas = 1.0 - betas
        alpha_bars = torch.cumprod(alphas, 0)
        self.T = T
        self.register_buffer("betas", betas.float())
        self.register_buffer("alphas", alphas.float())
        self.register_buffer("alpha_bars", alpha_bars.float())
        # Sampler coefficients: a <- (a - eps_coef[t] * eps) * inv_sqrt_alpha[t] + noise_scale[t] z
        self.register_buffer("eps_coef", ((1 - alphas) / torch.sqrt(1 - alpha_bars)).float())
        self.register_buffer("inv_sqrt_alpha", (1 / torch.sqrt(alphas)).float())
        self.register_buffer("noise_scale", torch.sqrt(betas).float())


class FourierFeatures(nn.Module):
    """Learnable Fourier features of the (scalar) diffusion step: [cos(2 pi t w), sin(2 pi t w)]."""

    def __init__(self, generators, out_dim: int = 64, init_std: float = 0.2, device=None):
        super().__init__()
        half = out_dim // 2
        w = torch.empty(len(generators), 1, half, device=device)
        for m, g in enumerate(generators):
            w[m].normal_(0.0, init_std, generator=g)
        self.kernel = nn.Parameter(w)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t (S, B, 1) float -> (S, B, out_dim)."""
        f = 2 * math.pi * torch.bmm(t, self.kernel)
        return torch.cat([torch.cos(f), torch.sin(f)], dim=-1)


class Denoiser(nn.Module):
    """eps_theta(s, a, t): Fourier(t) -> MLP(128, 128) = cond; [a, s, cond] -> MLP(512, 512) -> act_dim."""

    def __init__(self, generators, obs_dim, act_dim, time_dim=64, cond_hidden=(128, 128),
                 hidden=(512, 512), activation="mish", device=None):
        super().__init__()
        self.act_dim, self.obs_dim = act_dim, obs_dim
        self.time_features = FourierFeatures(generators, time_dim, device=device)
        self.cond = BatchedMLP(generators, time_dim, cond_hidden[:-1], cond_hidden[-1],
                               activation, device)
        self.net = BatchedMLP(generators, act_dim + obs_dim + cond_hidden[-1], hidden, act_dim,
                              activation, device)

    def forward(self, obs, noisy_action, t, obs_projection=None):
        """obs (S, B, o), noisy_action (S, B, a) -> eps (S, B, a).

        t is either a float tensor (S, B, 1) of per-row step indices (training), or one Python
        int shared by every row (the sampler). In the second case the first layer is split by
        input: [a, s, cond] @ W = a @ W_a + (s @ W_s + b) + cond(t) @ W_c, where s @ W_s + b comes
        precomputed from `project_obs` (the same for all T steps of a chain) and cond(t) is
        computed for one row instead of B. Same function, fewer FLOPs.
        """
        if not isinstance(t, int):
            cond = self.cond(self.time_features(t))
            return self.net(torch.cat([noisy_action, obs, cond], dim=-1))
        first = self.net.layers[0]
        if obs_projection is None:
            obs_projection = self.project_obs(obs)
        S = noisy_action.shape[0]
        t_in = torch.full((S, 1, 1), float(t), device=noisy_action.device)
        w_cond = first.weight[:, self.act_dim + self.obs_dim:]
        shared = obs_projection + torch.bmm(self.cond(self.time_features(t_in)), w_cond)
        h = torch.baddbmm(shared, noisy_action, first.weight[:, : self.act_dim])
        return self.net.forward_hidden(h)

    def project_obs(self, obs):
        first = self.net.layers[0]
        w_obs = first.weight[:, self.act_dim: self.act_dim + self.obs_dim]
        return torch.baddbmm(first.bias, obs, w_obs)


def reverse_chain(denoiser: Denoiser, schedule: Schedule, obs: torch.Tensor, act_dim: int,
                  noise, temperature: float = 1.0, clip: bool = True) -> torch.Tensor:
    """Draw one action per observation by running the reverse chain from a_T ~ N(0, I):
    a <- (a - (1 - alpha_t) / sqrt(1 - abar_t) * eps_theta(s, a, t)) / sqrt(alpha_t)
         + sqrt(beta_t) * temperature * z   (z only for t > 0), clipped to [-1, 1] every step.

    `noise` is a SeedStreams: the draws depend only on each seed's own stream. Autograd follows
    the whole chain when called with gradients enabled (a baseline may want that; QSM never does).
    """
    B = obs.shape[1]
    a = noise.randn(B, act_dim)
    obs_projection = denoiser.project_obs(obs)  # shared by the T denoiser calls
    for t in range(schedule.T - 1, -1, -1):
        eps = denoiser(obs, a, t, obs_projection)
        a = (a - schedule.eps_coef[t] * eps) * schedule.inv_sqrt_alpha[t]
        if t > 0:
            a = a + schedule.noise_scale[t] * temperature * noise.randn(B, act_dim)
        if clip:
            a = a.clamp(-1.0, 1.0)
    return a


# Acting and critic targets: no graph is ever built through the sampler.
ddpm_sample = torch.no_grad()(reverse_chain)
