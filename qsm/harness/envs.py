"""One environment interface for DeepMind Control tasks, gymnasium ids and the toy bandits.

    env = make_env("cheetah_run", seed=derive_seed(0, "train_env"))
    obs = env.reset()                                  # float32 (obs_dim,)
    obs, reward, terminated, truncated = env.step(a)   # a in [-1, 1]^act_dim

Actions are always in [-1, 1] and rescaled to the task's bounds inside the wrapper. A time-limit
end is reported as `truncated` (the agent bootstraps through it); `terminated` only for true
terminal states. No rendering is ever requested (MUJOCO_GL defaults to "disable").
"""
from __future__ import annotations

import difflib
import logging
import os
import pickle

import numpy as np

os.environ.setdefault("MUJOCO_GL", "disable")


class _DropSettotalmassNotice(logging.Filter):
    """dm_control 1.0.50's cheetah and others set `settotalmass`, which mujoco 3.17 reports as
    deprecated on every load: one line per environment, in every log, that no user can act on."""

    def filter(self, record):
        return "settotalmass" not in record.getMessage()


logging.getLogger("absl").addFilter(_DropSettotalmassNotice())

# The six tasks of the default grid. The paper's reviews confirm cheetah_run, walker_run and
# hopper_hop; the official repository's notes point at quadruped_walk; finger_spin and
# reacher_hard are this suite's choice.
DEFAULT_TASKS = ("cheetah_run", "walker_run", "hopper_hop", "quadruped_walk", "finger_spin",
                 "reacher_hard")


class TaskError(ValueError):
    """An unknown or malformed task name."""


class Env:
    obs_dim: int
    act_dim: int
    max_return: float  # scores are normalised by this in the analysis (DMC: 1000)
    name: str

    def reset(self) -> np.ndarray:
        raise NotImplementedError

    def step(self, action: np.ndarray):
        raise NotImplementedError

    def reseed(self, seed: int) -> None:
        """Restart the environment's random stream (used to give every evaluation fresh,
        reproducible episodes without rebuilding the environment)."""
        raise NotImplementedError

    # Checkpointing: the complete state, so that a resumed run continues bit for bit.
    def get_state(self):
        return pickle.dumps(self.__dict__)

    def set_state(self, blob):
        self.__dict__.update(pickle.loads(blob))


def _rescale(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    return low + (action + 1.0) * 0.5 * (high - low)


def _flatten(observation) -> np.ndarray:
    parts = [np.asarray(v, dtype=np.float32).ravel() for v in observation.values()]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


class DMCEnv(Env):
    def __init__(self, domain: str, task: str, seed: int):
        from dm_control import suite
        self.name = f"{domain}_{task}"
        # task_kwargs["random"] seeds the task's own RandomState: initial states and any noise.
        self._env = suite.load(domain, task, task_kwargs={"random": int(seed) % (2**32)})
        spec = self._env.action_spec()
        self._low, self._high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        self.act_dim = int(spec.shape[0])
        self.obs_dim = int(sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values()))
        self.max_return = 1000.0

    def reset(self):
        return _flatten(self._env.reset().observation)

    def reseed(self, seed):
        self._env.task.random.seed(int(seed) % (2**32))

    def step(self, action):
        ts = self._env.step(_rescale(action, self._low, self._high))
        # DMC signals a true terminal state with discount 0; a time-limit end keeps discount 1.
        terminated = bool(ts.last() and ts.discount == 0.0)
        truncated = bool(ts.last() and not terminated)
        return _flatten(ts.observation), float(ts.reward or 0.0), terminated, truncated


