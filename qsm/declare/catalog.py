"""The registered agents, from their declarations: imported, never torch.

The pipeline builds its DAG on login nodes, where importing torch or dm_control is slow or
impossible. So an agent is two modules, side by side:

  * its learner, e.g. `baselines/sac.py`: the class that acts and updates (torch);
  * its declaration, the learner's module name + `_config`, e.g. `baselines/sac_config.py`:
    plain Python that imports nothing but dataclasses, `qsm.declare.hparams` and other declarations:

        NAME = "sac"                        # the name for --algo and the config's `algos:`
        LEARNER = "baselines.sac:SAC"       # module:Class of the learner
        @dataclass
        class SACConfig:                    # every field `hp(default, range..., doc=...)`
            gamma: float = hp(0.99, gt=0, lt=1, doc="discount")
            ...
            RELATIONS = (...)               # optional: orderings between fields
        CONFIG = SACConfig
        TASK_OVERRIDES = {task: {field: value}}   # optional: per-task defaults
        METRICS = {"alpha": "the temperature ..."}  # optional: its own metrics.csv columns
                                                    # beyond the common ones (qsm.harness.metrics)

The learner takes its `Config` from the declaration (`Config = SACConfig`), so the trainer and
the pipeline read the same class. Declarations are ordinary Python: a config may inherit another
(`qsm` and `dql` both extend `DiffusionConfig`, qsm/learners/diffusion_agent_config.py, the
hyperparameters of their shared base learner) or use named constants.

Where declarations are found: QSM's, `qsm/agent_config.py`, and every `baselines/*_config.py`,
so a new agent in `baselines/` needs no edit elsewhere. Naming each declaration after its learner
keeps the pair together in a listing; a shared config that is no agent lives in `qsm/` under a
learner's name + `_config` (it declares no NAME and is not scanned).

This module imports the declarations (importlib) and returns, per agent name, its learner, its
hyperparameter specs, relations and per-task defaults. `qsm.declare.registry` imports the learners.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qsm import ROOT
from qsm.declare.hparams import HparamError, relations_of, resolve, specs_of
from qsm.harness.metrics import check_declared

# Where declarations live: QSM's, and every module of the `baselines` package named *_config.
BUILTIN_DECLARATIONS = ("qsm.agent_config",)
PLUGIN_PACKAGES = ("baselines",)
DECLARATION_SUFFIX = "_config"


class CatalogError(ValueError):
    """A declaration module that does not declare an agent as described above (not a user error)."""


@dataclass(frozen=True)
class AgentEntry:
    name: str
    declaration: str     # dotted name of the declaration module, e.g. "baselines.sac_config"
    module: str          # dotted name of the learner's module, e.g. "baselines.sac"
    class_name: str      # the learner class in `module`
    config: type         # the Config dataclass (the learner's `Config`)
    specs: dict          # {field: Spec}
    relations: tuple     # ((a, op, b), ...)
    task_overrides: dict  # {task: {field: value}}
    metrics: dict = dataclasses.field(default_factory=dict)  # {column: meaning}: its own columns

    def resolve(self, task: str, overrides: dict) -> dict:
        """Resolved hyperparameters {field: value} (raises HparamError)."""
        return resolve(self.name, self.specs, self.relations,
                       self.task_overrides.get(task, {}), overrides, task)


def declaration_modules() -> list[str]:
    """Dotted names of every declaration module, QSM's first, then by module name."""
    mods = list(BUILTIN_DECLARATIONS)
    for pkg in PLUGIN_PACKAGES:
        for path in sorted((ROOT / pkg).glob(f"*{DECLARATION_SUFFIX}.py")):
            if not path.name.startswith("_"):
                mods.append(f"{pkg}.{path.stem}")
    return mods


def module_path(module: str) -> Path:
    base = ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def read_declaration(module_name: str) -> AgentEntry:
    """The agent that a declaration module declares (CatalogError if it is malformed)."""
    mod = importlib.import_module(module_name)
    missing = [k for k in ("NAME", "LEARNER", "CONFIG") if not hasattr(mod, k)]
    if missing:
        raise CatalogError(f"{module_name} declares no {', '.join(missing)}")
    name, learner, config = mod.NAME, mod.LEARNER, mod.CONFIG
    if not (isinstance(name, str) and name):
        raise CatalogError(f"{module_name}.NAME must be a non-empty string, not {name!r}")
    learner_module, _, class_name = str(learner).partition(":")
    if not (isinstance(learner, str) and learner_module and class_name.isidentifier()):
        raise CatalogError(f"{module_name}.LEARNER must read 'package.module:Class', not {learner!r}")
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise CatalogError(f"{module_name}.CONFIG must be a dataclass, not {config!r}")
    task_overrides = getattr(mod, "TASK_OVERRIDES", {})
    if not (isinstance(task_overrides, dict)
            and all(isinstance(t, dict) for t in task_overrides.values())):
        raise CatalogError(f"{module_name}.TASK_OVERRIDES must be {{task: {{field: value}}}}")
    metrics = getattr(mod, "METRICS", {})
    if not (isinstance(metrics, dict) and all(isinstance(v, str) and v for v in metrics.values())):
        raise CatalogError(f"{module_name}.METRICS must be {{column: meaning}}, each meaning a "
                           f"non-empty string")
    try:
        check_declared(module_name, metrics)
    except ValueError as e:
        raise CatalogError(str(e)) from None
    return AgentEntry(name, module_name, learner_module, class_name, config, specs_of(config),
                      relations_of(config), task_overrides, dict(metrics))


@lru_cache(maxsize=None)
def agent_catalog() -> dict[str, AgentEntry]:
    """{agent name: AgentEntry} for every declared agent, in declaration_modules() order."""
    out = {}
    for mod in declaration_modules():
        entry = read_declaration(mod)
        if entry.name in out:
            raise CatalogError(f"agent name {entry.name!r} declared twice "
                               f"({out[entry.name].declaration} and {mod})")
        out[entry.name] = entry
    return out


def agent_names() -> list[str]:
    return sorted(agent_catalog())


def module_summary(module: str) -> str:
    """The first line of a module's docstring: an agent's one-line description. Read from the
    learner's file (its import would load torch)."""
    doc = ast.get_docstring(ast.parse(module_path(module).read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def get_entry(name: str) -> AgentEntry:
    catalog = agent_catalog()
    if name not in catalog:
        raise HparamError(f"unknown algorithm {name!r}; registered: {', '.join(sorted(catalog))}")
    return catalog[name]
