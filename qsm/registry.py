"""Agents registered by name, and their hyperparameters.

An agent is a class decorated with `@register("name")`. It declares its hyperparameters as a
dataclass `Config` (paper defaults) and, optionally, `TASK_OVERRIDES = {task: {key: value}}` for
per-task defaults from the paper, and optionally a classmethod `check_config(cfg)` that raises
AgentError for values its type alone does not rule out. Every module in the `baselines` package is imported on first
lookup, so a new file there is found by `--algo` without editing anything else.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import yaml

_REGISTRY: dict[str, type] = {}
_BUILTIN_MODULES = ("qsm.agent",)
_PLUGIN_PACKAGES = ("baselines",)
_loaded = False


class AgentError(ValueError):
    """Unknown agent or malformed hyperparameter override."""


def register(name: str):
    def wrap(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise AgentError(f"agent name {name!r} registered twice "
                             f"({_REGISTRY[name].__module__} and {cls.__module__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return wrap


def _load_all():
    global _loaded
    if _loaded:
        return
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    for pkg_name in _PLUGIN_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{info.name}")
    _loaded = True


def agent_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_agent(name: str) -> type:
    _load_all()
    if name not in _REGISTRY:
        raise AgentError(f"unknown algorithm {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def parse_overrides(pairs) -> dict:
    """['M_q=120', 'hidden=[256,256]'] -> {'M_q': 120, 'hidden': [256, 256]} (YAML-typed values)."""
    out = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AgentError(f"malformed --set {pair!r}: expected key=value")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise AgentError(f"malformed --set {pair!r}: value is not a number, bool, string or list") from None
    return out


def resolve_config(agent_cls, task: str, overrides: dict):
    """Paper defaults, then the agent's per-task defaults, then user overrides; type-checked."""
    cfg = agent_cls.Config()
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    merged = {**getattr(agent_cls, "TASK_OVERRIDES", {}).get(task, {}), **overrides}
    for key, value in merged.items():
        if key not in fields:
            raise AgentError(f"unknown hyperparameter {key!r} for {agent_cls.name}; "
                             f"valid: {', '.join(sorted(fields))}")
        default = getattr(cfg, key)
        setattr(cfg, key, _coerce(agent_cls.name, key, value, default))
    check = getattr(agent_cls, "check_config", None)
    if check is not None:
        check(cfg)
    return cfg


def _coerce(algo, key, value, default):
    def bad():
        return AgentError(f"hyperparameter {key}={value!r} for {algo} must be "
                          f"{type(default).__name__} like {default!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad()
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if isinstance(default, (tuple, list)):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
            raise bad()
        return tuple(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad()
        return value
    return value
