"""An archive of finished runs: their contract files, kept in the repository with checksums.

    python -m analysis.records.archive add --manifest RUN_MANIFEST --archive results/archive/NAME
    python -m analysis.records.archive verify results/archive/NAME
    python -m analysis.records.archive pending --manifest RUN_MANIFEST \\
        --archive results/archive/NAME

`add` copies every finished run (complete or diverged, validated through the contract) that a run
manifest lists into ARCHIVE/runs/<algo>/<task>/<run_id>/seed<k>/: config.json, eval.csv,
timing.csv, metrics.csv, probe_actions.npz, status.json and policy.pt (never checkpoints). Runs
still training or missing are left for a later `add`; a run already archived must be byte for
byte the same (a run's files never change once it is finished). It then rewrites
ARCHIVE/MANIFEST.json, holding a lock on ARCHIVE so that sittings training in parallel take
turns:

    {"name": ..., "runs": [{"algo", "task", "seed", "roles", "run_id", "code_version", "status",
                            "git_commit", "git_dirty", "packages", "cpu", "numerics", "path",
                            "files": {name: {"sha256", "bytes"}}}, ...]}

with the identity each run recorded, the commit and package versions that trained it, the CPU
and its numerics fingerprint (qsm.runtime.numerics: where the run reproduces bit for bit; the run's
own record, else the archiving machine's), and a sha256 for every file. `verify` recomputes every
checksum and reports, one line each, a file that changed, is missing, or lies in the archive
without being listed; exit status 1 if any.
`pending` lists the training jobs (block target files) a run manifest still needs, the archived
runs left out, cheapest first by the hours its finished peers took (runs of the same algorithm and
configuration: hyperparameters and budget), so that a long study trained
in short sittings finishes whole jobs before it starts the ones whose length is unknown.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path

from analysis.records.manifest import ManifestError, load_entry, load_manifest
from qsm.contract.identity import run_identity
from qsm.contract.rundir import FINISHED_STATUSES, KEPT_FILES, ContractError, atomic_write_json
from qsm.declare.cli import HelpFormatter
from qsm.runtime import numerics



class ArchiveError(ValueError):
    """An archive that cannot be written as asked: names the run and the problem."""


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_archive(archive: Path) -> dict:
    path = archive / "MANIFEST.json"
    if not path.is_file():
        return {"name": archive.name, "runs": []}
    return json.loads(path.read_text())


def index_by_run(archive) -> dict:
    """(algo, task, seed) -> the archive's records of it."""
    index = {}
    for record in read_archive(Path(archive))["runs"]:
        index.setdefault((record["algo"], record["task"], int(record["seed"])), []).append(record)
    return index


def find_run(index: dict, algo: str, task: str, seed: int, hparams: dict, budget: dict,
             versions: dict | None = None):
    """The archived run of this configuration and seed, or None. An archived run belongs to a
    configuration when the configuration, at the code version the run recorded, has the run's
    run_id: archived runs keep the identity they were trained under, whatever the code is now.
    A run that recorded no package versions (an external program writes none, and runs from
    before versions were part of the identity have none) is asked under none and under the
    configuration's `versions`: its run_id says which it was trained under."""
    def identities(r):
        tried = [r["versions"]] if r.get("versions") is not None else [None, versions]
        return {run_identity(algo, task, hparams, budget, r["code_version"], v)["run_id"]
                for v in tried}
    found = [r for r in index.get((algo, task, int(seed)), []) if r["run_id"] in identities(r)]
    if len(found) > 1:
        raise ArchiveError(f"{algo} on {task} seed {seed} of one configuration is archived "
                           f"{len(found)} times (runs {', '.join(r['run_id'] for r in found)}, "
                           f"trained by different code); keep one")
    return found[0] if found else None


