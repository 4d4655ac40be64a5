"""The declaration of the `sac` agent (learner: baselines/sac.py): its hyperparameters, torch-free.

The official baseline's settings (jaxrl5 sac_config).
"""
from __future__ import annotations

from dataclasses import dataclass

from qsm.declare.hparams import hp

NAME = "sac"
LEARNER = "baselines.sac:SAC"


@dataclass
class SACConfig:
    actor_lr: float = hp(3e-4, gt=0, doc="Adam step size of the actor")
    critic_lr: float = hp(3e-4, gt=0, doc="Adam step size of the critics")
    temp_lr: float = hp(3e-4, gt=0, doc="Adam step size of log(alpha)")
    init_temperature: float = hp(1.0, gt=0, doc="initial entropy weight alpha")
    target_entropy_scale: float = hp(0.5, ge=0, doc="target entropy = -scale * act_dim (official: 1/2)")
    hidden: tuple = hp((256, 256), sizes=True, doc="actor and critic MLP widths")
    gamma: float = hp(0.99, gt=0, lt=1, doc="discount")
    tau: float = hp(0.005, gt=0, le=1, doc="Polyak step of the target critics")
    log_std_min: float = hp(-20.0, doc="lower clip of the policy's log-std")
    log_std_max: float = hp(2.0, doc="upper clip of the policy's log-std")
    backup_entropy: bool = hp(True, doc="entropy term in the critic target")
    RELATIONS = (("log_std_min", "<", "log_std_max"),)


CONFIG = SACConfig
# metrics.csv columns of the learner's update beyond the common ones (qsm.harness.metrics.COMMON)
METRICS = {
    "alpha": "SAC: the entropy temperature used in the update",
    "entropy": "SAC: the policy's entropy estimate -mean log pi(a|s)",
}
