"""The evaluation protocol every training program of the suite shares: when a run evaluates
(`eval_steps`, `is_eval_step`: the one definition, used by the training loop, qsm/harness/loop.py,
and by the random policy, workflow/scripts/random_policy.py), and how (`eval_returns`: fresh, seeded
episodes for a block of seeds, all stepped together).

Numpy only (the random policy, a program without torch, imports the schedule).
"""
from __future__ import annotations

import numpy as np


def is_eval_step(step: int, steps: int, every: int) -> bool:
    """Whether a run of `steps` environment steps evaluating every `every` steps evaluates at
    `step`: at step 0, at every multiple of `every`, and at the last step."""
    return step % every == 0 or step == steps


def eval_steps(steps: int, every: int) -> list[int]:
    """Every step at which such a run evaluates, in order: 0, every, 2 every, ... and `steps`."""
    grid = list(range(0, steps + 1, every))
    return grid if grid[-1] == steps else grid + [steps]


def eval_returns(eval_envs, seeds, episodes, evals_done, derive, act):
    """The returns (seeds x episodes) of one evaluation of a seed block. Row i * E + e of the
    flat arrays is seed i's episode e, reseeded from derive(seed, "eval_env/<evals_done>/<e>");
    act(obs) maps all rows' observations to their actions; a row whose episode ended is not
    stepped again. Shared with the official learners' program (same protocol)."""
    E = episodes
    eval_envs.reseed({i * E + e: derive(s, f"eval_env/{evals_done}/{e}")
                      for i, s in enumerate(seeds) for e in range(E)})
    obs = eval_envs.reset()
    returns = np.zeros(len(seeds) * E)
    running = np.ones(len(seeds) * E, dtype=bool)
    while running.any():
        actions = act(obs)
        which = np.flatnonzero(running)
        o, r, term, trunc = eval_envs.step(actions[which], which)
        obs[which] = o
        returns[which] += r
        running[which] = ~(term | trunc)
    return returns.reshape(len(seeds), E)
