"""Agents registered by name, and their resolved hyperparameters.

An agent is a class decorated with `@register("name")` in `qsm/agent.py` or any module of the
`baselines` package (`qsm.catalog.agent_modules`), so a new file there is found by `--algo` with
no other edit. It declares its hyperparameters as a dataclass `Config` whose fields are
`qsm.hparams.hp(default, <valid range>)` (paper defaults), and optionally
`TASK_OVERRIDES = {task: {key: value}}` for per-task defaults. Both must be literals: the
pipeline reads them from the source text without importing torch (`qsm.catalog`).
"""
from __future__ import annotations

import importlib

import yaml

from .catalog import agent_modules
from .hparams import HparamError, relations_of, resolve, specs_of

_REGISTRY: dict[str, type] = {}
_loaded = False
AgentError = HparamError  # unknown agent, malformed or out-of-range hyperparameter


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
    if not _loaded:
        for mod in agent_modules():
            importlib.import_module(mod)
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
    """Paper defaults, then the agent's per-task defaults, then user overrides; every value
    type- and range-checked (qsm.hparams.resolve) -> an instance of the agent's Config."""
    values = resolve(agent_cls.name, specs_of(agent_cls.Config), relations_of(agent_cls.Config),
                     getattr(agent_cls, "TASK_OVERRIDES", {}).get(task, {}), overrides, task)
    return agent_cls.Config(**values)
