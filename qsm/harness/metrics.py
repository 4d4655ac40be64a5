"""Training diagnostics: what every update computes that explains learning, logged to metrics.csv.

Columns. The common columns (`COMMON`: the critic's loss and values and the actor's loss, which
every actor-critic computes) are declared here, once. Every other column is declared by the
agent that computes it, with its meaning: `METRICS = {column: meaning}` in the agent's torch-free
declaration (e.g. baselines/sac_config.py; qsm.declare.catalog reads it), or `Learner.metrics` for a
learner outside the catalog (the official learners). An update returns per-seed values (one
array of shape (S,) per column); a key that its learner does not declare is an error
(`UndeclaredMetric`, naming the learner and the key), never dropped.

Layout. A file the suite's trainer writes has the columns `COLUMNS` (step, the common columns and
the diagnostics of the suite's first learners, the layout contract version 3 fixed: the files
of every learner share it, empty where a learner does not compute a column), then the learner's
own declared columns not among them (`file_columns`). A run records its learner's declared
columns in config.json (`metrics`); the validator (qsm.contract.rundir) requires step, the common
columns and those.

`MetricsLog` adds the values up where they live (on the GPU for a CUDA run) and reads them to the
host once per logging interval, so logging adds no device-to-host transfer to an update. A row is
the mean over the updates since the previous row; a column a learner does not compute is left
empty.

Rows are written at every environment step n with n % log_every == 0 that follows at least one
update (updates happen at steps n > start_steps), and at the last step. `metric_steps` lists them;
the validator checks a complete run against it. The default interval (qsm.declare.budget) gives
about 200 rows at any budget.

Light at import, with no numpy or torch (the pipeline and the validator use the schedule and the
columns, and the agent catalog, which the pipeline reads at DAG time, checks declarations against
COMMON); MetricsLog imports numpy when it reads values.
"""
from __future__ import annotations

#: The columns every learner's update reports: column -> meaning (docs/run_directory.md).
COMMON = {
    "critic_loss": "critic loss (QSM, dql: the sum over the two critics; SAC, TD3: their mean)",
    "actor_loss": "actor loss (QSM: score-matching loss; TD3: on actor updates only)",
    "q_mean": "mean of Q(s, a) over the batch and both critics",
    "q_std": "standard deviation of Q(s, a) over the batch and both critics",
    "target_q_mean": "mean of the critic target y over the batch",
}
#: The diagnostics columns of the layout that contract version 3 fixed, in its order: the common
#: ones, then those of the suite's first learners (declared, with their meanings, by qsm, dql,
#: sac and td3). Kept in every file the trainer writes, so that metrics.csv files of every
#: learner, the archived ones included, share these columns.
METRICS = (*COMMON, "dq_da_rms", "score_target_rms", "eps_pred_rms", "bound_share", "alpha",
           "entropy", "actor_q")
COLUMNS = ("step", *METRICS)
BOUND_TOLERANCE = 1e-3


class UndeclaredMetric(ValueError):
    """An update returned a value under a name its learner does not declare as a column."""


def check_declared(owner: str, declared) -> tuple:
    """A learner's declared columns as a tuple of names, or ValueError naming `owner`: each a
    distinct identifier (a CSV header cell), none `step` or a common column."""
    names = tuple(declared)
    for name in names:
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"{owner}: metrics column {name!r} must be an identifier")
        if name == "step" or name in COMMON:
            raise ValueError(f"{owner}: metrics column {name!r} is "
                             + ("the step column" if name == "step" else
                                "a common column (qsm.harness.metrics.COMMON), declared by the "
                                "framework"))
    if len(set(names)) != len(names):
        raise ValueError(f"{owner}: metrics columns declared twice in {list(names)}")
    return names


def file_columns(declared=()) -> tuple:
    """The header of a metrics.csv the trainer writes for a learner declaring `declared`:
    COLUMNS, then its declared columns that are not among them, in its order."""
    return (*COLUMNS, *(c for c in declared if c not in COLUMNS))


