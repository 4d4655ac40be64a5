"""A run's budget: how long it trains, how it is evaluated and probed, and how it learns from
replay. One declaration, used by both training programs' command lines (qsm.declare.train_cli), the
pipeline's command strings (workflow/plan.py), the run identity (qsm.contract.identity) and the
configuration schema (workflow/schemas/config.schema.yaml, checked by tests/test_budget.py).

Torch-free, so that the pipeline imports it at DAG time.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

#: Rows of metrics.csv over the learning steps when log_every is not given.
ROWS_BY_DEFAULT = 200


@dataclass(frozen=True)
class Field:
    name: str
    minimum: int
    default: int | None  # the command-line default (None: required, or derived)
    help: str
    learning: bool       # only programs that learn take it (not e.g. the random policy)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


FIELDS = (
    Field("steps", 1, None, "environment steps per seed", False),
    Field("start_steps", 0, 10_000, "uniform-random steps before learning starts", True),
    Field("eval_every", 1, 10_000,
          "environment steps between evaluations (also at step 0 and the last)", False),
    Field("eval_episodes", 1, 10, "episodes per evaluation", False),
    Field("batch_size", 1, 256, "replay batch per update and seed", True),
    Field("replay_capacity", 1, 1_000_000, "transitions kept per seed", True),
    Field("probe_states", 1, 8, "probe states whose action samples are saved", False),
    Field("probe_samples", 1, 1000, "action samples per probe state", False),
    Field("log_every", 1, None, "environment steps between rows of metrics.csv (default: about "
          f"{ROWS_BY_DEFAULT} rows over the learning steps)", True),
)
KEYS = tuple(f.name for f in FIELDS)
BY_NAME = {f.name: f for f in FIELDS}
#: what every training program takes (the random policy too), and what only learners take
PROTOCOL_KEYS = tuple(f.name for f in FIELDS if not f.learning)
LEARNING_KEYS = tuple(f.name for f in FIELDS if f.learning)
#: the fields a sweep may vary: how a run learns, not what is measured about it
SWEEPABLE = ("batch_size", "replay_capacity", "start_steps", "steps")


class BudgetError(ValueError):
    """A budget value out of range: names the command-line option."""


def default_log_every(steps: int, start_steps: int) -> int:
    """About ROWS_BY_DEFAULT rows over the learning steps of a run, at any budget."""
    return max(1, math.ceil(max(steps - start_steps, 0) / ROWS_BY_DEFAULT))


@dataclass(frozen=True)
class Budget:
    steps: int
    start_steps: int
    eval_every: int
    eval_episodes: int
    batch_size: int
    replay_capacity: int
    probe_states: int
    probe_samples: int
    log_every: int

    def __post_init__(self):
        for f in FIELDS:
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise BudgetError(f"{f.flag} must be an integer, got {value!r}")
            if value < f.minimum:
                raise BudgetError(f"{f.flag} must be {'positive' if f.minimum == 1 else '>= 0'}, "
                                  f"got {value}")

    @classmethod
    def of(cls, values) -> "Budget":
        """From a mapping or an argparse namespace; a missing or None log_every is derived."""
        get = values.get if isinstance(values, dict) else lambda k, d=None: getattr(values, k, d)
        missing = [k for k in KEYS if k != "log_every" and get(k) is None]
        if missing:
            raise KeyError(f"budget is missing {missing}")
        data = {k: int(get(k)) for k in KEYS if k != "log_every"}
        log_every = get("log_every")
        data["log_every"] = (int(log_every) if log_every is not None
                             else default_log_every(data["steps"], data["start_steps"]))
        return cls(**data)

    def as_dict(self) -> dict:
        return asdict(self)

    def command_args(self, keys=KEYS) -> str:
        """The command-line options of `keys`, in that order: '--steps 3000 --start-steps ...'."""
        return " ".join(f"{BY_NAME[k].flag} {getattr(self, k)}" for k in keys)


def add_arguments(parser, keys=KEYS) -> None:
    """The budget's command-line options (argparse)."""
    for f in FIELDS:
        if f.name in keys:
            parser.add_argument(f.flag, type=int, required=f.name == "steps", default=f.default,
                                help=f.help)


assert KEYS == tuple(f.name for f in fields(Budget))