class GymEnv(Env):
    def __init__(self, env_id: str, seed: int):
        import gymnasium as gym
        self.name = env_id
        self._env = gym.make(env_id)
        space = self._env.action_space
        self._low, self._high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.act_dim = int(np.prod(space.shape))
        self.obs_dim = int(np.prod(self._env.observation_space.shape))
        self.max_return = float(getattr(self._env.spec, "reward_threshold", None) or 1000.0)
        self._seed = int(seed) % (2**32)
        self._first_reset = True

    def reset(self):
        if self._first_reset:  # seed once; later resets continue the same stream
            obs, _ = self._env.reset(seed=self._seed)
            self._first_reset = False
        else:
            obs, _ = self._env.reset()
        return np.asarray(obs, dtype=np.float32).ravel()

    def reseed(self, seed):
        self._seed = int(seed) % (2**32)
        self._first_reset = True

    def step(self, action):
        obs, reward, terminated, truncated, _ = self._env.step(
            _rescale(action, self._low, self._high).astype(self._env.action_space.dtype))
        return np.asarray(obs, dtype=np.float32).ravel(), float(reward), bool(terminated), bool(truncated)


class ToyBandit(Env):
    """A contextual bandit with several equally good, separated optima, at DeepMind Control's
    value scale.

    Every step: observe a context c ~ U[-1, 1]^obs_dim (drawn afresh, whatever the action; it does
    not move the optima), choose a in [-1, 1]^d, receive r = max_k exp(-|a - mu_k|^2 /
    (2 * width^2)) in [0, 1], DMC's per-step reward range. Every optimum mu_k earns reward 1, so an
    ideal multi-modal policy may put mass on all of them.

    Episodes end by time limit after EPISODE_STEPS steps, reported as truncation (the agent
    bootstraps through it, as through DMC's 1000-step limit), never as a terminal state. So
    Q(s, a) = r(a) + gamma * V has DMC's level r / (1 - gamma) (~100 at gamma = 0.99), while its
    action-dependent part is r(a) itself, because the next context ignores the action. That part
    is what QSM's target -M_q dQ/da and SAC's trade-off against alpha * entropy see; measured on
    DMC (benchmarks/action_sensitivity.py, docs/audit.md "Toy tasks") it is of the same size, which is
    why the reward is not rescaled.

      toy_bimodal : d = 1, optima at -0.5 and +0.5
      toy_quadmodal : d = 2, optima at (+-0.5, +-0.5)
    and the same two layouts moved out towards the bounds, to tell geometry from algorithm (a
    sampler that piles mass on the bounds is right where the optima are on them):
      toy_bimodal_near_bounds, toy_quadmodal_near_bounds : optima at +-0.8 (per coordinate)
      toy_bimodal_at_bounds : optima at -1 and +1;  toy_quadmodal_at_bounds : the 4 corners
    """

    VARIANTS = {
        name: np.array(layout, dtype=np.float64) * offset
        for suffix, offset in (("", 0.5), ("_near_bounds", 0.8), ("_at_bounds", 1.0))
        for name, layout in ((f"toy_bimodal{suffix}", [[-1], [1]]),
                             (f"toy_quadmodal{suffix}", [[-1, -1], [-1, 1], [1, -1], [1, 1]]))
    }
    WIDTH = 0.3  # wide enough that dQ/da points to an optimum from most of the box
    # The return is the sum over the episode, so only evaluation cost depends on this: the level
    # of Q is set by gamma because time-limit ends are bootstrapped.
    EPISODE_STEPS = 100

    def __init__(self, name: str, seed: int, obs_dim: int = 2):
        self.name = name
        self.optima = self.VARIANTS[name].astype(np.float64)
        self.act_dim = self.optima.shape[1]
        self.obs_dim = obs_dim
        self.max_return = float(self.EPISODE_STEPS)  # reward 1 at every step
        self._rng = np.random.default_rng(int(seed))
        self._t = 0

    def reward(self, action: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(action, dtype=np.float64), -1, 1)
        d2 = ((a[..., None, :] - self.optima) ** 2).sum(-1)
        return np.exp(-d2 / (2 * self.WIDTH**2)).max(-1)

    def reseed(self, seed):
        self._rng = np.random.default_rng(int(seed))

    def _draw_context(self):
        self._context = self._rng.uniform(-1, 1, self.obs_dim).astype(np.float32)
        return self._context.copy()

    def reset(self):
        self._t = 0
        return self._draw_context()

    def step(self, action):
        r = float(self.reward(action))
        self._t += 1
        return self._draw_context(), r, False, self._t >= self.EPISODE_STEPS


