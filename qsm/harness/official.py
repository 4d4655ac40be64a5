"""Access to the authors' official implementation, for side-by-side checks and as a baseline.

The official code (Alescontrela/score_matching_rl, a jaxrl5 fork in JAX/flax; pinned commit
below) is never copied into this suite: it is loaded from a checkout at run time. Where the
checkout is looked for, in order:

  1. the path in the environment variable QSM_OFFICIAL_PATH;
  2. <repo>/../shared/official/score_matching_rl   (the project's shared reference copy);
  3. <repo>/.official/score_matching_rl            (where a local clone can be put).

It needs the optional extra `official` (`pip install -e ".[official]"`: jax, jaxlib, flax, optax,
gym for gym.spaces only, and tfp-nightly for the SAC learner's tanh-Normal).

How the modules are imported: the package `__init__` files of jaxrl5 import every learner, and
with them tensorflow_probability, wandb and d4rl. This module registers empty stand-ins for the
packages on the way (jaxrl5, jaxrl5.agents, jaxrl5.agents.<algo>, jaxrl5.data,
jaxrl5.distributions), each pointing at its real folder, so that importing
`jaxrl5.agents.score_matching.score_matching_learner` executes that file and the modules it
imports itself (jaxrl5.networks, jaxrl5.agents.agent, jaxrl5.data.dataset), and no `__init__` of
a stood-in package. jaxrl5.networks is imported as written (its `__init__` needs only flax).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import types
from pathlib import Path

from qsm import ROOT

OFFICIAL_COMMIT = "2e77893"          # the export in ../shared/official (2025-04-14)
ENV_VAR = "QSM_OFFICIAL_PATH"
INSTALL_HINT = 'pip install -e ".[official]"'

# The learner modules by the suite's names for them.
LEARNERS = {
    "qsm": ("jaxrl5.agents.score_matching.score_matching_learner", "ScoreMatchingLearner"),
    "dql": ("jaxrl5.agents.score_matching.ddpm_online_learner", "DiffusionOnlineLearner"),
    "sac": ("jaxrl5.agents.sac.sac_learner", "SACLearner"),
    "td3": ("jaxrl5.agents.td3.td3_learner", "TD3Learner"),
}
_STOOD_IN = ("jaxrl5", "jaxrl5.agents", "jaxrl5.agents.score_matching", "jaxrl5.agents.sac",
             "jaxrl5.agents.td3", "jaxrl5.data", "jaxrl5.distributions")
# What `from jaxrl5.distributions import X` needs, loaded on first use (tanh_normal needs tfp).
_DISTRIBUTIONS = {"TanhDeterministic": "tanh_deterministic", "TanhNormal": "tanh_normal",
                  "Normal": "tanh_normal"}


class OfficialUnavailable(RuntimeError):
    """The official checkout or the `official` extra is missing; the message says how to fix it."""


def candidate_paths() -> list[Path]:
    paths = []
    if os.environ.get(ENV_VAR):
        paths.append(Path(os.environ[ENV_VAR]).expanduser())
    paths.append(ROOT.parent / "shared" / "official" / "score_matching_rl")
    paths.append(ROOT / ".official" / "score_matching_rl")
    return paths


def is_checkout(path: Path) -> bool:
    return (Path(path) / "jaxrl5" / "agents" / "score_matching" / "score_matching_learner.py").is_file()


def find_checkout(path=None) -> Path:
    """The official checkout: `path` if given, else the first of candidate_paths() that exists."""
    if path is not None:
        if not is_checkout(Path(path)):
            raise OfficialUnavailable(
                f"{path} is not a score_matching_rl checkout (no "
                f"jaxrl5/agents/score_matching/score_matching_learner.py)")
        return Path(path).resolve()
    for candidate in candidate_paths():
        if is_checkout(candidate):
            return candidate.resolve()
    looked = ", ".join(str(p) for p in candidate_paths())
    raise OfficialUnavailable(
        f"official implementation not found (looked in {looked}); set {ENV_VAR} to a checkout of "
        f"Alescontrela/score_matching_rl at commit {OFFICIAL_COMMIT}")


def check_extra(sac: bool = False) -> None:
    """Raise OfficialUnavailable naming the missing packages of the `official` extra."""
    needed = ["jax", "flax", "optax", "gym"] + (["tensorflow_probability"] if sac else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise OfficialUnavailable(
            f"the official implementation needs {', '.join(missing)}: install the optional extra "
            f"with {INSTALL_HINT}")


def _distributions_getattr(name):
    if name not in _DISTRIBUTIONS:
        raise AttributeError(name)
    if _DISTRIBUTIONS[name] == "tanh_normal":
        # tanh_normal reads tensorflow_probability.substrates.jax as an attribute, which the
        # package only sets once the substrate has been imported (without TensorFlow installed).
        importlib.import_module("tensorflow_probability.substrates.jax")
    module = importlib.import_module(f"jaxrl5.distributions.{_DISTRIBUTIONS[name]}")
    return getattr(module, name)


def _stand_in_packages(root: Path) -> None:
    for name in _STOOD_IN:
        folder = str(root / name.replace(".", "/"))
        existing = sys.modules.get(name)
        if existing is not None:
            if list(getattr(existing, "__path__", [])) != [folder]:
                raise OfficialUnavailable(
                    f"another {name} is already imported from {getattr(existing, '__path__', '?')}; "
                    f"load the official code in a fresh process")
            continue
        package = types.ModuleType(name)
        package.__path__ = [folder]
        package.__file__ = None
        if name == "jaxrl5.distributions":
            package.__getattr__ = _distributions_getattr
        sys.modules[name] = package


def load_learner(algo: str, path=None):
    """The official learner class for `algo` (qsm, dql, sac, td3), imported from the checkout."""
    if algo not in LEARNERS:
        raise ValueError(f"no official learner for {algo!r}; known: {', '.join(LEARNERS)}")
    check_extra(sac=algo == "sac")
    root = find_checkout(path)
    _stand_in_packages(root)
    with contextlib.redirect_stderr(io.StringIO()):
        import gym  # noqa: F401  (gym 0.23 prints an unmaintained-package notice on import)
    module_name, class_name = LEARNERS[algo]
    return getattr(importlib.import_module(module_name), class_name)


def gym_spaces(obs_dim: int, act_dim: int):
    """The spaces a learner's create() takes (it reads their shapes and one sample to initialise
    the networks; the values do not matter). The suite's actions are already scaled to [-1, 1]."""
    import numpy as np
    with contextlib.redirect_stderr(io.StringIO()):
        import gym
    return (gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
            gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32))


def load_module(name: str, path=None):
    """Any official module by dotted name (e.g. jaxrl5.networks.diffusion), imported the same way."""
    check_extra()
    _stand_in_packages(find_checkout(path))
    return importlib.import_module(name)
