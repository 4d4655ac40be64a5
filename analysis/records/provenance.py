"""Where every table and figure comes from: the configuration, the runs and the code.

Each analysis output is computed from the runs of some roles in the run manifest
(``analysis/records/manifest.py``) by one analysis command. Its provenance says which:

* ``config_hash``: the pipeline configuration (the manifest's ``config_hash``);
* ``manifest``: the manifest file read and its ``digest`` (``qsm.contract.identity.hash_of`` of its
  JSON, the same value as the ``digest`` parameter of the pipeline's ``run_manifest`` rule);
* ``analysis``: the command's module and its code version (``qsm.contract.identity.code_version``);
* ``training_code``: the code versions of the runs read, by algorithm;
* ``roles``, ``n_runs``: the manifest's runs of the roles the command reads (the runs it was
  computed from); ``by_status``: how many of them are complete, diverged, missing, ...;
  ``n_used``: how many entered this output's numbers;
* ``archive``: when the runs were read from a run archive, its path and the commits that
  trained them;
* ``runs`` (tables only): every one of those runs with its run id, status, whether it was used,
  and its directory, so any number can be traced to the run directories behind it.

Tables carry it in a sidecar ``<table file name>.provenance.json`` (``aggregate.csv`` ->
``aggregate.csv.provenance.json``), written beside the table; figures in a caption footer line
(:meth:`Provenance.footer`, e.g. ``config 694fd2d6 · 30 runs (benchmark) · code qsm 8f3392af,
sac ccb613fb · analysis.benchmark.figures 1a2b3c4d``) and in their PNG/PDF metadata (footer and
summary as JSON). The footer depends only on the configuration and the code, never on what the runs
hold, so the pipeline computes the same line when it builds the DAG and shows it in the HTML
report's captions. Nothing here depends on time or host: equal runs, config and code give equal
bytes.

Imports nothing heavy: the pipeline calls :func:`footer_of_manifest` while building the DAG.
"""
from __future__ import annotations

import json
from pathlib import Path

from qsm.contract.identity import code_version, hash_of

SIDECAR_SUFFIX = ".provenance.json"
SHORT = 8  # hex digits of a hash shown in footers (the sidecars hold the full ones)
RUN_FIELDS = ("algo", "task", "seed", "role", "run_id", "code_version", "path")


def sidecar_path(output) -> Path:
    """The provenance file of a table: its full file name plus ``.provenance.json``."""
    output = Path(output)
    return output.with_name(output.name + SIDECAR_SUFFIX)


def _as_dict(entry) -> dict:
    if isinstance(entry, dict):
        return {k: entry[k] for k in RUN_FIELDS}
    return {k: getattr(entry, k) for k in RUN_FIELDS}


class Provenance:
    """The provenance of the outputs one analysis command computes from the runs of `roles`."""

    def __init__(self, *, config_hash: str, manifest_digest: str, manifest_path, entries,
                 roles, module: str, archive=None):
        self.config_hash = str(config_hash)
        self.archive = archive  # {"path", "commits"}: the runs were read from this archive
        self.manifest_digest = str(manifest_digest)
        self.manifest_path = str(manifest_path)
        self.roles = tuple(roles)
        self.module = module
        self.code = code_version([module])
        self.runs = [_as_dict(e) for e in entries if _as_dict(e)["role"] in self.roles]
        self.status = {}  # run path -> status, once the command has read the runs

    @classmethod
    def of(cls, manifest, roles, module: str) -> "Provenance":
        """From an analysis.records.manifest.Manifest (which knows its file and digest)."""
        return cls(config_hash=manifest.config_hash, manifest_digest=manifest.digest,
                   manifest_path=manifest.source, entries=manifest.runs, roles=roles,
                   module=module, archive=manifest.archive)

    def with_status(self, status_by_path) -> "Provenance":
        """Record the status each run was found in (keyed by its manifest path)."""
        self.status = {str(p): str(s) for p, s in status_by_path.items()}
        return self

    # -- what every output says --------------------------------------------------------------

    def training_code(self) -> dict:
        algos = sorted({r["algo"] for r in self.runs})
        return {a: sorted({str(r["code_version"]) for r in self.runs if r["algo"] == a})
                for a in algos}

    def footer(self) -> str:
        """One line for captions: config, run count, training and analysis code versions."""
        code = ", ".join(f"{a} {'/'.join(v[:SHORT] for v in vs)}"
                         for a, vs in self.training_code().items()) or "none"
        archive = ""
        if self.archive:
            trained = "/".join(c[:SHORT] for c in self.archive.get("commits", [])) or "none yet"
            archive = f" from {self.archive['path']} (trained at {trained})"
        return (f"config {self.config_hash[:SHORT] or 'unknown'} · {len(self.runs)} runs "
                f"({', '.join(self.roles)}){archive} · code {code} · {self.module} "
                f"{self.code[:SHORT]}")

    def summary(self, used=None) -> dict:
        """Everything but the per-run list (figure metadata, and the head of every sidecar)."""
        by_status = {}
        for r in self.runs:
            s = self.status.get(str(r["path"]), "not read")
            by_status[s] = by_status.get(s, 0) + 1
        out = {"config_hash": self.config_hash,
               "manifest": {"path": self.manifest_path, "digest": self.manifest_digest},
               "analysis": {"module": self.module, "code_version": self.code},
               "training_code": self.training_code(), "roles": list(self.roles),
               "n_runs": len(self.runs), "by_status": by_status, "footer": self.footer(),
               "run_dirs": self._run_dirs()}
        if self.archive:
            out["archive"] = self.archive
        if used is not None:
            out["n_used"] = sum(str(r["path"]) in used for r in self.runs)
        return out

    def _run_dirs(self) -> dict:
        """'algo/task' -> run ids: with the manifest's runs_root, where every run lies."""
        dirs = {}
        for r in self.runs:
            dirs.setdefault(f"{r['algo']}/{r['task']}", set()).add(str(r["run_id"]))
        return {k: sorted(v) for k, v in sorted(dirs.items())}

    def record(self, output_name: str, used) -> dict:
        """The sidecar of one table: the summary plus every run, with `used` marking the runs
        (by manifest path) whose data entered the table's numbers."""
        used = {str(p) for p in used}
        runs = [{**r, "status": self.status.get(str(r["path"]), "not read"),
                 "used": str(r["path"]) in used}
                for r in sorted(self.runs, key=lambda r: (r["algo"], r["task"], r["role"],
                                                          str(r["run_id"]), int(r["seed"])))]
        return {"output": output_name, **self.summary(used), "runs": runs}

    def figure_metadata(self, used=None) -> dict:
        """PNG text chunks and PDF info entries: the footer and the summary as JSON."""
        summary = json.dumps(self.summary(used), sort_keys=True, separators=(",", ":"))
        return {"png": {"Description": self.footer(), "Provenance": summary},
                "pdf": {"Subject": self.footer(), "Keywords": summary}}


def footer_of_manifest(manifest: dict, roles, module: str, manifest_path="") -> str:
    """The footer for a manifest given as its JSON object (the pipeline, at DAG time)."""
    return Provenance(config_hash=manifest["config_hash"], manifest_digest=hash_of(manifest),
                      manifest_path=manifest_path, entries=manifest["runs"], roles=roles,
                      module=module, archive=manifest.get("archive")).footer()
