"""Agents by name: the learner classes, and their resolved hyperparameters.

Each agent is declared in a torch-free module (`qsm/agent_config.py`, `baselines/<name>_config.py`;
`qsm.declare.catalog`): its name, its learner ("module:Class"), its `Config` dataclass of `hp()`
fields (paper defaults and valid ranges) and optional per-task defaults. This module imports the
learner a declaration names, so a new declaration in `baselines/` is found by `--algo` with no other
edit.
"""
from __future__ import annotations

import importlib
from functools import lru_cache

import yaml

from qsm.declare.catalog import agent_catalog, get_entry
from qsm.declare.hparams import HparamError

AgentError = HparamError  # unknown agent, malformed or out-of-range hyperparameter


def agent_names() -> list[str]:
    return sorted(agent_catalog())


@lru_cache(maxsize=None)
def get_agent(name: str) -> type:
    """The learner class declared for `name`, with `name` set on it (AgentError if unknown)."""
    entry = get_entry(name)
    cls = getattr(importlib.import_module(entry.module), entry.class_name, None)
    if cls is None:
        raise AgentError(f"{entry.declaration}: learner {entry.module}:{entry.class_name} "
                         f"does not exist")
    if getattr(cls, "Config", None) is not entry.config:
        raise AgentError(f"{entry.module}.{entry.class_name}.Config is not the Config its "
                         f"declaration {entry.declaration} declares ({entry.config.__name__})")
    if cls.__dict__.get("name", name) != name:
        raise AgentError(f"{entry.module}.{entry.class_name} is declared as both "
                         f"{cls.name!r} and {name!r}")
    cls.name = name
    return cls


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
    type- and range-checked (qsm.declare.hparams.resolve) -> an instance of the agent's Config."""
    return agent_cls.Config(**get_entry(agent_cls.name).resolve(task, overrides))
