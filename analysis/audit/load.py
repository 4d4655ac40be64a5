"""Reading the runs to audit: the manifest's benchmark and audit runs, through the contract.

Everything the audit knows about a run comes from its run directory, read by
``analysis.manifest.load_entry`` (the contract validator, which checks both probe arrays): the
probe-state action samples of the chosen distribution and, for tasks with known optimal actions
(the toy bandits), ``config.json``'s ``env.optima``. A task has known optima when its runs'
configs say so; a run that cannot be read is listed under its task's optima as given by the
task's readable runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.aggregate import SCORED_ROLES
from analysis.manifest import load_entry, load_manifest
from qsm.rundir import ContractError

DISTRIBUTIONS = ("behaviour", "policy")
#: The audit's default, the same as the pipeline config's (audit.distribution).
DEFAULT_DISTRIBUTION = "policy"
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

    @property
    def audited(self) -> bool:
        return self.actions is not None


def _optima(run) -> np.ndarray | None:
    optima = run.config["env"].get("optima")  # shape checked by the contract validator
    return None if optima is None else np.asarray(optima, dtype=np.float64)


def load_entries(manifest, distribution: str = DEFAULT_DISTRIBUTION) -> list[RunEntry]:
    """Every benchmark and audit run of the manifest (a Manifest or a path to one) as a
    :class:`RunEntry`; never raises for a bad run. Only complete runs carry actions."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if not hasattr(manifest, "runs"):
        manifest = load_manifest(manifest)
    entries: list[RunEntry] = []
    for listed in manifest.select(*AUDIT_ROLES):
        algo, task, seed, d = listed.algo, listed.task, listed.seed, Path(listed.path)
        if not d.is_dir():
            entries.append(RunEntry(algo, task, seed, "missing", "no run directory", listed.path))
            continue
        try:
            run = load_entry(listed)  # validates both probe arrays of a complete run
            optima = _optima(run)
            status = str(run.status["status"])
            if status == "complete":
                states, actions = run.probe_actions(distribution)
        except ContractError as e:
            entries.append(RunEntry(algo, task, seed, "invalid", str(e), listed.path))
            continue
        except Exception as e:  # anything the validator did not anticipate
            entries.append(RunEntry(algo, task, seed, "invalid",
                                    f"{d}: unreadable ({type(e).__name__}: {e})", listed.path))
            continue
        if status != "complete":
            reason = str(run.status.get("reason", "") or "")
            detail = reason or f"{status} at step {run.status.get('step')}"
            entries.append(RunEntry(algo, task, seed, status, f"not audited: {detail}",
                                    listed.path, optima=optima))
            continue
        entries.append(RunEntry(algo, task, seed, "complete", "", listed.path,
                                np.asarray(states, np.float64),
                                np.clip(np.asarray(actions, np.float64), -1.0, 1.0), optima))
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
