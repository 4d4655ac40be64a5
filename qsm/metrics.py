"""Training diagnostics: what every update computes that explains learning, logged to metrics.csv.

An update returns per-seed values (one array of shape (S,) per column below). `MetricsLog` adds
them up where they live (on the GPU for a CUDA run) and reads them to the host once per logging
interval, so logging adds no device-to-host transfer to an update. A row is the mean over the
updates since the previous row; a column a learner does not compute is left empty.

Rows are written at every environment step n with n % log_every == 0 that follows at least one
update (updates happen at steps n > start_steps), and at the last step. `metric_steps` lists them;
the validator checks a complete run against it. The default interval (qsm.budget) gives about
200 rows at any budget.

Torch-free at import (the pipeline and the validator use the schedule and the columns).
"""
from __future__ import annotations

import numpy as np

# column -> meaning (docs/run_directory.md shows this table)
METRICS = {
    "critic_loss": "critic loss (QSM, dql: the sum over the two critics; SAC, TD3: their mean)",
    "actor_loss": "actor loss (QSM: score-matching loss; TD3: on actor updates only)",
    "q_mean": "mean of Q(s, a) over the batch and both critics",
    "q_std": "standard deviation of Q(s, a) over the batch and both critics",
    "target_q_mean": "mean of the critic target y over the batch",
    "dq_da_rms": "QSM: RMS of dQ/da (mean of the two critics) at the noised replay actions the "
                 "score is trained on",
    "score_target_rms": "QSM: RMS of the score target M_q dQ/da (the sampler's own noise has "
                        "RMS 1)",
    "eps_pred_rms": "QSM: RMS of the denoiser's predicted noise eps_theta(s, a~, t)",
    "bound_share": "QSM, dql: share of the sampler's action coordinates at the batch's next "
                   "states that lie within 1e-3 of -1 or 1",
    "alpha": "SAC: the entropy temperature used in the update",
    "entropy": "SAC: the policy's entropy estimate -mean log pi(a|s)",
    "actor_q": "TD3: mean over the batch of the two critics' mean Q(s, mu(s)) (on actor updates)",
}
COLUMNS = ("step", *METRICS)
BOUND_TOLERANCE = 1e-3


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
    """

    def __init__(self, n_seeds: int):
        self.n_seeds = n_seeds
        self.sums: dict = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict) -> None:
        for key, v in values.items():
            if key not in METRICS:
                continue  # extra values an agent returns (dql's q_loss, bc_loss) are not columns
            if key in self.sums:
                self.sums[key] = self.sums[key] + v
                self.counts[key] += 1
            else:
                self.sums[key] = _detached_float64(v)
                self.counts[key] = 1

    def nonfinite(self) -> np.ndarray | None:
        """(S,) bool: seeds with a non-finite value since the last flush (a host read: call it
        only when checking, not per update)."""
        if not self.sums:
            return None
        return ~np.isfinite(self._host_sums()).all(axis=0)

    def flush(self, step: int) -> list[dict]:
        """One row per seed (the means since the last flush), and a fresh interval."""
        sums = self._host_sums() if self.sums else np.zeros((0, self.n_seeds))
        means = {k: sums[j] / self.counts[k] for j, k in enumerate(self.sums)}
        rows = [{"step": int(step), **{k: float(means[k][i]) if k in means else None
                                       for k in METRICS}} for i in range(self.n_seeds)]
        self.sums, self.counts = {}, {}
        return rows

    def _host_sums(self) -> np.ndarray:
        values = list(self.sums.values())
        if hasattr(values[0], "detach"):  # torch: one stack, one transfer
            import torch
            return torch.stack(values).cpu().numpy()
        return np.stack([np.asarray(v, dtype=np.float64) for v in values])

    def state_dict(self) -> dict:
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
    return np.asarray(v, dtype=np.float64)
