"""Hyperparameters of the diffusion actor-critic (qsm/learners/diffusion_agent.py) that QSM and dql
share.

Not an agent of its own (it declares no NAME): the declarations of `qsm` (qsm/agent_config.py)
and `dql` (baselines/dql_config.py) extend `DiffusionConfig` with the fields of their actor
updates. Torch-free, like every declaration module (see qsm/declare/catalog.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from qsm.declare.hparams import hp


#: The metrics.csv column the diffusion actor-critic's critic update adds to the common ones
#: (qsm.harness.metrics.COMMON); the agents built on it declare it among their METRICS.
DIFFUSION_METRICS = {
    "bound_share": "QSM, dql: share of the sampler's action coordinates at the batch's next "
                   "states that lie within 1e-3 of -1 or 1",
}


@dataclass
class DiffusionConfig:
    """The denoiser, its VP schedule and sampler, the twin critics and the exploration noise."""
    T: int = hp(5, ge=1, doc="diffusion steps")
    beta_min: float = hp(0.1, gt=0, doc="VP schedule")
    beta_max: float = hp(10.0, gt=0, doc="VP schedule")
    temperature: float = hp(1.0, ge=0, doc="sampler noise multiplier")
    actor_lr: float = hp(3e-4, gt=0, doc="Adam step size of the denoiser")
    actor_lr_decay_steps: int = hp(2_000_000, ge=1, doc="cosine decay of the actor lr to 0")
    critic_lr: float = hp(3e-4, gt=0, doc="Adam step size of the critics")
    actor_hidden: tuple = hp((512, 512), sizes=True, doc="denoiser MLP widths")
    time_dim: int = hp(64, gt=0, even=True, doc="Fourier features of t (cos and sin halves)")
    cond_hidden: tuple = hp((128, 128), sizes=True, doc="time-conditioning MLP widths")
    critic_hidden: tuple = hp((512, 512), sizes=True, doc="critic MLP widths")
    gamma: float = hp(0.99, gt=0, lt=1, doc="discount")
    tau: float = hp(0.005, gt=0, le=1, doc="Polyak step of the target critics")
    explore_noise: float = hp(0.1, ge=0, doc="std of N(0, s^2) added to actions while collecting")
    target_noise: float = hp(0.1, ge=0, doc="std of N(0, s^2) added to next actions in the target")
    RELATIONS = (("beta_min", "<=", "beta_max"),)
