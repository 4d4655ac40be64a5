"""The registered agents, read from their source text without importing them.

The pipeline builds its DAG on login nodes, where importing torch or dm_control is slow or
impossible. Everything it needs about an agent is written declaratively in the agent's file:

    @register("qsm")
    class QSM(Agent):
        @dataclass
        class Config:
            M_q: float = hp(50.0, gt=0, doc="...")
            ...
        RELATIONS = (...)          # optional, inside Config
        TASK_OVERRIDES = {...}     # optional

so this module parses those files (`ast`, literals only) and returns, per agent name, its module,
its hyperparameter specs, relations and per-task defaults. The trainer uses the real classes
(`qsm.registry`); a test checks that both readings agree for every agent.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .hparams import CONSTRAINTS, HparamError, Spec, resolve

ROOT = Path(__file__).resolve().parent.parent
# Where agents live: the built-in QSM agent and every module of the `baselines` package.
BUILTIN_AGENT_MODULES = ("qsm.agent",)
PLUGIN_PACKAGES = ("baselines",)


class CatalogError(ValueError):
    """An agent file that the static reader cannot understand (not a user error)."""


@dataclass(frozen=True)
class AgentEntry:
    name: str
    module: str          # dotted module name, e.g. "baselines.sac"
    class_name: str
    specs: dict          # {field: Spec}
    relations: tuple     # ((a, op, b), ...)
    task_overrides: dict  # {task: {field: value}}

    def resolve(self, task: str, overrides: dict) -> dict:
        """Resolved hyperparameters {field: value} (raises HparamError)."""
        return resolve(self.name, self.specs, self.relations,
                       self.task_overrides.get(task, {}), overrides, task)


def agent_modules() -> list[str]:
    """Dotted names of every module that may register agents (the registry imports the same)."""
    mods = list(BUILTIN_AGENT_MODULES)
    for pkg in PLUGIN_PACKAGES:
        for path in sorted((ROOT / pkg).glob("*.py")):
            if not path.name.startswith("_"):
                mods.append(f"{pkg}.{path.stem}")
    return mods


def module_path(module: str) -> Path:
    base = ROOT.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _literal(node, where):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise CatalogError(f"{where}: not a literal ({ast.unparse(node)})") from None


def _registered_name(cls: ast.ClassDef):
    for dec in cls.decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, "id", getattr(dec.func, "attr", None)) == "register":
            return _literal(dec.args[0], f"class {cls.name} decorator")
    return None


def _read_config(cfg: ast.ClassDef, where: str):
    specs, relations = {}, ()
    for stmt in cfg.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            name = stmt.target.id
            value = stmt.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "hp":
                kwargs = {k.arg: _literal(k.value, f"{where}.{name}") for k in value.keywords}
                unknown = set(kwargs) - set(CONSTRAINTS) - {"doc"}
                if unknown:
                    raise CatalogError(f"{where}.{name}: unknown hp() arguments {sorted(unknown)}")
                if kwargs.get("choices"):
                    kwargs["choices"] = tuple(kwargs["choices"])
                specs[name] = Spec(name, _literal(value.args[0], f"{where}.{name}"), **kwargs)
            else:
                specs[name] = Spec(name, _literal(value, f"{where}.{name}"))
        elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
              and getattr(stmt.targets[0], "id", None) == "RELATIONS"):
            relations = tuple(tuple(r) for r in _literal(stmt.value, f"{where}.RELATIONS"))
    return specs, relations


@lru_cache(maxsize=None)
def agent_catalog() -> dict[str, AgentEntry]:
    """{agent name: AgentEntry} for every registered agent, from source text."""
    classes = {}   # class name -> (module, ClassDef), to follow `class DQL(QSM)` for inherited parts
    for mod in agent_modules():
        tree = ast.parse(module_path(mod).read_text(), filename=str(module_path(mod)))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = (mod, node)

    def part(cls_name, want):
        """The class's own Config / TASK_OVERRIDES, else its first base's that we know."""
        mod, node = classes[cls_name]
        for stmt in node.body:
            if want == "Config" and isinstance(stmt, ast.ClassDef) and stmt.name == "Config":
                return _read_config(stmt, f"{mod}.{cls_name}.Config")
            if (want == "TASK_OVERRIDES" and isinstance(stmt, ast.Assign)
                    and getattr(stmt.targets[0], "id", None) == "TASK_OVERRIDES"):
                return _literal(stmt.value, f"{mod}.{cls_name}.TASK_OVERRIDES")
        for base in node.bases:
            if getattr(base, "id", None) in classes:
                return part(base.id, want)
        if want == "Config":
            raise CatalogError(f"{mod}.{cls_name} declares no Config")
        return {}

    out = {}
    for cls_name, (mod, node) in classes.items():
        name = _registered_name(node)
        if name is None:
            continue
        if name in out:
            raise CatalogError(f"agent name {name!r} registered twice ({out[name].module} and {mod})")
        specs, relations = part(cls_name, "Config")
        out[name] = AgentEntry(name, mod, cls_name, specs, relations, part(cls_name, "TASK_OVERRIDES"))
    return out


def agent_names() -> list[str]:
    return sorted(agent_catalog())


def module_summary(module: str) -> str:
    """The first line of a module's docstring: an agent's one-line description."""
    doc = ast.get_docstring(ast.parse(module_path(module).read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def get_entry(name: str) -> AgentEntry:
    catalog = agent_catalog()
    if name not in catalog:
        raise HparamError(f"unknown algorithm {name!r}; registered: {', '.join(sorted(catalog))}")
    return catalog[name]
