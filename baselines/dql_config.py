"""The declaration of the `dql` agent (learner: baselines/dql.py): its hyperparameters, torch-free.

The diffusion actor-critic's fields are QSM's (qsm/learners/diffusion_agent_config.py), with the
same defaults; dql adds the choice of actor loss. It has no M_q: the score-matching target is QSM's.
"""
from __future__ import annotations

from dataclasses import dataclass

from qsm.declare.hparams import hp
from qsm.learners.diffusion_agent_config import DIFFUSION_METRICS, DiffusionConfig

NAME = "dql"
LEARNER = "baselines.dql:DiffusionQL"


@dataclass
class DQLConfig(DiffusionConfig):
    """The diffusion actor-critic's fields (the actor graph holds all T denoiser calls), and the
    actor loss."""
    variant: str = hp("official", choices=("official", "diffusion_ql_paper"),
                      doc="actor update: the official online Diffusion-QL, or the paper's form")
    bc_weight: float = hp(1.0, ge=0, doc="diffusion_ql_paper only: weight of the BC term, 1/eta")


CONFIG = DQLConfig
# metrics.csv columns of the learner's update beyond the common ones (qsm.harness.metrics.COMMON)
METRICS = {
    **DIFFUSION_METRICS,
    "q_loss": "dql, variant diffusion_ql_paper: the normalised Q term of the actor loss",
    "bc_loss": "dql, variant diffusion_ql_paper: the denoising (behaviour cloning) term of the "
               "actor loss, before bc_weight",
}
TASK_OVERRIDES = {}  # QSM's per-task overrides would concern M_q, which this agent does not have
