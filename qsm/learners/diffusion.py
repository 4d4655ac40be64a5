"""Diffusion pieces of the QSM policy: VP schedule, Fourier time features, denoiser, DDPM sampler.

Index convention (as in the official code): diffusion steps are t = 0 .. T-1; step t uses
alpha[t] = 1 - beta[t] and alpha_bar[t] = prod_{i<=t} alpha[i]. The sampler runs t = T-1 .. 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from qsm.learners.nets import BatchedMLP


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
        # The same three as Python floats (float32 values) for the sampler loop: scalar arguments
        # avoid a tensor indexing and a multiplication per step.
        self.step_constants = list(zip(self.eps_coef.tolist(), self.inv_sqrt_alpha.tolist(),
                                       self.noise_scale.tolist()))


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
    """eps_theta(s, a, t): Fourier(t) -> MLP(128, 128) = cond; [a, s, cond] -> MLP(512, 512) -> act_dim.

    t takes the integer values 0 .. steps-1 only, so cond(t) is evaluated for those `steps` rows
    and gathered, never for every row of a batch (see Conditioned)."""

    def __init__(self, generators, obs_dim, act_dim, steps, time_dim=64, cond_hidden=(128, 128),
                 hidden=(512, 512), activation="mish", device=None):
        super().__init__()
        self.act_dim, self.obs_dim, self.steps = act_dim, obs_dim, steps
        self.time_features = FourierFeatures(generators, time_dim, device=device)
        self.cond = BatchedMLP(generators, time_dim, cond_hidden[:-1], cond_hidden[-1],
                               activation, device)
        self.net = BatchedMLP(generators, act_dim + obs_dim + cond_hidden[-1], hidden, act_dim,
                              activation, device)

    def forward(self, obs, noisy_action, t):
        """obs (S, B, o), noisy_action (S, B, a), t (S, B) integer steps -> eps (S, B, a)."""
        return self.at(obs)(noisy_action, t)

    def at(self, obs) -> "Conditioned":
        """The denoiser with these observations fixed (a reverse chain calls it T times)."""
        return Conditioned(self, obs)


class Conditioned:
    """eps_theta(obs, ., .) for fixed observations.

    The first layer is split by input: [a, s, cond(t)] @ W + b = a @ W_a + (s @ W_s + b)
    + cond(t) @ W_c. The observation term is computed once, and the time term once per step
    value (T rows, not B), so each call costs one (B, a) @ (a, H) product before the hidden
    layers. The same function as the concatenated layer (tested), with fewer FLOPs.
    """

    def __init__(self, den: Denoiser, obs: torch.Tensor):
        first = den.net.layers[0]
        A, O, T = den.act_dim, den.obs_dim, den.steps
        S = obs.shape[0]
        self.w_action = first.weight[:, :A]
        self.obs_term = torch.baddbmm(first.bias, obs, first.weight[:, A:A + O])          # (S, B, H)
        t = torch.arange(T, dtype=obs.dtype, device=obs.device).view(1, T, 1).expand(S, T, 1)
        self.time_term = torch.bmm(den.cond(den.time_features(t)), first.weight[:, A + O:])  # (S, T, H)
        self.hidden = den.net.forward_hidden

    def __call__(self, noisy_action: torch.Tensor, t) -> torch.Tensor:
        """t: one int for every row (the sampler), or (S, B) integer steps (training)."""
        if isinstance(t, int):
            time = self.time_term[:, t:t + 1]
        else:
            time = self.time_term.gather(1, t.unsqueeze(-1).expand(*t.shape, self.time_term.shape[-1]))
        return self.hidden(torch.baddbmm(self.obs_term, noisy_action, self.w_action) + time)


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
    eps_theta = denoiser.at(obs)
    for t in range(schedule.T - 1, -1, -1):
        eps_coef, inv_sqrt_alpha, noise_scale = schedule.step_constants[t]
        a = torch.add(a, eps_theta(a, t), alpha=-eps_coef) * inv_sqrt_alpha
        if t > 0:
            a = torch.add(a, noise.randn(B, act_dim), alpha=noise_scale * temperature)
        if clip:
            a = a.clamp(-1.0, 1.0)
    return a


# Acting and critic targets: no graph is ever built through the sampler.
ddpm_sample = torch.no_grad()(reverse_chain)


def score_target(q_grad: torch.Tensor, scale: float, form: str, sigma=None) -> torch.Tensor:
    """QSM's regression target for eps_theta at a noised action, from dQ/da there:
    constant (the paper's): -scale * dQ/da; sigma_scaled: -sigma_t * scale * dQ/da, with sigma_t =
    sqrt(1 - abar_t) of each sample's step (broadcastable to q_grad), so that the implied score
    -eps / sigma_t is scale * dQ/da at every noise level."""
    if form == "constant":
        return -scale * q_grad
    if form == "sigma_scaled":
        return -scale * sigma * q_grad
    raise ValueError(f"unknown score target form {form!r}")
