"""What every seed-batched agent shares: per-seed random streams, optimiser bookkeeping,
probe sampling and checkpoint state. Agent files keep only their algorithm.

Shapes: observations (S, B, obs_dim), actions (S, B, act_dim), per-seed scalars (S,), where S is
the number of seeds in the block. Losses are summed over seeds, so each seed's parameters get
exactly the gradient of that seed's own loss.
"""
from __future__ import annotations

import abc
from contextlib import contextmanager

import torch
import torch.nn as nn

from qsm.harness.metrics import BOUND_TOLERANCE
from qsm.harness.seeding import SeedStreams
from qsm.learners.nets import polyak_update


class Agent(nn.Module, metaclass=abc.ABCMeta):
    name = "agent"  # the declared NAME, set by qsm.declare.registry.get_agent
    # The modules that make up the policy (what act() uses): saved as the run's policy.pt.
    POLICY_MODULES: tuple = ("actor",)

    def __init__(self, obs_dim: int, act_dim: int, seeds, cfg, device="cpu"):
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.seeds = list(seeds)
        self.cfg = cfg
        self.device = torch.device(device)
        self.init_gens = SeedStreams(self.seeds, "init", self.device).generators
        self.update_noise = SeedStreams(self.seeds, "update", self.device)
        self.act_noise = SeedStreams(self.seeds, "act", self.device)
        self.updates = 0

    # -- to implement ---------------------------------------------------------------------------
    @abc.abstractmethod
    def act(self, obs: torch.Tensor, mode: str) -> torch.Tensor:
        """mode: 'explore' (behaviour while training), 'eval' (evaluation action) or 'policy'
        (a sample of the learned policy itself, without added exploration noise)."""

    @abc.abstractmethod
    def update(self, batch: dict, timer) -> dict:
        """One gradient update from a seed-batched replay sample; returns per-seed diagnostics
        (S,) named as the columns of qsm.harness.metrics.METRICS (extra keys are allowed)."""

    # -- shared ---------------------------------------------------------------------------------
    def fit_critic(self, batch: dict, target: torch.Tensor, over_critics: str) -> dict:
        """One Adam step of the twin critic towards the TD target y (S, B), then Polyak-average
        the target critic; returns the critic diagnostics. Each agent brings its own target; only
        the per-seed loss's reduction over the two critics differs: mean_j mean_B (Q_j - y)^2
        ("mean": jaxrl5's SAC and TD3, one loss over a vmapped critic ensemble) or sum_j mean_B
        ("sum": QSM's official code, two critics with an Adam each)."""
        q = self.critic(batch["obs"], batch["action"])                                 # (S, 2, B)
        squared = (q - target.unsqueeze(1)) ** 2
        if over_critics == "mean":
            per_seed = squared.mean(dim=(1, 2))
        elif over_critics == "sum":
            per_seed = squared.mean(dim=2).sum(dim=1)
        else:
            raise ValueError(f"over_critics must be 'mean' or 'sum', not {over_critics!r}")
        self.critic_opt.zero_grad(set_to_none=True)
        per_seed.sum().backward()
        self.critic_opt.step()
        polyak_update(self.critic_target, self.critic, self.cfg.tau)
        return critic_diagnostics(per_seed, q, target)

    @torch.no_grad()
    def probe_samples(self, states: torch.Tensor, n: int):
        """For probe states (S, P, obs_dim): n draws per state of the policy and the behaviour
        distribution -> two tensors (S, P, n, act_dim)."""
        S, P, D = states.shape
        obs = states.unsqueeze(2).expand(S, P, n, D).reshape(S, P * n, D)
        policy = self.act(obs, "policy").reshape(S, P, n, self.act_dim)
        behaviour = self.act(obs, "explore").reshape(S, P, n, self.act_dim)
        return policy, behaviour

    def policy_state(self, index: int) -> dict:
        """The policy modules' parameters and buffers of the seed at `index` of the block, each
        with a seed dimension of 1: what a one-seed agent of the same config loads."""
        out = {}
        for name in self.POLICY_MODULES:
            state = {}
            for key, value in getattr(self, name).state_dict().items():
                if value.dim() == 0 or value.shape[0] != len(self.seeds):
                    raise ValueError(f"{name}.{key} of shape {tuple(value.shape)} has no seed "
                                     f"dimension: cannot save one seed's policy")
                state[key] = value[index:index + 1].detach().cpu().clone()
            out[name] = state
        return out

    def load_policy_state(self, state: dict) -> None:
        for name in self.POLICY_MODULES:
            getattr(self, name).load_state_dict(state[name])

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.optim.Optimizer)}

    def full_state(self):
        return {"modules": self.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
                "streams": {"update": self.update_noise.state_dict(),
                            "act": self.act_noise.state_dict()},
                "updates": self.updates, "extra": self.extra_state()}

    def load_full_state(self, state):
        self.load_state_dict(state["modules"])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        self.update_noise.load_state_dict(state["streams"]["update"])
        self.act_noise.load_state_dict(state["streams"]["act"])
        self.updates = state["updates"]
        self.load_extra_state(state["extra"])

    def extra_state(self):
        return {}

    def load_extra_state(self, state):
        pass


# -- diagnostics every update reports (qsm/harness/metrics.py): cheap reductions, read once per
#    interval --

@torch.no_grad()
def critic_diagnostics(loss, q, target) -> dict:
    """Per seed: the critic loss, mean and std of Q (S, 2, B) over both critics and the batch,
    and the mean of the target y (S, B)."""
    return {"critic_loss": loss.detach(), "q_mean": q.mean(dim=(1, 2)),
            "q_std": q.flatten(1).std(dim=1, correction=0), "target_q_mean": target.mean(dim=1)}


@torch.no_grad()
def rms(x) -> torch.Tensor:
    """Per seed: root mean square over the batch and action dims of x (S, B, A)."""
    return x.pow(2).mean(dim=(1, 2)).sqrt()


@torch.no_grad()
def bound_share(actions, tolerance: float = BOUND_TOLERANCE) -> torch.Tensor:
    """Per seed: the share of action coordinates (S, B, A) within `tolerance` of -1 or 1."""
    return (actions.abs() >= 1 - tolerance).float().mean(dim=(1, 2))


def adam(params, lr: float) -> torch.optim.Adam:
    # Adam acts elementwise, so one optimiser over stacked per-seed parameters equals one per seed.
    # The fused kernel (CPU and CUDA) updates all tensors in one pass, the fastest of torch's
    # Adam implementations here (measured: docs/performance.md).
    return torch.optim.Adam(params, lr=lr, fused=True)


@contextmanager
def no_param_grads(module: nn.Module):
    """Backpropagate through `module` to its inputs without computing its weight gradients
    (the actor losses need dQ/da, not dQ/dtheta)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def frozen_copy(module: nn.Module) -> nn.Module:
    import copy
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target
