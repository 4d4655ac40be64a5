"""Synthetic runs that follow the documented run-directory contract (docs/run_directory.md) and the
pipeline's layout, and the run manifest that selects them (analysis/records/manifest.py)."""
from __future__ import annotations

from pathlib import Path

from qsm.contract.identity import BUDGET_KEYS
from qsm.contract.rundir import atomic_write_json

RUN_ID = "0123456789ab"


def seed_dir(root, algo, task, seed, run_id=RUN_ID) -> Path:
    """Where the pipeline puts a run: {root}/{algo}/{task}/{run_id}/seed{k}."""
    return Path(root) / algo / task / run_id / f"seed{seed}"


def run_config(algo, task, seed, *, act_dim=2, obs_dim=3, max_return=1000.0, steps=1000,
               optima=None, run_id=RUN_ID) -> dict:
    """config.json as SeedRunWriter.write_config takes it (contract_version is added by it). The
    budget has no learning steps: metrics.csv has no rows and no policy.pt is needed."""
    env = {"obs_dim": obs_dim, "act_dim": act_dim, "max_return": max_return}
    if optima is not None:
        env["optima"] = [list(map(float, o)) for o in optima]
    return {"algo": algo, "task": task, "seed": seed, "run_id": run_id, "code_version": "test",
            "hparams": {}, "budget": {**{k: 1 for k in BUDGET_KEYS}, "steps": steps, "start_steps": steps},
            "env": env, "provenance": {"git_commit": None}}


def write_manifest(path, root, runs, config_hash="test") -> Path:
    """A manifest listing (algo, task, seed, role[, run_id[, config_id]]) runs laid out under
    root."""
    entries = []
    for algo, task, seed, role, *rest in runs:
        run_id = rest[0] if rest else RUN_ID
        entries.append({"algo": algo, "task": task, "seed": seed, "role": role, "run_id": run_id,
                        "code_version": "test", "path": str(seed_dir(root, algo, task, seed, run_id))})
        if len(rest) > 1:
            entries[-1]["config_id"] = rest[1]
    atomic_write_json(path, {"config_hash": config_hash, "runs_root": str(root), "runs": entries})
    return Path(path)
