"""What identifies a run, and which code made it. Imports nothing heavy (the DAG uses it).

Code version
------------
The code version of a program is a hash of the source files that compute its numbers: the
program's module and, transitively, every module of this suite that it imports (`qsm`,
`baselines`, `analysis`), minus what cannot change a number a run produces: the subpackages
`NOT_NUMERIC_PACKAGES` (declarations, whose values enter the identity itself; the contract and
identity; the runtime: timing, memory, GPU slots, progress), the modules `NOT_NUMERIC`, and every
package's `__init__.py` (docstrings, a version and re-exports only: tests/test_identity.py). Each
file enters the hash as its syntax tree with docstrings removed (`ast.dump`), so editing comments,
docstrings, blank lines or formatting changes no version, and editing any statement does. For an
agent it is `training_code_version(algo)`: the closure of the agent's learner module (which imports
its declaration, e.g. `baselines/sac_config.py`, and any shared base such as
`qsm/learners/diffusion_agent.py` with its config) plus the trainer's. A declaration is hashed like
the learner: its Config's fields are what the learner builds from.

Run identity
------------
A run is (algorithm, task, seed, resolved hyperparameters, budget, code version, and the
versions of the packages that compute its numbers: `versions`, e.g. torch, numpy, dm_control and
mujoco for our agents, the same plus jax, jaxlib, flax and optax for the official learners;
after an upgrade old and new runs never mix). Seeds of one
configuration share everything else, so the pipeline stores them under one directory named by
`run_id` = the first 12 hex digits of the SHA-256 of the canonical JSON of the rest:

    results/runs/{algo}/{task}/{run_id}/seed{k}/

Two configurations never share a directory, a config change never touches another
configuration's runs, and switching back finds the earlier runs where they were. Execution
details that do not change what is computed (device, threads, environment workers, checkpoint
interval) are not part of the identity. Runs recorded before versions entered the identity
have none (`versions=None` gives their identity back, e.g. for archived runs).
"""
from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from qsm import ROOT
from qsm.declare.budget import KEYS, Budget

PACKAGES = ("qsm", "baselines", "analysis")
#: Subpackages none of whose modules changes a number a run computes.
NOT_NUMERIC_PACKAGES = ("qsm.declare", "qsm.contract", "qsm.runtime")
#: Modules outside them that do not either: saving and loading the trained policy, and the
#: probe and evaluate commands.
NOT_NUMERIC = frozenset({"qsm.policy"})
TRAINER_MODULE = "qsm.train"
BUDGET_KEYS = KEYS  # qsm.declare.budget: the one declaration of a run's budget
RUN_ID_LENGTH = 12
#: The packages whose versions are part of a run's identity, per training program.
ENVIRONMENT_PACKAGES = ("numpy", "dm_control", "mujoco")          # every program's tasks
TRAINER_PACKAGES = ("torch", *ENVIRONMENT_PACKAGES)                 # python -m qsm.train
OFFICIAL_PACKAGES = (*TRAINER_PACKAGES, "jax", "jaxlib", "flax", "optax")  # official learners


def package_versions(names) -> dict:
    """{package: installed version, or None}, read from the installed metadata (no import)."""
    return {name: _installed_version(name) for name in names}


@lru_cache(maxsize=None)  # the pipeline asks once per job; the answer cannot change meanwhile
def _installed_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def module_path(module: str) -> Path:
    base = ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _resolve_relative(module: str, level: int, name: str | None) -> str:
    parts = module.split(".")
    is_package = module_path(module).name == "__init__.py"
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([name] if name else []))


def _suite_module(name: str) -> str | None:
    """The longest prefix of a dotted name that is a module file of this suite, if any."""
    if name.split(".")[0] not in PACKAGES:
        return None
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if module_path(candidate).is_file():
            return candidate
        parts.pop()
    return None


@lru_cache(maxsize=None)
def imports_of(module: str) -> frozenset:
    """Suite modules that `module` imports anywhere in its body (static reading)."""
    tree = ast.parse(module_path(module).read_text())
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (_resolve_relative(module, node.level, node.module) if node.level
                    else node.module or "")
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for n in names:
            m = _suite_module(n)
            if m and m != module:
                found.add(m)
    return frozenset(found)


def closure(modules) -> list[str]:
    """The modules and every suite module they import, transitively (sorted)."""
    seen, todo = set(), list(modules)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(imports_of(m))
    return sorted(seen)


def _strip_docstrings(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@lru_cache(maxsize=None)
def _file_digest(path: Path) -> str:
    tree = _strip_docstrings(ast.parse(path.read_text(), filename=str(path)))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def numeric_sources(modules) -> list[Path]:
    """The files whose code versions a program: its closure minus what is not numeric (sorted)."""
    return [module_path(m) for m in closure(modules) if is_numeric(m)]


def is_numeric(module: str) -> bool:
    """Whether a suite module can change a number a run computes (see the module's docstring)."""
    if module in NOT_NUMERIC or module_path(module).name == "__init__.py":
        return False
    return not any(module == p or module.startswith(p + ".") for p in NOT_NUMERIC_PACKAGES)


def code_version(modules=(), files=()) -> str:
    """Hash of the numeric sources of `modules` plus any extra `files` (e.g. a script outside the
    packages, whose suite imports are followed too). 12 hex digits."""
    files = [Path(f).resolve() for f in files]
    for f in files:  # a standalone script: follow its imports of the suite
        modules = list(modules) + list(_script_imports(f))
    paths = sorted(set(numeric_sources(modules)) | set(files))
    h = hashlib.sha256()
    for p in paths:
        rel = p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else p.name
        h.update(f"{rel}\0{_file_digest(p)}\n".encode())
    return h.hexdigest()[:RUN_ID_LENGTH]


def _script_imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        for n in names:
            m = _suite_module(n)
            if m:
                yield m


def training_code_version(algo_module: str) -> str:
    """Code version of runs of the agent defined in `algo_module`, trained by qsm.train."""
    return code_version([algo_module, TRAINER_MODULE])


def canonical(obj) -> str:
    """Canonical JSON (sorted keys, tuples as lists, no spaces): equal configurations, equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_plain)


def _plain(o):
    if isinstance(o, tuple):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def run_identity(algo: str, task: str, hparams: dict, budget: dict, code: str,
                 versions: dict | None = None) -> dict:
    """The identity of a configuration's runs (seed excluded) and its run_id. `versions`: the
    package versions of the program that trains it (package_versions); None only for runs
    recorded before versions were part of the identity."""
    ident = {"algo": algo, "task": task, "hparams": json.loads(canonical(hparams)),
             "budget": Budget.of(budget).as_dict(), "code_version": code}
    if versions is not None:
        ident["versions"] = dict(sorted(versions.items()))
    return {**ident, "run_id": hash_of(ident)}


def configuration_id(identity: dict) -> str:
    """A run identity's configuration without the code that trains it (algorithm, task,
    hyperparameters, budget): the seeds of one configuration trained by different code share it,
    and their costs compare (analysis.training.profile)."""
    return hash_of({k: identity[k] for k in ("algo", "task", "hparams", "budget")})


def hash_of(obj, length: int = RUN_ID_LENGTH) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:length]
