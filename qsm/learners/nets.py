"""Seed-batched networks.

Every parameter carries a leading "member" dimension: one member per seed (or per seed x
ensemble member for twin critics). A linear layer is one batched matmul, so members never mix:
slice m of the output depends only on slice m of the weights and of the input.

Initialisation follows the official (Flax) code, not torch's default: Xavier-uniform weights and
zero biases. Each member is initialised from its own seed's generator so that a seed's initial
weights do not depend on the block it is trained in.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

def _tanh_softplus(x: torch.Tensor):
    """tanh(softplus(x)) and q = sigmoid(-x), from which it is computed."""
    q = torch.sigmoid(-x)
    q2 = q * q
    return (1 - q2).div_(1 + q2), q


class _SigmoidMish(torch.autograd.Function):
    """mish(x) = x tanh(softplus(x)) written through q = sigmoid(-x):
    tanh(softplus(x)) = (1 - q^2) / (1 + q^2). Same function as F.mish (max difference ~1e-6 in
    float32, tested), but sigmoid is vectorised on CPU where tanh and softplus are not, so the
    forward pass is cheaper there (docs/performance.md), and the sampler runs it
    15 times per QSM update."""

    @staticmethod
    def forward(ctx, x):
        tsp, q = _tanh_softplus(x)
        ctx.save_for_backward(x, tsp, q)
        return x * tsp

    @staticmethod
    def backward(ctx, grad):
        x, tsp, q = ctx.saved_tensors
        # d/dx [x tanh(softplus(x))] = tanh(softplus(x)) + x (1 - tanh^2(softplus(x))) sigmoid(x)
        return grad * (tsp + x * (1 - tsp * tsp) * (1 - q))


def mish(x: torch.Tensor) -> torch.Tensor:
    if x.is_cuda:
        return F.mish(x)  # a fused kernel
    if x.requires_grad and torch.is_grad_enabled():
        return _SigmoidMish.apply(x)
    return x * _tanh_softplus(x)[0]  # the sampler's calls: no autograd bookkeeping


# Applied only to a layer's fresh output (see BatchedMLP.forward_hidden), so ReLU may overwrite its
# input: the matmul's backward needs its inputs, not its output. Saves an allocation and a pass per
# layer (a small gain, docs/performance.md).
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": lambda x: F.relu(x, inplace=True),
    "mish": mish,
    "tanh": torch.tanh,
}


def _fresh(t: torch.Tensor) -> torch.Tensor:
    """A new tensor with t's values and row-major strides. `.contiguous()` is not enough: a
    (M, 1, n) view keeps the odd stride of its size-1 dimension, and CPU bmm then takes a much
    slower path (docs/performance.md); it may also return t itself, a view."""
    return torch.empty(t.shape, dtype=t.dtype, device=t.device).copy_(t)


class _NarrowBatchedLinear(torch.autograd.Function):
    """y = x @ W + b for a layer with few outputs (a critic's Q, a denoiser's epsilon), computed
    as (W^T @ x^T)^T. Same function as baddbmm; on CPU, batched matmuls whose last dimension is
    1..16 take a slow path (measured: docs/performance.md), so every product here keeps the wide
    dimension last."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        weight_t = _fresh(weight.transpose(1, 2))                               # (M, out, in)
        ctx.save_for_backward(x, weight_t)
        out_t = torch.baddbmm(bias.transpose(1, 2), weight_t, x.transpose(1, 2))   # (M, out, B)
        return _fresh(out_t.transpose(1, 2))  # a tensor of its own (small), never a view

    @staticmethod
    @torch.autograd.function.once_differentiable  # weight_t is a copy: no double backward
    def backward(ctx, grad):
        x, weight_t = ctx.saved_tensors
        grad_t = _fresh(grad.transpose(1, 2))                                   # (M, out, B)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(_fresh(grad), weight_t)
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(grad_t, x).transpose(1, 2)
        if ctx.needs_input_grad[2]:
            grad_b = grad_t.sum(2, keepdim=True).transpose(1, 2)
        return grad_x, grad_w, grad_b


NARROW_OUTPUTS = 16


class BatchedLinear(nn.Module):
    """y[m] = x[m] @ W[m] + b[m] for every member m; x is (M, B, in)."""

    def __init__(self, generators: Sequence[torch.Generator], in_dim: int, out_dim: int,
                 device=None):
        super().__init__()
        members = len(generators)
        bound = math.sqrt(6.0 / (in_dim + out_dim))  # Xavier-uniform
        weight = torch.empty(members, in_dim, out_dim, device=device)
        for m, g in enumerate(generators):
            weight[m].uniform_(-bound, bound, generator=g)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(members, 1, out_dim, device=device))
        self.narrow = out_dim <= NARROW_OUTPUTS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.narrow and not x.is_cuda:
            return _NarrowBatchedLinear.apply(x, self.weight, self.bias)
        return torch.baddbmm(self.bias, x, self.weight)


class BatchedMLP(nn.Module):
    """Dense layers with an activation between them and none after the last one."""

    def __init__(self, generators, in_dim: int, hidden: Sequence[int], out_dim: int,
                 activation: str = "relu", device=None):
        super().__init__()
        dims = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(
            BatchedLinear(generators, dims[i], dims[i + 1], device) for i in range(len(dims) - 1))
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_hidden(self.layers[0](x))

    def forward_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """The network from the first layer's pre-activation output on. h must be a fresh tensor
        that nothing else reads: the activation may work in place."""
        for layer in self.layers[1:]:
            h = layer(self.activation(h))
        return h


def ensemble_generators(generators, copies: int):
    """Member order for an ensemble of `copies` networks per seed: seed-major (s0e0, s0e1, s1e0 ...).

    The same seed generator is listed `copies` times in a row; layers are built member by member,
    so ensemble members of one seed draw consecutive numbers from that seed's stream only.
    """
    return [g for g in generators for _ in range(copies)]


class TwinCritic(nn.Module):
    """Two independent Q(s, a) networks per seed, evaluated in one batched matmul per layer."""

    def __init__(self, generators, obs_dim, act_dim, hidden, activation="relu", device=None):
        super().__init__()
        self.seeds = len(generators)
        self.net = BatchedMLP(ensemble_generators(generators, 2), obs_dim + act_dim, hidden, 1,
                              activation, device)

    @staticmethod
    def members_of(seed_index: int) -> slice:
        """Rows of every parameter that belong to one seed (members are seed-major)."""
        return slice(2 * seed_index, 2 * seed_index + 2)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """obs (S, B, o), act (S, B, a) -> Q values (S, 2, B)."""
        x = torch.cat([obs, act], dim=-1)
        S, B, D = x.shape
        x = x.unsqueeze(1).expand(S, 2, B, D).reshape(S * 2, B, D)
        return self.net(x).reshape(S, 2, B)


def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, elementwise (so per seed)."""
    with torch.no_grad():
        t_params = list(target.parameters())
        s_params = list(source.parameters())
        torch._foreach_lerp_(t_params, s_params, tau)
