"""Reading the runs to audit: the manifest's benchmark and audit runs, through the contract.

Everything the audit knows about a run comes from its run directory, read by
``analysis.records.manifest.read_runs`` (the contract validator, which checks both probe arrays):
the probe-state action samples of the chosen distribution and, for tasks with known optimal actions
(the toy bandits), ``config.json``'s ``env.optima``. A task has known optima when its runs'
configs say so; a run that cannot be read is listed under its task's optima as given by the
task's readable runs.

Both probe distributions are read: every run gives one entry per distribution, so each table
has a ``distribution`` column and each figure shows the two side by side. Each entry also
carries the run's final evaluation return (the last row of ``eval.csv``, normalised by
``env.max_return``), its value of the swept hyperparameter (for a sweep's runs), and its end-of-training
score-target scale (``score_target_rms`` of its ``metrics.csv``, :mod:`analysis.training.metrics`)
where its learner logs one.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from analysis.benchmark.aggregate import SCORED_ROLES, final_evaluation
from analysis.records.manifest import read_runs
from analysis.training.metrics import end_of_training_value

#: The learned policy first: the claim is about it; the behaviour distribution (what the agent
#: actually explores with) is what "explorative" is about.
DISTRIBUTIONS = ("policy", "behaviour")
DISTRIBUTION_TEXT = {
    "behaviour": "behaviour distribution (actions as explored: QSM sampler + N(0,0.1), "
                 "SAC tanh-Gaussian sample, TD3 \u03bc + N(0,0.1))",
    "policy": "policy distribution (learned policy without exploration noise; "
              "TD3's is a point mass)",
}
#: Roles of the manifest's runs that are audited (the T sweep's runs only measure cost).
AUDIT_ROLES = SCORED_ROLES


@dataclass
class RunEntry:
    algo: str
    task: str
    seed: int
    status: str            # complete / diverged / running / failed / missing / invalid
    detail: str
    path: str              # as listed in the manifest
    states: np.ndarray | None = None    # (P, obs_dim)
    actions: np.ndarray | None = None   # (P, N, act_dim), float64, in [-1, 1]
    optima: np.ndarray | None = None    # (K, act_dim): the task's known optimal actions, if any
    distribution: str = DISTRIBUTIONS[0]
    final_normalized: float = math.nan  # last evaluation return / env.max_return
    sweep_value: object = math.nan      # the swept hyperparameter's value (NaN: not swept, unknown)
    score_target_rms: float = math.nan  # end-of-training RMS of M_q dQ/da (NaN: not logged)
    role: str = ""
    hparams: dict | None = None         # the run's resolved hyperparameters (config.json)

    @property
    def audited(self) -> bool:
        return self.actions is not None


def _optima(run) -> np.ndarray | None:
    optima = run.config["env"].get("optima")  # shape checked by the contract validator
    return None if optima is None else np.asarray(optima, dtype=np.float64)


def _final_normalized(run) -> float:
    """The run's final score as analysis.benchmark.aggregate defines it: the last evaluation's mean
    return over env.max_return."""
    try:
        value = float(final_evaluation(run.eval)["return"]) / float(run.config["env"]["max_return"])
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def swept_value(run, hparam):
    """The run's value of a swept hyperparameter (or budget field): a number, or for a list of
    widths its text ("[64, 64]"), so that it can label a group; NaN when the run has none."""
    value = run.config.get("hparams", {}).get(hparam, run.config.get("budget", {}).get(hparam))
    if isinstance(value, bool) or value is None:
        return math.nan if value is None else str(value)
    if isinstance(value, (int, float)):
        return float(value)
    return json.dumps(value) if isinstance(value, (list, tuple)) else str(value)


def load_entries(manifest, distributions=DISTRIBUTIONS, roles=AUDIT_ROLES,
                 hparam=None) -> list[RunEntry]:
    """Every run of `roles` in the manifest (a Manifest or a path to one), once per distribution,
    as :class:`RunEntry` (with its value of `hparam`, for a sweep's runs); never raises for a bad
    run. Only complete runs carry actions."""
    distributions = tuple(distributions)
    bad = [d for d in distributions if d not in DISTRIBUTIONS]
    if bad or not distributions:
        raise ValueError(f"distributions must be among {DISTRIBUTIONS}, got {distributions!r}")
    entries: list[RunEntry] = []

    def read(run):  # the optima, and the probe samples of a complete run
        probes = ({x: run.probe_actions(x) for x in distributions}
                  if run.status["status"] == "complete" else {})
        return _optima(run), probes

    for listed in read_runs(manifest, roles, read=read):  # validates both probe arrays
        e, run = listed.entry, listed.run
        base = dict(algo=e.algo, task=e.task, seed=e.seed, path=e.path, role=e.role)
        if run is None:
            entries += [RunEntry(**base, status=listed.status, detail=listed.detail,
                                 distribution=x) for x in distributions]
            continue
        optima, probes = listed.data
        value = swept_value(run, hparam) if hparam else math.nan
        facts = dict(optima=optima, final_normalized=_final_normalized(run), sweep_value=value,
                     score_target_rms=end_of_training_value(run, "score_target_rms"),
                     hparams=dict(run.config.get("hparams") or {}))
        if listed.status != "complete":
            entries += [RunEntry(**base, status=listed.status,
                                 detail=f"not audited: {listed.detail}", distribution=x,
                                 **facts) for x in distributions]
            continue
        for x in distributions:
            states, actions = probes[x]
            entries.append(RunEntry(**base, status="complete", detail="",
                                    states=np.asarray(states, np.float64),
                                    actions=np.clip(np.asarray(actions, np.float64), -1.0, 1.0),
                                    distribution=x, **facts))
    _share_task_optima(entries)
    return entries


def _share_task_optima(entries) -> None:
    """Runs that could not be read take their task's optima from the task's readable runs."""
    known = {}
    for e in entries:
        if e.optima is not None:
            known.setdefault(e.task, e.optima)
    for e in entries:
        if e.optima is None and e.status in ("missing", "invalid") and e.task in known:
            e.optima = known[e.task]


def task_optima(entries) -> dict:
    """task -> its optima (K, act_dim), for the tasks with known optima."""
    out = {}
    for e in entries:
        if e.optima is not None:
            out.setdefault(e.task, e.optima)
    return out
