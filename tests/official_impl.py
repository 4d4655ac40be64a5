"""Side-by-side helpers for tests/test_official_equivalence.py: the official JAX learners and ours
fed the same parameters, batches and noise.

* Parameters: `links(algo, agent, seeds)` lists, for every parameter of our seed-batched agent,
  the official TrainState and flax path it corresponds to. A flax Dense kernel (in, out) is our
  BatchedLinear.weight[m]; its bias (out,) is bias[m, 0]; a vmapped ensemble (SAC/TD3 critics)
  carries the critic index first; our TwinCritic members are seed-major (2 i + j = seed i,
  critic j). The same links copy official parameters in (`load_official_params`) and compare
  parameters and Adam moments afterwards (`compare_state`).
* Noise: the official learners draw inside jit from `agent.rng`. jax.random is a pure function of
  the key, so `*_update_draws` replay the learners' key splitting outside jit, step by step as
  written in their update functions, and return the draws in the order in which our agent
  requests them (for qsm.harness.seeding.ReplayedDraws) and the key the learner holds afterwards
  (the tests check it against the learner's, so the bookkeeping cannot drift silently).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import torch

split = jax.random.split


# -- noise replays ----------------------------------------------------------------------------

def sampler_draws(rng, B, A, T):
    """jaxrl5 ddpm_sampler: a_T from the first split, then one z per reverse step t = T-1 .. 0
    (`rng, key = split(rng)` in the scan). The z of t = 0 is multiplied by (t > 0) = 0 there and
    never drawn by our sampler, so it is left out."""
    key, rng = split(rng)
    draws = [jax.random.normal(key, (B, A))]
    for t in range(T - 1, -1, -1):
        rng, key = split(rng)
        z = jax.random.normal(key, (B, A))
        if t > 0:
            draws.append(z)
    return draws, rng


def diffusion_critic_draws(rng, B, A, T):
    """update_q of ScoreMatchingLearner and DiffusionOnlineLearner (identical code)."""
    _, rng = split(rng)
    draws, rng = sampler_draws(rng, B, A, T)
    key, rng = split(rng)
    draws.append(jax.random.normal(key, (B, A)))            # target-action noise (times 0.1)
    for _ in range(4):                                      # unused key and dropout keys
        _, rng = split(rng)
    return draws, rng


def qsm_update_draws(rng, B, A, T):
    draws, rng = diffusion_critic_draws(rng, B, A, T)
    key, rng = split(rng)
    draws.append(jax.random.randint(key, (B,), 0, T))      # diffusion step per sample
    key, rng = split(rng)
    draws.append(jax.random.normal(key, (B, A)))            # forward-process noise
    for _ in range(3):
        _, rng = split(rng)
    return draws, rng


def dql_update_draws(rng, B, A, T):
    draws, rng = diffusion_critic_draws(rng, B, A, T)
    # update_actor: the loss samples from split(agent.rng)[1], which is also the learner's next key
    _, rng = split(rng)
    actor_draws, _ = sampler_draws(rng, B, A, T)
    return draws + actor_draws, rng


def tfp_standard_normal(key, B, A):
    """The standard normal draws behind TanhNormal.sample(seed=key) (tfp MultivariateNormalDiag)."""
    import tensorflow_probability.substrates.jax as tfp
    return tfp.distributions.MultivariateNormalDiag(
        loc=jnp.zeros((B, A)), scale_diag=jnp.ones((B, A))).sample(seed=key)


def sac_update_draws(rng, B, A):
    key, rng = split(rng)
    draws = [tfp_standard_normal(key, B, A)]                # next action in the critic target
    for _ in range(3):
        _, rng = split(rng)
    key, rng = split(rng)
    draws.append(tfp_standard_normal(key, B, A))            # actor-loss action
    _, rng = split(rng)
    return draws, rng


def td3_update_draws(rng, B, A, actor_step: bool):
    key, rng = split(rng)
    draws = [jax.random.normal(key, (B, A))]                # target policy noise (times 0.2)
    for _ in range(3):
        _, rng = split(rng)
    if actor_step:
        _, rng = split(rng)
    return draws, rng


def stack_seeds(per_seed_draws):
    """[[draw, ...] per seed] -> [tensor (S, ...), ...]: the draws of one block, in request order."""
    return [torch.from_numpy(np.stack([np.asarray(d[k]) for d in per_seed_draws]))
            for k in range(len(per_seed_draws[0]))]


def same_key(a, b) -> bool:
    """The learners hold raw uint32 keys (jax.random.PRNGKey)."""
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


# -- parameters -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    name: str            # our parameter (agent.get_parameter)
    member: int          # row of its leading member dimension
    seed_index: int      # which official learner
    state: str           # the learner's TrainState attribute
    path: tuple          # flax path inside its params
    kind: str            # kernel | bias | fourier | scalar
    ensemble: int | None = None  # index into a vmapped ensemble's leading axis

    def official(self, tree):
        x = tree
        for key in self.path:
            x = x[key]
        x = np.asarray(x)
        if self.ensemble is not None:
            x = x[self.ensemble]
        if self.kind == "bias":
            return x.reshape(1, -1)
        if self.kind == "fourier":
            return x.T                    # flax (half, 1) -> ours (1, half)
        return x


def _mlp_links(prefix, n_layers, seed_index, member, state, hidden_path, last_path, ensemble=None):
    out = []
    for k in range(n_layers):
        path = (*hidden_path, f"Dense_{k}") if k < n_layers - 1 else last_path
        for kind, leaf in (("kernel", "weight"), ("bias", "bias")):
            out.append(Link(f"{prefix}.{k}.{leaf}", member, seed_index, state,
                            (*path, "kernel" if kind == "kernel" else "bias"), kind, ensemble))
    return out


def _critic_links(agent, seeds, separate: bool):
    """Twin critics: QSM/dql keep two TrainStates (critic_1, critic_2); SAC/TD3 one vmapped
    ensemble (critic, ensemble axis first)."""
    n = len(agent.critic.net.layers)
    links = []
    for i in range(seeds):
        for j in range(2):
            for ours, theirs in (("critic", "critic"), ("critic_target", "target_critic")):
                if separate:
                    links += _mlp_links(f"{ours}.net.layers", n, i, 2 * i + j, f"{theirs}_{j + 1}",
                                        ("MLP_0",), ("Dense_0",))
                else:
                    links += _mlp_links(f"{ours}.net.layers", n, i, 2 * i + j, theirs,
                                        ("VmapStateActionValue_0", "MLP_0"),
                                        ("VmapStateActionValue_0", "Dense_0"), ensemble=j)
    return links


def links(algo, agent, seeds: int) -> list[Link]:
    out = []
    if algo in ("qsm", "dql"):
        den = agent.denoiser
        for i in range(seeds):
            out.append(Link("denoiser.time_features.kernel", i, i, "score_model",
                            ("FourierFeatures_0", "kernel"), "fourier"))
            out += _mlp_links("denoiser.cond.layers", len(den.cond.layers), i, i, "score_model",
                              ("MLP_0",), ("MLP_0", f"Dense_{len(den.cond.layers) - 1}"))
            out += _mlp_links("denoiser.net.layers", len(den.net.layers), i, i, "score_model",
                              ("MLP_1",), ("MLP_1", f"Dense_{len(den.net.layers) - 1}"))
        return out + _critic_links(agent, seeds, separate=True)
    if algo == "sac":
        n = len(agent.actor.trunk.layers)
        for i in range(seeds):
            out += _mlp_links("actor.trunk.layers", n, i, i, "actor", ("MLP_0",), ("MLP_0", f"Dense_{n - 1}"))
            for ours, theirs in (("actor.mean", "OutputDenseMean"), ("actor.log_std", "OutputDenseLogStd")):
                out.append(Link(f"{ours}.weight", i, i, "actor", (theirs, "kernel"), "kernel"))
                out.append(Link(f"{ours}.bias", i, i, "actor", (theirs, "bias"), "bias"))
            out.append(Link("log_alpha", i, i, "temp", ("log_temp",), "scalar"))
        return out + _critic_links(agent, seeds, separate=False)
    if algo == "td3":
        n = len(agent.actor.net.layers)
        for i in range(seeds):
            for ours, theirs in (("actor", "actor"), ("actor_target", "target_actor")):
                out += _mlp_links(f"{ours}.net.layers", n, i, i, theirs, ("MLP_0",), ("OutputDenseMean",))
        return out + _critic_links(agent, seeds, separate=False)
    raise ValueError(algo)


def load_official_params(agent, learners, link_list) -> None:
    with torch.no_grad():
        for link in link_list:
            value = link.official(getattr(learners[link.seed_index], link.state).params)
            agent.get_parameter(link.name)[link.member] = torch.from_numpy(np.array(value))


def _optimizer_state(agent, param):
    for opt in agent.optimizers().values():
        if param in opt.state:
            return opt.state[param]
    return None


@dataclass
class Tolerance:
    """|ours - official| <= atol + rtol * max|official| over the compared array: relative to the
    array's scale, not elementwise, because float32 rounding in a sum follows the size of its
    terms, and an element that cancels to nearly 0 keeps the absolute error of its terms."""
    rtol: float
    atol: float


MEASURED: dict[str, float] = {}  # per quantity kind, the largest |diff| / (atol + rtol * scale) seen


def assert_close(what, ours, theirs, tol: Tolerance, scale=None):
    """`scale` (default max|theirs|) for a statistic of an array: that array's max |value|."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        raise AssertionError(f"{what}: shape {ours.shape} here, {theirs.shape} in the official code")
    diff = np.abs(ours - theirs)
    if scale is None:
        scale = float(np.abs(theirs).max()) if theirs.size else 0.0
    bound = tol.atol + tol.rtol * scale
    kind = what.split(":")[-1].split("[")[0].split(" of ")[0].strip()
    MEASURED[kind] = max(MEASURED.get(kind, 0.0), float(diff.max() / bound) if diff.size else 0.0)
    if not np.all(diff <= bound):
        worst = np.unravel_index(np.argmax(diff), diff.shape)
        raise AssertionError(
            f"{what}: differs from the official code by up to {diff.max():.3g} "
            f"(at {tuple(int(i) for i in worst)}: {ours[worst]:.8g} here, {theirs[worst]:.8g} official; "
            f"tolerance {tol.atol:g} + {tol.rtol:g} * {scale:.3g})")


