"""The declaration of the `td3` agent (learner: baselines/td3.py): its hyperparameters, torch-free.

The official baseline's settings (jaxrl5 td3_config).
"""
from __future__ import annotations

from dataclasses import dataclass

from qsm.declare.hparams import hp

NAME = "td3"
LEARNER = "baselines.td3:TD3"


@dataclass
class TD3Config:
    actor_lr: float = hp(3e-4, gt=0, doc="Adam step size of the actor")
    critic_lr: float = hp(3e-4, gt=0, doc="Adam step size of the critics")
    hidden: tuple = hp((256, 256), sizes=True, doc="actor and critic MLP widths")
    gamma: float = hp(0.99, gt=0, lt=1, doc="discount")
    tau: float = hp(0.005, gt=0, le=1, doc="Polyak step of the target networks")
    explore_noise: float = hp(0.1, ge=0, doc="std of the exploration noise")
    target_noise: float = hp(0.2, ge=0, doc="std of the target policy smoothing noise")
    target_noise_clip: float = hp(0.5, ge=0, doc="the smoothing noise is clipped to +-this")
    policy_delay: int = hp(2, ge=1, doc="critic updates per actor update")
    clip_target_action: bool = hp(False, doc="clip the noised target action to [-1, 1] "
                                             "(official: no; the TD3 paper: yes)")


CONFIG = TD3Config
# metrics.csv columns of the learner's update beyond the common ones (qsm.harness.metrics.COMMON)
METRICS = {
    "actor_q": "TD3: mean over the batch of the two critics' mean Q(s, mu(s)) (on actor updates)",
}