# dm_control 1.0.50's suite.ALL_TASKS (pinned; a test checks this copy against it). Kept here so
# that naming and validating tasks (the pipeline does it at DAG time, on login nodes too) never
# imports dm_control and MuJoCo.
DMC_TASKS = (
    ("acrobot", "swingup"), ("acrobot", "swingup_sparse"), ("ball_in_cup", "catch"),
    ("cartpole", "balance"), ("cartpole", "balance_sparse"), ("cartpole", "swingup"),
    ("cartpole", "swingup_sparse"), ("cartpole", "two_poles"), ("cartpole", "three_poles"),
    ("cheetah", "run"), ("dog", "stand"), ("dog", "walk"), ("dog", "trot"), ("dog", "run"),
    ("dog", "fetch"), ("finger", "spin"), ("finger", "turn_easy"), ("finger", "turn_hard"),
    ("fish", "upright"), ("fish", "swim"), ("hopper", "stand"), ("hopper", "hop"),
    ("humanoid", "stand"), ("humanoid", "walk"), ("humanoid", "run"),
    ("humanoid", "run_pure_state"), ("humanoid_CMU", "stand"), ("humanoid_CMU", "walk"),
    ("humanoid_CMU", "run"), ("lqr", "lqr_2_1"), ("lqr", "lqr_6_2"),
    ("manipulator", "bring_ball"), ("manipulator", "bring_peg"), ("manipulator", "insert_ball"),
    ("manipulator", "insert_peg"), ("pendulum", "swingup"), ("point_mass", "easy"),
    ("point_mass", "hard"), ("quadruped", "walk"), ("quadruped", "run"), ("quadruped", "escape"),
    ("quadruped", "fetch"), ("reacher", "easy"), ("reacher", "hard"), ("stacker", "stack_2"),
    ("stacker", "stack_4"), ("swimmer", "swimmer6"), ("swimmer", "swimmer15"),
    ("walker", "stand"), ("walker", "walk"), ("walker", "run"),
)
_DMC_BY_NAME = {f"{d}_{t}": (d, t) for d, t in DMC_TASKS}


def dmc_task_names() -> list[str]:
    return sorted(_DMC_BY_NAME)


def _gym_ids() -> list[str]:
    try:
        import gymnasium as gym
    except ImportError:
        return []
    return sorted(gym.registry.keys())


def make_env(task: str, seed: int) -> Env:
    """Build `task` (a DMC `domain_task`, a toy name, or a gymnasium id) seeded with `seed`."""
    if task in ToyBandit.VARIANTS:
        return ToyBandit(task, seed)
    if task in _DMC_BY_NAME:
        return DMCEnv(*_DMC_BY_NAME[task], seed)
    gym_ids = _gym_ids()
    if task in gym_ids:
        return GymEnv(task, seed)
    raise TaskError(unknown_task_message(task))


def unknown_task_message(task: str) -> str:
    dmc = dmc_task_names()
    candidates = dmc + list(ToyBandit.VARIANTS) + _gym_ids()
    close = difflib.get_close_matches(task, candidates, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return (f"unknown task {task!r}.{hint} Valid: DeepMind Control tasks ({', '.join(dmc)}); "
            f"toy tasks ({', '.join(ToyBandit.VARIANTS)}); or any registered gymnasium id "
            f"(e.g. HalfCheetah-v5).")


def validate_task(task: str) -> None:
    if task in ToyBandit.VARIANTS or task in _DMC_BY_NAME or task in _gym_ids():
        return
    raise TaskError(unknown_task_message(task))
