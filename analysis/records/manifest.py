"""The run manifest: exactly the runs a configuration asks for. Every analysis reads runs through it.

The pipeline writes ``results/tables/run_manifest.json`` (rule ``run_manifest``: the run list is
``workflow.plan.Plan.run_manifest``, its keys are this module's :func:`manifest_dict` and
:func:`manifest_entry`, the file :func:`write_manifest`'s)::

    {"config_hash": "9c1e...",          # hash of the resolved pipeline configuration
     "runs_root": "results/runs",       # where runs of other configurations may also lie
     "runs": [{"algo": "qsm", "task": "cheetah_run", "seed": 0, "role": "benchmark",
               "run_id": "3f2a9c0d1e7b", "code_version": "8f3392af23ca",
               "path": "results/runs/qsm/cheetah_run/3f2a9c0d1e7b/seed0",
               "config_id": "5b0e..."}, ...]}

``config_id`` names the configuration without the code that trains it (algorithm, task,
hyperparameters, budget: qsm.contract.identity.configuration_id): the seeds of one configuration
share it even where the archive holds some of them under an older code version's ``run_id``.
Manifests written before it existed lack it; a reader then takes ``run_id`` in its place.

When the configuration reads its runs from an archive (config key ``archive``), the manifest
also holds ``"archive": {"path": ..., "commits": [...]}`` (the commits that trained the archived
runs it lists), and an archived run's ``path`` lies in the archive.

``role`` is ``benchmark`` (the benchmark grid: scored by rliable, profiled), ``audit`` (extra
tasks trained for the multimodality audit), ``tsweep`` and ``batch_sweep`` (the cost sweeps over
diffusion steps and replay batch sizes) or the
name of a sweep of the configuration (``sweeps``, e.g. ``mq_sweep``: ordinary runs at each value
of one hyperparameter; a point whose configuration is a benchmark or audit run's is that run,
listed a second time under the sweep's name). The manifest's ``"sweeps"`` holds, per sweep name,
its ``hparam``, ``algos``, ``values`` and the hyperparameter's declared ``default`` (or null).
A listed run is used only if its directory's ``config.json`` carries the listed ``run_id``,
algorithm, task and seed (:func:`load_entry`); :func:`read_runs` reads the listed runs of some
roles and gives each the status every analysis reports (missing, invalid, or the run's own).
Directories under ``runs_root`` that are not listed belong to other configurations and are
reported as ``not in config``, never used.

For analysing run directories outside the pipeline, ``python -m analysis.records.manifest DIR ...
--out manifest.json`` writes a manifest that lists every seed directory found (role from the
option ``--role``).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from qsm.contract.identity import hash_of
from qsm.contract.rundir import ContractError, Run, atomic_write_json, find_seed_dirs, load_run
from qsm.declare.cli import HelpFormatter

ROLES = ("benchmark", "audit", "tsweep", "batch_sweep")
#: Manifests written before sweeps were configurable knew one sweep, QSM's M_q.
LEGACY_SWEEPS = {"mq_sweep": {"hparam": "M_q", "default": 50.0}}
ENTRY_KEYS = ("algo", "task", "seed", "role", "run_id", "code_version", "path")
OPTIONAL_ENTRY_KEYS = ("config_id",)


class ManifestError(ValueError):
    """A manifest file that cannot be used (names the file and the problem)."""


@dataclass(frozen=True)
class Entry:
    algo: str
    task: str
    seed: int
    role: str
    run_id: str
    code_version: str
    path: str
    config_id: str = ""  # "" in manifests written before it existed

    @property
    def key(self):
        return (self.algo, self.task, self.seed)

    @property
    def configuration(self) -> str:
        """What the seeds of one configuration share, whatever code trained them (config_id;
        run_id in a manifest without it)."""
        return self.config_id or self.run_id


@dataclass(frozen=True)
class Manifest:
    config_hash: str
    runs_root: str
    runs: tuple          # of Entry
    source: str = ""     # the file it was read from
    digest: str = ""     # qsm.contract.identity.hash_of of its JSON
                         # (the run_manifest rule's digest)
    archive: dict | None = None  # {"path", "commits"} when the runs are read from an archive
    sweeps: dict = field(default_factory=dict)  # sweep name (its runs' role) -> {"hparam", ...}

    def select(self, *roles) -> list[Entry]:
        return [e for e in self.runs if e.role in roles]

    def listed_paths(self) -> set:
        return {Path(e.path).resolve() for e in self.runs}

    def unlisted_dirs(self) -> list[Path]:
        """Seed directories under runs_root that this configuration does not ask for."""
        root = Path(self.runs_root)
        listed = self.listed_paths()
        return [d for d in find_seed_dirs(root) if d.resolve() not in listed] if root.is_dir() else []


def manifest_entry(algo, task, seed, role, run_id, code_version, path, config_id=None) -> dict:
    """One run of a manifest as it is written: the keys ENTRY_KEYS, in their order, then
    config_id where it is known."""
    entry = dict(zip(ENTRY_KEYS, (algo, task, int(seed), role, run_id, code_version, path)))
    return entry if config_id is None else {**entry, "config_id": config_id}


def manifest_dict(config_hash, runs_root, runs, sweeps=None, archive=None) -> dict:
    """A manifest as it is written (the module docstring): `runs` are :func:`manifest_entry`
    dicts; `sweeps` ({name: {"hparam", "algos", "values", "hparams", "default"}}) and `archive`
    ({"path", "commits"}) are left out when None."""
    manifest = {"config_hash": config_hash, "runs_root": runs_root, "runs": runs}
    if sweeps is not None:
        manifest["sweeps"] = sweeps
    if archive is not None:
        manifest["archive"] = archive
    return manifest


def write_manifest(path, manifest: dict) -> None:
    """Write a manifest dict (:func:`manifest_dict`), after checking it as :func:`load_manifest`
    would read it (ManifestError otherwise)."""
    _entries(manifest, path)
    atomic_write_json(path, manifest)


def _entries(obj: dict, path) -> list[Entry]:
    """The manifest's runs, each checked to have every key and a known role."""
    sweeps = obj.get("sweeps", LEGACY_SWEEPS)
    runs = []
    for i, r in enumerate(obj["runs"]):
        missing = [k for k in ENTRY_KEYS if k not in r]
        if missing:
            raise ManifestError(f"{path}: run {i} is missing {missing}")
        if r["role"] not in ROLES and r["role"] not in sweeps:
            raise ManifestError(f"{path}: run {i} has role {r['role']!r}, neither one of "
                                f"{ROLES} nor a sweep of the manifest ({', '.join(sweeps)})")
        runs.append(Entry(str(r["algo"]), str(r["task"]), int(r["seed"]), r["role"],
                          str(r["run_id"]), str(r["code_version"]), str(r["path"]),
                          str(r.get("config_id", ""))))
    return runs