def compare_state(agent, learners, link_list, params_tol: Tolerance, targets_tol: Tolerance,
                  moments_tol: Tolerance):
    """Parameters of every network (targets included) and Adam's first and second moments."""
    for link in link_list:
        state = getattr(learners[link.seed_index], link.state)
        ours = agent.get_parameter(link.name)
        label = f"{link.name}[{link.member}] vs {link.state}/{'/'.join(link.path)}"
        target = link.state.startswith("target")
        assert_close(f"{'target parameter' if target else 'parameter'} {label}",
                     ours.detach()[link.member], link.official(state.params),
                     targets_tol if target else params_tol)
        opt = _optimizer_state(agent, ours)
        if target or opt is None:
            continue
        adam = state.opt_state[0]
        assert_close(f"Adam first moment of {label}", opt["exp_avg"][link.member], link.official(adam.mu), moments_tol)
        assert_close(f"Adam second moment of {label}", opt["exp_avg_sq"][link.member], link.official(adam.nu), moments_tol)


def perturb_targets(learner, rng, std=0.05):
    """Move the learner's target networks away from the online ones, so that tau, and which
    network a loss reads, make a visible difference from the first update on."""
    replaced = {}
    for name in ("target_critic", "target_critic_1", "target_critic_2", "target_actor"):
        state = getattr(learner, name, None)
        if state is not None:
            params = jax.tree_util.tree_map(
                lambda x: x + jnp.asarray(rng.normal(0.0, std, x.shape), x.dtype), state.params)
            replaced[name] = state.replace(params=params)
    return learner.replace(**replaced)
