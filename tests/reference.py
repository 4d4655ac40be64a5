"""Plain numpy re-implementations used to check the agents by hand (float64 throughout)."""
import numpy as np


def np_mish(x):
    return x * np.tanh(np.log1p(np.exp(x)))


def np_relu(x):
    return np.maximum(x, 0)


def mlp(layers, member, x, act):
    """Forward through a BatchedMLP's layers for one member with a numpy activation."""
    for i, layer in enumerate(layers):
        W = layer.weight[member].detach().double().numpy()
        b = layer.bias[member, 0].detach().double().numpy()
        x = x @ W + b
        if i < len(layers) - 1:
            x = act(x)
    return x


def twin_q(critic, seed_index, obs, act):
    """Q values (2, B) of a TwinCritic for one seed."""
    x = np.concatenate([obs, act], -1)
    return np.stack([mlp(critic.net.layers, 2 * seed_index + e, x, np_relu)[:, 0] for e in range(2)])


def vp_schedule(T, b_min=0.1, b_max=10.0):
    t = np.arange(1, T + 1)
    alpha = np.exp(-b_min / T - 0.5 * (b_max - b_min) * (2 * t - 1) / T**2)
    return 1 - alpha, alpha, np.cumprod(alpha)


def denoiser(den, member, obs, a, t):
    w = den.time_features.kernel[member].detach().double().numpy()  # (1, half)
    f = 2 * np.pi * t[:, None] @ w
    feats = np.concatenate([np.cos(f), np.sin(f)], -1)
    cond = mlp(den.cond.layers, member, feats, np_mish)
    return mlp(den.net.layers, member, np.concatenate([a, obs, cond], -1), np_mish)
