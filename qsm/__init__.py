"""Q-score matching reproducibility suite: agents, environments and the seed-batched trainer.

    agent.py, agent_config.py   QSM: the learner (the paper's algorithm box) and its declaration
    train.py, policy.py         the commands: train a block of seeds; probe or evaluate a policy
    learners/                   what the torch learners are built from (base, nets, diffusion)
    harness/                    the training loop and what it drives (environments, replay, ...)
    runtime/                    how a job runs on its machine (timing, memory, GPUs, progress)
    contract/                   the run directory and the run's identity
    declare/                    hyperparameters, budgets, the agents' catalog, command lines

docs/architecture.md draws the layers.
"""
from pathlib import Path

__version__ = "0.1.0"
#: The suite's checkout (the directory above this package).
ROOT = Path(__file__).resolve().parent.parent