def load_manifest(path) -> Manifest:
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
        sweeps = obj.get("sweeps", LEGACY_SWEEPS)
        runs = _entries(obj, path)
        return Manifest(str(obj["config_hash"]), str(obj["runs_root"]), tuple(runs),
                        source=str(path), digest=hash_of(obj), archive=obj.get("archive"),
                        sweeps=dict(sweeps))
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ManifestError(f"{path}: not a run manifest ({type(e).__name__}: {e})") from None


def load_entry(entry: Entry, check_probes: bool = True) -> Run:
    """The listed run, validated through the contract and checked to be the run the manifest
    asks for; ContractError (naming the file) otherwise."""
    run = load_run(entry.path, check_probes=check_probes)
    found = (run.algo, run.task, run.seed, run.config.get("run_id"))
    wanted = (entry.algo, entry.task, entry.seed, entry.run_id)
    if tuple(map(str, found)) != tuple(map(str, wanted)):
        raise ContractError(Path(entry.path) / "config.json",
                            f"holds run {found}, but the configuration asks for {wanted}")
    return run


@dataclass(frozen=True)
class ListedRun:
    """One run the manifest lists, as read: the status every analysis reports for it, why, and
    the run (with what `read_runs`'s `read` made of it) where it could be read."""
    entry: Entry
    status: str          # status.json's (complete, diverged, running, failed), missing or invalid
    detail: str          # why a run is not complete ("" when there is nothing to say)
    run: Run | None = None
    data: object = None  # what `read` returned

    @property
    def readable(self) -> bool:
        return self.run is not None

    @property
    def last_step(self):
        """The last step status.json records (None when unread or unrecorded)."""
        step = self.run.status.get("step") if self.run is not None else None
        return step if isinstance(step, (int, float)) and not isinstance(step, bool) else None