def required_columns(declared=()) -> tuple:
    """The columns a run's metrics.csv must have: step, the common ones and its declared ones."""
    return ("step", *COMMON, *(c for c in declared if c not in COMMON))


def metric_steps(steps: int, start_steps: int, log_every: int) -> list[int]:
    """The environment steps at which a run of this budget writes a metrics row."""
    if steps <= start_steps:
        return []
    first = (start_steps // log_every + 1) * log_every
    out = list(range(first, steps + 1, log_every))
    if not out or out[-1] != steps:
        out.append(steps)
    return out


def is_log_step(step: int, steps: int, start_steps: int, log_every: int) -> bool:
    return step > start_steps and (step % log_every == 0 or step == steps)


class MetricsLog:
    """Running sums of per-seed metrics over one logging interval.

    `add` takes a dict of (S,) arrays (torch tensors on any device, or numpy arrays) and keeps a
    sum and a count per column without reading any value; `flush` reads every sum to the host at
    once and returns one row per seed. A non-finite value in an update makes its interval's sum
    non-finite, so `nonfinite()` sees every NaN or inf that any update produced since the last
    flush (the trainer's divergence check reads it instead of checking every update).

    `declared`: the learner's own columns beyond COMMON; `owner`: its name, for the error an
    undeclared key raises.
    """

    def __init__(self, n_seeds: int, declared=(), owner: str = "the learner"):
        self.n_seeds = n_seeds
        self.owner = owner
        self.columns = (*COMMON, *check_declared(owner, declared))
        self._declared = frozenset(self.columns)
        self.sums: dict = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict) -> None:
        if not self._declared.issuperset(values):
            undeclared = [k for k in values if k not in self._declared]
            raise UndeclaredMetric(
                f"{self.owner}: its update returned {', '.join(map(repr, undeclared))}, which it "
                f"does not declare as a metrics.csv column (declared: {', '.join(self.columns)}); "
                f"declare it in the METRICS of its declaration, or do not return it "
                f"(docs/adding_a_baseline.md)")
        for key, v in values.items():
            if key in self.sums:
                self.sums[key] = self.sums[key] + v
                self.counts[key] += 1
            else:
                self.sums[key] = _detached_float64(v)
                self.counts[key] = 1

    def nonfinite(self) -> np.ndarray | None:
        """(S,) bool: seeds with a non-finite value since the last flush (a host read: call it
        only when checking, not per update)."""
        import numpy as np
        if not self.sums:
            return None
        return ~np.isfinite(self._host_sums()).all(axis=0)

    def flush(self, step: int) -> list[dict]:
        """One row per seed (the means since the last flush), and a fresh interval."""
        import numpy as np
        sums = self._host_sums() if self.sums else np.zeros((0, self.n_seeds))
        means = {k: sums[j] / self.counts[k] for j, k in enumerate(self.sums)}
        rows = [{"step": int(step), **{k: float(means[k][i]) if k in means else None
                                       for k in self.columns}} for i in range(self.n_seeds)]
        self.sums, self.counts = {}, {}
        return rows

    def _host_sums(self) -> np.ndarray:
        import numpy as np
        values = list(self.sums.values())
        if hasattr(values[0], "detach"):  # torch: one stack, one transfer
            import torch
            return torch.stack(values).cpu().numpy()
        return np.stack([np.asarray(v, dtype=np.float64) for v in values])

    def state_dict(self) -> dict:
        import numpy as np
        return {"sums": {k: (v.detach().cpu() if hasattr(v, "detach") else np.asarray(v))
                         for k, v in self.sums.items()},
                "counts": dict(self.counts)}

    def load_state_dict(self, state: dict, device=None) -> None:
        self.sums = {k: (v.to(device) if hasattr(v, "to") and device is not None else v)
                     for k, v in state["sums"].items()}
        self.counts = dict(state["counts"])


def _detached_float64(v):
    if hasattr(v, "detach"):
        return v.detach().double()
    import numpy as np
    return np.asarray(v, dtype=np.float64)
