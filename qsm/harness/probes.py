"""Probe states: a fixed set of observations per task at which every run's final policy is sampled.

They depend only on the task (never on algorithm or run seed), so action distributions of
different algorithms and seeds are compared at the very same states. They come from one
uniform-random rollout with a fixed seed, taken every `stride` steps so they span an episode.
Probe state 0 is the episode's first observation: the task's initial state, where the paper
shows its policy's actions (cartpole_swingup, its Fig. 4).
"""
from __future__ import annotations

import numpy as np

from qsm.harness.envs import ToyBandit, make_env
from qsm.harness.seeding import derive_seed

PROBE_SEED = 20240708  # fixed for all runs; the date of the paper's ICML proceedings


def probe_states(task: str, count: int = 8) -> np.ndarray:
    env = make_env(task, derive_seed(PROBE_SEED, "probe_env"))
    rng = np.random.default_rng(derive_seed(PROBE_SEED, "probe_actions"))
    stride = 1 if isinstance(env, ToyBandit) else 100
    states = []
    obs = env.reset()
    step = 0
    while len(states) < count:
        if step % stride == 0:
            states.append(obs.copy())
        obs, _, terminated, truncated = env.step(rng.uniform(-1, 1, env.act_dim))
        step += 1
        if terminated or truncated:
            obs = env.reset()
    return np.stack(states).astype(np.float32)