def read_entry(entry: Entry, check_probes: bool = True, read=None) -> ListedRun:
    """The listed run, never raising for a bad one: ``missing`` without a directory, ``invalid``
    (the validator's message) when it breaks the run-directory contract or cannot be read, else
    its own status with a detail saying how far an unfinished run got. `read(run)`, when given,
    takes what an analysis needs from a readable run (a ContractError or any other error it
    raises makes the run ``invalid``); its result is ``data``."""
    if not Path(entry.path).is_dir():
        return ListedRun(entry, "missing", "no run directory")
    try:
        run = load_entry(entry, check_probes=check_probes)
        data = read(run) if read is not None else None
    except ContractError as e:
        return ListedRun(entry, "invalid", str(e))
    except Exception as e:  # anything the validator did not anticipate: reported, not raised
        return ListedRun(entry, "invalid", f"{entry.path}: unreadable ({type(e).__name__}: {e})")
    status = str(run.status["status"])
    step = run.status.get("step")
    reason = str(run.status.get("reason", "") or "")
    if status == "running":
        detail = f"still running (at step {step})"
    elif status in ("diverged", "failed"):
        detail = reason or f"{status} at step {step}"
    else:
        detail = reason
    return ListedRun(entry, status, detail, run, data)


def read_runs(manifest, roles, check_probes: bool = True, read=None) -> list[ListedRun]:
    """Every run of `roles` that the manifest (a Manifest or a path to one) lists, in its order,
    through :func:`read_entry`: the one place where the analyses decide a run's status."""
    if not hasattr(manifest, "runs"):
        manifest = load_manifest(manifest)
    return [read_entry(e, check_probes, read) for e in manifest.select(*roles)]


def manifest_for_dirs(dirs, role: str = "benchmark", runs_root=None) -> dict:
    """A manifest (as a dict) listing the given seed directories as they are (ad-hoc analysis)."""
    runs = []
    for d in dirs:
        cfg = json.loads((Path(d) / "config.json").read_text())
        runs.append(manifest_entry(cfg["algo"], cfg["task"], cfg["seed"], role,
                                   cfg.get("run_id", ""), cfg.get("code_version", ""), str(d)))
    return manifest_dict("", str(runs_root or ""), runs)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.records.manifest",
                                 description="Write a manifest listing every seed directory "
                                             "under the given directories.",
                                 formatter_class=HelpFormatter)
    ap.add_argument("dirs", nargs="+", metavar="DIR",
                    help="a seed directory (.../seed<k>), or a folder searched for them")
    ap.add_argument("--role", choices=ROLES, default="benchmark",
                    help="the role every listed run gets (which analyses read it)")
    ap.add_argument("--out", required=True, help="the manifest to write (JSON)")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    dirs = [d for root in a.dirs for d in find_seed_dirs(root)]
    atomic_write_json(a.out, manifest_for_dirs(dirs, a.role))
    print(f"{len(dirs)} runs -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

