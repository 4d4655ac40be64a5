"""The trainer's command line (`python -m qsm.train --help`): its options, their help texts and
the agent and task listings. Kept apart from the training loop because none of it changes a
number a run computes (the budget a run used is part of its identity whatever the defaults), so
editing a help text does not change the runs' code version (qsm/contract/identity.py)."""
from __future__ import annotations

import argparse

from qsm.declare.budget import add_arguments as add_budget_arguments
from qsm.declare.cli import HelpFormatter, PrintAndExit

TRAINER_DOC = """Train one algorithm on one task for a block of seeds at once.

    python -m qsm.train --algo qsm --task cheetah_run --seeds 0 1 2 --steps 100000 --out DIR

Writes the run-directory contract (docs/run_directory.md) to DIR/seed<k>/ for every seed.
With --checkpoint-every N the whole training state (networks, optimisers, replay buffers,
environments, every random stream) is saved atomically every N steps; running the same command
again resumes from it, and the result is bitwise identical to an uninterrupted run (on CUDA
through torch's deterministic kernels, which the trainer switches on).
"""


def agents_listing() -> str:
    """`--list-agents`: every registered agent with the first line of its module's docstring."""
    from qsm.declare.catalog import agent_catalog, module_summary
    catalog = agent_catalog()
    width = max(map(len, catalog))
    lines = ["Registered agents (--algo NAME; hyperparameters: "
             "python -m qsm.declare.hparams_docs NAME):"]
    lines += [f"  {name:<{width}}  {module_summary(entry.module)}"
              for name, entry in catalog.items()]
    return "\n".join(lines)


def tasks_listing() -> str:
    """`--list-tasks`: the DeepMind Control tasks, the toy bandits, and what gymnasium offers."""
    from qsm.harness.envs import DEFAULT_TASKS, ToyBandit, _gym_ids, dmc_task_names
    dmc = dmc_task_names()
    cells = [f"{name} *" if name in DEFAULT_TASKS else name for name in dmc]
    width = max(map(len, cells + list(ToyBandit.VARIANTS))) + 2
    lines = [f"DeepMind Control tasks (dm_control's suite, {len(dmc)} tasks; "
             f"* = the default grid):"]
    for row in range(0, len(cells), 3):
        lines.append("  " + "".join(f"{cell:<{width}}" for cell in cells[row:row + 3]).rstrip())
    lines.append("Toy bandits (known optima, for the multimodality audit):")
    for name, optima in ToyBandit.VARIANTS.items():
        lines.append(f"  {name:<{width}}{optima.shape[1]}-d action, {len(optima)} optima")
    lines.append(f"Gymnasium: any registered id is accepted as --task, e.g. HalfCheetah-v5 "
                 f"({len(_gym_ids())} registered here).")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qsm.train", description=TRAINER_DOC,
                                formatter_class=HelpFormatter)
    p.add_argument("--list-agents", action=PrintAndExit, text=agents_listing,
                   help="list the registered agents and exit")
    p.add_argument("--list-tasks", action=PrintAndExit, text=tasks_listing,
                   help="list the DeepMind Control tasks and toy bandits and exit")
    p.add_argument("--algo", required=True,
                   help="registered agent name (qsm, sac, td3, dql, ...; see --list-agents)")
    p.add_argument("--task", required=True,
                   help="DMC task (cheetah_run), toy task (toy_bimodal) or gymnasium id "
                        "(see --list-tasks)")
    add_run_options(p)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda if available)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an agent hyperparameter (repeatable), e.g. --set M_q=120 "
                        "(default: the agent's paper settings)")
    p.add_argument("--run-id", default=None,
                   help="the run identity the caller expects (the pipeline passes it); the "
                        "trainer refuses to run if its own differs (default: not checked)")
    return p


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options every training program of the suite takes (this trainer and the official
    learners' program): seeds, budget, output, diagnostics and checkpoints. Both build the run's
    budget from them (qsm.declare.budget.Budget.of) and check them with
    qsm.harness.loop.check_run_args."""
    p.add_argument("--seeds", type=int, nargs="+", required=True, help="run seeds of this block")
    add_budget_arguments(p)
    p.add_argument("--out", required=True, help="output directory; seeds go to OUT/seed<k>/")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write the metrics as TensorBoard scalars under DIR (needs the "
                        "optional extra: pip install -e '.[tensorboard]'; default: none)")
    p.add_argument("--checkpoint-every", type=int, default=0,
                   help="save a resumable checkpoint every N steps (default 0: never)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="where checkpoints live (default: OUT/.checkpoints)")
    p.add_argument("--keep-checkpoint", action="store_true",
                   help="keep the checkpoint after the run completes")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of the learner's numerical library (torch and BLAS; XLA for "
                        "the official learners; default: the library's choice)")
    p.add_argument("--env-workers", type=int, default=0,
                   help="worker processes that step the block's environments (default 0: in "
                        "this process); results are identical for any value")
    p.add_argument("--overwrite", action="store_true",
                   help="replace complete runs whose configuration differs")
    p.add_argument("--stop-after", type=int, default=None, metavar="STEPS",
                   help="stop once STEPS environment steps are done and leave the run unfinished "
                        "(status running, as an interrupted job leaves it), every row so far "
                        "written: the first steps of a run, e.g. to check it reproduces an "
                        "archived one (default: train the whole budget)")
    # Fault injection for the divergence tests: poison one seed's critic at a given step.
    p.add_argument("--debug-poison", default=None, help=argparse.SUPPRESS)