@contextlib.contextmanager
def locked(archive: Path):
    """Hold the archive for one writer: two sittings of the study (one per core, each in its own
    worktree) may finish a job at the same moment, and each rewrites MANIFEST.json from what it
    read. The lock is on the directory itself, so that the archive holds no file it does not list."""
    archive.mkdir(parents=True, exist_ok=True)
    fd = os.open(archive, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def add(manifest_path, archive) -> tuple[int, int]:
    """Archive the finished runs of a run manifest; returns (runs added, runs listed in all)."""
    archive = Path(archive)
    manifest = load_manifest(manifest_path)
    with locked(archive):
        return _add(manifest, archive)


def _add(manifest, archive: Path) -> tuple[int, int]:
    index = {(r["algo"], r["task"], r["run_id"], r["seed"]): r
             for r in read_archive(archive)["runs"]}
    added = 0
    for entry in manifest.runs:
        key = (entry.algo, entry.task, entry.run_id, entry.seed)
        if key in index:
            if entry.role not in index[key]["roles"]:
                index[key]["roles"] = sorted({*index[key]["roles"], entry.role})
            _check_unchanged(entry, index[key], archive)
            continue
        try:
            run = load_entry(entry)
        except ContractError:
            continue  # not finished, or not valid: reported by the pipeline's run_status table
        if run.status["status"] not in FINISHED_STATUSES:
            continue
        relative = Path("runs") / entry.algo / entry.task / entry.run_id / f"seed{entry.seed}"
        target = archive / relative
        target.mkdir(parents=True, exist_ok=True)
        files = {}
        for name in KEPT_FILES:
            source = Path(entry.path) / name
            if source.is_file():
                shutil.copyfile(source, target / name)
                files[name] = {"sha256": sha256(target / name), "bytes": source.stat().st_size}
        provenance = run.config.get("provenance", {})
        # the CPU's numerics, which say where the run reproduces bit for bit: as the run recorded
        # them, else this machine's (study.sh archives each run on the machine that trained it)
        machine = ({"cpu": provenance.get("cpu_model"), "numerics": provenance["cpu_numerics"]}
                   if provenance.get("cpu_numerics") else
                   {"cpu": numerics.cpu_model(), "numerics": numerics.fingerprint()})
        index[key] = {"algo": entry.algo, "task": entry.task, "seed": entry.seed,
                      "roles": [entry.role], "run_id": entry.run_id,
                      "code_version": run.config.get("code_version"),
                      "versions": run.config.get("versions"),  # None: trained before they
                      "status": run.status["status"],          # were part of the identity
                      "git_commit": provenance.get("git_commit"),
                      "git_dirty": provenance.get("git_dirty"),
                      "packages": provenance.get("packages"), **machine,
                      "path": relative.as_posix(), "files": files}
        added += 1
    runs = sorted(index.values(), key=lambda r: (r["algo"], r["task"], r["run_id"], r["seed"]))
    atomic_write_json(archive / "MANIFEST.json", {"name": archive.name, "runs": runs})
    return added, len(runs)


def _check_unchanged(entry, record, archive):
    for name, meta in record["files"].items():
        source = Path(entry.path) / name
        if source.is_file() and sha256(source) != meta["sha256"]:
            raise ArchiveError(f"{entry.path}/{name} differs from its archived copy in "
                               f"{archive / record['path']}: a finished run's files must not "
                               f"change (retrained with other code? then its run_id differs)")


def verify(archive) -> list[str]:
    """Every problem with the archive's files, one line each (empty: all checksums match)."""
    archive = Path(archive)
    if not (archive / "MANIFEST.json").is_file():
        return [f"{archive}: no MANIFEST.json"]
    problems, listed = [], set()
    for record in read_archive(archive)["runs"]:
        for name, meta in record["files"].items():
            path = archive / record["path"] / name
            listed.add(path.resolve())
            if not path.is_file():
                problems.append(f"{path}: is missing")
            elif sha256(path) != meta["sha256"]:
                problems.append(f"{path}: sha256 differs from MANIFEST.json")
    runs = archive / "runs"
    if runs.is_dir():
        for path in sorted(p for p in runs.rglob("*") if p.is_file()):
            if path.resolve() not in listed:
                problems.append(f"{path}: is not listed in MANIFEST.json")
    return problems


def pending(manifest_path, archive, seed_block: int = 1, max_hours=None, first=(),
            seed_major: bool = False) -> list[tuple]:
    """The training jobs a run manifest needs that the archive does not hold: (target, hours)
    with target the job's block file (<run dir>/block_<seeds>.done, the Snakefile's blocks of
    `seed_block` seeds in the manifest's order, per role) and hours the estimate for the whole
    block: what the cost table projects a run not finished at (analysis.training.profile.
    typical_hours: the median of the manifest's finished runs of the same algorithm and
    configuration, slow ones left out), times its seeds; NaN without such a run. Order: the jobs
    of the roles or tasks in `first` (in that order), then the rest; with `seed_major` by the
    block's first seed; then cheapest first, unknown last. `max_hours` drops the estimates above it (never the unknown)."""
    if seed_block < 1:
        raise ArchiveError(f"seed_block must be a positive integer, got {seed_block}")
    manifest = load_manifest(manifest_path)
    held = {(r["algo"], r["task"], r["run_id"], r["seed"]): Path(archive) / r["path"]
            for r in read_archive(Path(archive))["runs"]}
    # here: the pipeline's DAG imports this module, and the cost table needs pandas
    from analysis.training.profile import flag_slow, other_tasks_hours, run_cost, typical_hours
    # A run this commit trained is listed at the sitting's run directory; a fresh worktree (a new
    # machine, or the other core's) has it only in the archive, whose copy has its timing.csv.
    costs = flag_slow(run_cost(dataclasses.replace(manifest, runs=tuple(
        e if Path(e.path).exists() or (e.algo, e.task, e.run_id, e.seed) not in held
        else dataclasses.replace(e, path=str(held[e.algo, e.task, e.run_id, e.seed]))
        for e in manifest.runs))))
    finished = costs.dropna(subset=["hours"])
    seeds_of = {}  # (role, run dir) -> its entries, in the manifest's order
    for entry in manifest.runs:
        seeds_of.setdefault((entry.role, str(Path(entry.path).parent)), []).append(entry)
    first = list(first)
    jobs = {}  # target -> (hours, sort key)
    for (role, run_dir), entries in seeds_of.items():
        for i in range(0, len(entries), seed_block):
            block = entries[i:i + seed_block]
            if all((e.algo, e.task, e.run_id, e.seed) in held for e in block):
                continue
            target = f"{run_dir}/block_{'_'.join(str(e.seed) for e in block)}.done"
            hours = typical_hours(finished, block[0].algo, block[0].task,
                                  block[0].configuration)
            if math.isnan(hours):  # a task's first run: the algorithm's runs on other tasks
                hours = other_tasks_hours(finished, block[0].algo, block[0].role)
            hours *= len(block)
            rank = min([first.index(k) for k in (role, block[0].task) if k in first],
                       default=len(first))
            if target not in jobs or rank < jobs[target][1][0]:  # a run of two roles: the earlier
                jobs[target] = (hours, (rank, block[0].seed if seed_major else 0,
                                        math.isnan(hours), hours, target))
    order = sorted(jobs.items(), key=lambda job: job[1][1])
    return [(t, h) for t, (h, _) in order
            if max_hours is None or math.isnan(h) or h <= max_hours]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m analysis.records.archive", description=__doc__,
                                 formatter_class=HelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND",
                            help="add, verify or pending "
                                 "(python -m analysis.records.archive COMMAND --help)")
    a_add = sub.add_parser("add", help="archive the finished runs a run manifest lists",
                           formatter_class=HelpFormatter)
    a_add.add_argument("--manifest", required=True, help="a run manifest (run_manifest.json)")
    a_add.add_argument("--archive", required=True, help="the archive directory")
    a_verify = sub.add_parser("verify", help="check every archived file against its sha256",
                              formatter_class=HelpFormatter)
    a_verify.add_argument("archive", help="the archive directory")
    a_pending = sub.add_parser("pending", help="the training jobs a run manifest still needs, "
                               "in training order: one line each, TARGET<tab>HOURS",
                               formatter_class=HelpFormatter)
    a_pending.add_argument("--manifest", required=True, help="a run manifest (run_manifest.json)")
    a_pending.add_argument("--archive", required=True, help="the archive directory")
    a_pending.add_argument("--seed-block", type=int, default=1,
                           help="seeds per training job (the configuration's seed_block)")
    a_pending.add_argument("--max-hours", type=float, default=None,
                           help="leave out jobs estimated to take longer (never the unknown ones)")
    a_pending.add_argument("--first", nargs="*", default=[], metavar="ROLE_OR_TASK",
                           help="the jobs of these roles or tasks first, in this order")
    a_pending.add_argument("--seed-major", action="store_true",
                           help="then seed by seed: every job of seed 0 before any of seed 1")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        if a.command == "add":
            added, total = add(a.manifest, a.archive)
            print(f"{added} runs added; {total} runs in {a.archive}")
            return 0
        if a.command == "pending":
            for target, hours in pending(a.manifest, a.archive, a.seed_block, a.max_hours,
                                         a.first, a.seed_major):
                print(f"{target}\t{hours:.3f}")
            return 0
        problems = verify(a.archive)
    except (ArchiveError, ManifestError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if not problems:
        print(f"ok: {a.archive}: every file matches its sha256")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
