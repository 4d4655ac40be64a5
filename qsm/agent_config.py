"""The declaration of the `qsm` agent (learner: qsm/agent.py): its hyperparameters, torch-free.

The pipeline imports this module when it builds the DAG (qsm/declare/catalog.py), so it imports
nothing but dataclasses and other declarations.
"""
from __future__ import annotations

from dataclasses import dataclass

from qsm.declare.hparams import hp
from qsm.learners.diffusion_agent_config import DIFFUSION_METRICS, DiffusionConfig

NAME = "qsm"
# The score target's forms (qsm.learners.diffusion.score_target): the paper's, and the
# noise-level-consistent one of later re-implementations, whose implied score -eps / sigma_t is
# M_q dQ/da at every level.
SCORE_TARGETS = ("constant", "sigma_scaled")
LEARNER = "qsm.agent:QSM"


@dataclass
class QSMConfig(DiffusionConfig):
    """The diffusion actor-critic's fields, and the scale of the score-matching target."""
    M_q: float = hp(50.0, gt=0, doc="score scale: eps_theta is regressed onto -M_q dQ/da")
    score_target: str = hp("constant", choices=SCORE_TARGETS, implicit=True,
                           doc="the target's form: constant = -M_q dQ/da (the paper's); "
                               "sigma_scaled = -sigma_t M_q dQ/da, sigma_t = sqrt(1 - abar_t)")


CONFIG = QSMConfig
# metrics.csv columns of the learner's update beyond the common ones (qsm.harness.metrics.COMMON)
METRICS = {
    "dq_da_rms": "QSM: RMS of dQ/da (mean of the two critics) at the noised replay actions the "
                 "score is trained on",
    "score_target_rms": "QSM: RMS of the score target M_q dQ/da (the sampler's own noise has "
                        "RMS 1)",
    "eps_pred_rms": "QSM: RMS of the denoiser's predicted noise eps_theta(s, a~, t)",
    **DIFFUSION_METRICS,
}

# M_q = 50 on every task: the official "paper settings" config. (Its README's later hint
# that M_q = 120 "may perform better" on quadruped_walk and humanoid_walk is tuning advice:
# opt in with --set M_q=120 or the pipeline's `hparams:`.) The toy bandits get no override
# either: they are built at DMC's value scale (qsm/harness/envs.py, docs/audit.md "Toy tasks").
TASK_OVERRIDES = {}
