"""The evaluation protocol every training program of the suite shares: fresh, seeded episodes
for a block of seeds, all stepped together."""
from __future__ import annotations

import numpy as np


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
