"""Train the authors' official JAX learners under this suite's protocol: the external baselines
`qsm_official`, `sac_official` and `td3_official`.

    python workflow/scripts/official_baseline.py --algo qsm --task cheetah_run --seeds 0 1 \\
        --steps 100000 --out results/runs/qsm_official/cheetah_run [--official-path PATH] [--set M_q=120]

The learners are the official ones (ScoreMatchingLearner, SACLearner, TD3Learner), imported
unmodified from a checkout of Alescontrela/score_matching_rl (qsm/official.py: --official-path,
else QSM_OFFICIAL_PATH, else ../shared/official/score_matching_rl); they need the optional extra
(pip install -e ".[official]"). Hyperparameters: the official configs (examples/states/configs/
score_matching_config.py, the "paper settings": M_q = 50, 512x512 networks, T = 5; sac_config.py
and td3_config.py on td_config.py: 256x256 networks), then the defaults of the learner's create()
for the rest; --set overrides any create() argument.

Everything around the learner is this suite's, so that e.g. `qsm` and `qsm_official` differ only
in the learner:
  * environments: qsm.vecenv.EnvBlock, training streams derive_seed(seed, "train_env"), evaluation
    episodes reseeded with derive_seed(seed, "eval_env/<evaluation>/<episode>") (as qsm/train.py);
  * the first --start-steps actions: uniform, from the suite's "random_actions" streams (the very
    actions the suite's agents take), then the learner's sample_actions;
  * replay: qsm.replay.SeedBatchedReplay, one buffer per seed sampled from its own stream;
    mask = 0 only at true terminals (time limits are truncations); one update per step from
    --start-steps on, each seed's learner on its own batch;
  * evaluation at step 0, every --eval-every steps and at the last step, --eval-episodes fresh
    episodes per seed, batched over a seed's episodes. SAC and TD3: the learner's eval_actions
    (deterministic). QSM: eval_actions runs the official ddpm_sampler on one observation; here
    the same sampler runs on all of a seed's episodes at once, from the learner's current key,
    which is not fed back (as the official evaluate() discards its copy of the learner);
  * probe samples at qsm.probes.probe_states(task, P), keyed by derive_seed(seed, "probe"):
    QSM policy = the official ddpm_sampler, behaviour = + N(0, 0.1^2) clipped (sample_actions);
    SAC policy = behaviour = sample_actions (a tanh-Gaussian draw); TD3 policy = eval_actions,
    behaviour = sample_actions (+ N(0, 0.1^2), clipped);
  * per-phase wall-clock (env_step, act, critic_update, actor_update, replay, eval). The official
    update() calls the critic and actor updates inside one jit; here the halves are jitted
    separately so that each phase can be timed (the same computation). QSM: update_q, then
    update_actor. SAC: update_critic, then update_actor and update_temperature (the actor phase).
    TD3: update_critic, then update_actor when the critic's step count is a multiple of
    actor_delay, which is the condition official update() evaluates;
  * the run-directory contract via qsm.rundir.SeedRunWriter (atomic files), with `run_id` and
    `code_version` written verbatim into each config.json;
  * with --checkpoint-every N, the whole state (each learner's pytree: parameters, optimiser
    states, key; replay buffers; environment states; every random stream; timers; evaluation
    rows) is saved atomically every N steps and a rerun resumes from it, bit for bit as if never
    interrupted. A checkpoint of another identity (algorithm, task, seeds, hyperparameters,
    budget, run id, code version) is refused, never resumed into a hybrid run.
Seeds share nothing: each has its own learner (created with the run seed, as the official
scripts do), environments, replay buffer and streams.
"""
from __future__ import annotations

import argparse
import inspect
import os
import pickle
import platform
import shlex
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qsm.cli import HelpFormatter
from qsm.evaluation import eval_returns  # the trainer's protocol
from qsm.metrics import MetricsLog, is_log_step
from qsm.progress import MissingExtra, Progress, TensorBoardLog
from qsm.train import UsageError, budget_of, check_budget_args
from qsm.train_cli import add_run_options

# examples/states/configs at commit 2e77893 (QSM's "paper settings": commit 48500fa).
# tests/test_official_program.py checks these against the checkout's files.
TD_CONFIG = {"actor_lr": 3e-4, "critic_lr": 3e-4, "hidden_dims": (256, 256), "discount": 0.99,
             "num_qs": 2, "tau": 0.005}
OFFICIAL_CONFIGS = {
    "qsm": {"actor_lr": 3e-4, "critic_lr": 3e-4, "discount": 0.99, "tau": 0.005, "T": 5,
            "M_q": 50, "critic_hidden_dims": (512, 512), "actor_hidden_dims": (512, 512)},
    "sac": {**TD_CONFIG, "temp_lr": 3e-4, "init_temperature": 1.0, "target_entropy": None,
            "backup_entropy": True},
    "td3": {**TD_CONFIG, "exploration_noise": 0.1, "target_policy_noise": 0.2,
            "target_policy_noise_clip": 0.5, "actor_delay": 2},
}
EXPLORATION_NOISE = 0.1  # ScoreMatchingLearner.sample_actions adds N(0, 0.1^2)
NOT_HYPERPARAMETERS = ("seed", "observation_space", "action_space")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python workflow/scripts/official_baseline.py",
                                description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--algo", choices=sorted(OFFICIAL_CONFIGS), default="qsm",
                   help="official learner; the runs are named <algo>_official")
    p.add_argument("--task", required=True,
                   help="DMC task (cheetah_run), toy task (toy_bimodal) or gymnasium id")
    add_run_options(p)
    p.add_argument("--official-path", default=None,
                   help="checkout of Alescontrela/score_matching_rl (default: QSM_OFFICIAL_PATH, "
                        "else ../shared/official/score_matching_rl, else "
                        ".official/score_matching_rl; qsm/official.py)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an argument of the learner's create(), e.g. --set M_q=120 "
                        "(default: the official configs)")
    p.add_argument("--threads", type=int, default=None,
                   help="XLA and torch CPU threads (default: their own choice)")
    p.add_argument("--run-id", default=None,
                   help="written verbatim into config.json as run_id (default: null)")
    p.add_argument("--code-version", default=None,
                   help="written verbatim into config.json as code_version (default: null)")
    return p


def resolve_hparams(algo, learner_cls, overrides: dict) -> dict:
    """create()'s defaults, then the official config, then --set; names checked against create()."""
    params = inspect.signature(learner_cls.create).parameters
    defaults = {k: p.default for k, p in params.items() if k not in NOT_HYPERPARAMETERS}
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise UsageError(f"unknown hyperparameter(s) {', '.join(unknown)} for {algo}_official; "
                         f"valid: {', '.join(sorted(defaults))}")
    hp = {**defaults, **OFFICIAL_CONFIGS[algo], **overrides}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in hp.items()}


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in ("jax", "jaxlib", "flax", "optax", "tfp-nightly", "numpy", "dm_control", "mujoco", "torch"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git(root, *args) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---------------------------------------------------------------------------------------------
# The learners: how each official learner acts, updates (in timed halves) and is probed
# ---------------------------------------------------------------------------------------------

class Learner:
    """Adapter over one official learner class; every method takes and returns learner values."""

    def __init__(self, jax, learner_cls, checkout):
        self.jax, self.cls = jax, learner_cls

    def explore(self, learner, obs):
        action, learner = learner.sample_actions(obs)
        return np.asarray(action), learner

    def evaluator(self, learner):
        """Per evaluation: a function of a batch of observations -> actions (state kept inside)."""
        return lambda obs: np.asarray(learner.eval_actions(obs)[0])

    def finite_values(self, critic_info, actor_info):
        return [critic_info["critic_loss"], critic_info["q"]] + (
            [actor_info["actor_loss"]] if actor_info else [])

    def metrics(self, learner, critic_info, actor_info) -> dict:
        """The metrics.csv columns this learner's update info gives (qsm.metrics)."""
        out = {"critic_loss": critic_info["critic_loss"], "q_mean": critic_info["q"]}
        if actor_info:
            out["actor_loss"] = actor_info["actor_loss"]
        return out

    def policy_params(self, learner):
        """The parameters the policy acts with (kept in policy.pt)."""
        return learner.actor.params

    def with_policy_params(self, learner, params):
        return learner.replace(actor=learner.actor.replace(params=params))


def stats_rms(info, prefix):
    """RMS of a tensor from the official tensorstats (mean, population std)."""
    return float(np.sqrt(np.float64(info[f"{prefix}_mean"]) ** 2
                         + np.float64(info[f"{prefix}_std"]) ** 2))


class QSMLearner(Learner):
    def __init__(self, jax, learner_cls, checkout):
        super().__init__(jax, learner_cls, checkout)
        from qsm import official
        self.sampler = official.load_module("jaxrl5.networks.diffusion", checkout).ddpm_sampler
        self.critic_update = jax.jit(learner_cls.update_q)
        self.actor_update = jax.jit(learner_cls.update_actor)

    def update_critic(self, learner, batch):
        return self.critic_update(learner, batch)

    def update_actor(self, learner, batch):
        return self.actor_update(learner, batch)

    def sample(self, learner, key, observations):
        """eval_actions for a batch: the official ddpm_sampler with the learner's parameters and
        settings; returns the actions and the key to use next."""
        actions, key = self.sampler(learner.score_model.apply_fn, learner.score_model.params,
                                    learner.T, key, learner.act_dim,
                                    self.jax.numpy.asarray(observations), learner.alphas,
                                    learner.alpha_hats, learner.betas, learner.ddpm_temperature,
                                    learner.clip_sampler)
        _, key = self.jax.random.split(key)  # as eval_actions does after sampling
        return np.asarray(actions), key

    def evaluator(self, learner):
        state = {"key": learner.rng}

        def act(obs):
            actions, state["key"] = self.sample(learner, state["key"], obs)
            return actions
        return act

    def probe(self, learner, key, obs):
        sample_key, noise_key = self.jax.random.split(key)
        policy, _ = self.sample(learner, sample_key, obs)
        noise = np.asarray(self.jax.random.normal(noise_key, policy.shape)) * EXPLORATION_NOISE
        return policy, np.clip(policy + noise, -1.0, 1.0)

    def finite_values(self, critic_info, actor_info):
        return [critic_info["c_loss_mean_1"], critic_info["c_loss_mean_2"], critic_info["q_mean_1"],
                actor_info["actor_loss_mean"]]

    def metrics(self, learner, critic_info, actor_info) -> dict:
        """From the official tensorstats; the share of sampler actions on a bound is not among
        them (left empty)."""
        c = {k: np.float64(v) for k, v in critic_info.items()}
        dq_da_rms = stats_rms(actor_info, "critic_jacobian")
        return {"critic_loss": c["c_loss_mean_1"] + c["c_loss_mean_2"],
                "q_mean": (c["q_mean_1"] + c["q_mean_2"]) / 2,
                # the two critics' values pooled, from each one's mean and std
                "q_std": np.sqrt((c["q_std_1"] ** 2 + c["q_std_2"] ** 2) / 2
                                 + ((c["q_mean_1"] - c["q_mean_2"]) / 2) ** 2),
                "target_q_mean": c["target_q_mean"], "actor_loss": actor_info["actor_loss_mean"],
                "dq_da_rms": dq_da_rms, "score_target_rms": float(learner.M_q) * dq_da_rms,
                "eps_pred_rms": stats_rms(actor_info, "eps_pred")}

    def policy_params(self, learner):
        return learner.score_model.params

    def with_policy_params(self, learner, params):
        return learner.replace(score_model=learner.score_model.replace(params=params))


class SACLearnerAdapter(Learner):
    def __init__(self, jax, learner_cls, checkout):
        super().__init__(jax, learner_cls, checkout)
        self.critic_update = jax.jit(learner_cls.update_critic)
        self.actor_step = jax.jit(learner_cls.update_actor)
        self.temperature_step = jax.jit(learner_cls.update_temperature)

    def update_critic(self, learner, batch):
        return self.critic_update(learner, batch)

    def update_actor(self, learner, batch):
        learner, actor_info = self.actor_step(learner, batch)
        learner, temp_info = self.temperature_step(learner, actor_info["entropy"])
        return learner, {**actor_info, **temp_info}

    def probe(self, learner, key, obs):
        actions, _ = learner.replace(rng=key).sample_actions(obs)
        return np.asarray(actions), np.asarray(actions)

    def metrics(self, learner, critic_info, actor_info) -> dict:
        return {**super().metrics(learner, critic_info, actor_info),
                "entropy": actor_info["entropy"], "alpha": actor_info["temperature"]}


class TD3LearnerAdapter(Learner):
    def __init__(self, jax, learner_cls, checkout):
        super().__init__(jax, learner_cls, checkout)
        self.critic_update = jax.jit(learner_cls.update_critic)
        self.actor_step = jax.jit(learner_cls.update_actor)

    def update_critic(self, learner, batch):
        return self.critic_update(learner, batch)

    def update_actor(self, learner, batch):
        # official update(): lax.cond(critic.step / utd_ratio % actor_delay == 0, update_actor, ...)
        if int(learner.critic.step) % learner.actor_delay != 0:
            return learner, None
        return self.actor_step(learner, batch)

    def metrics(self, learner, critic_info, actor_info) -> dict:
        out = super().metrics(learner, critic_info, actor_info)
        if actor_info:
            out["actor_q"] = -np.float64(actor_info["actor_loss"])  # actor loss = -mean Q(s, mu(s))
        return out

    def probe(self, learner, key, obs):
        policy = np.asarray(learner.eval_actions(obs)[0])
        behaviour, _ = learner.replace(rng=key).sample_actions(obs)
        return policy, np.asarray(behaviour)


ADAPTERS = {"qsm": QSMLearner, "sac": SACLearnerAdapter, "td3": TD3LearnerAdapter}


# ---------------------------------------------------------------------------------------------
# The suite's protocol around them
# ---------------------------------------------------------------------------------------------

class OfficialRun:
    def __init__(self, args, learner_cls, checkout: Path, hparams: dict):
        import jax
        import torch

        from qsm import official, rundir
        from qsm.replay import SeedBatchedReplay
        from qsm.seeding import SeedStreams, derive_seed
        from qsm.timing import PhaseTimer
        from qsm.vecenv import EnvBlock

        self.jax, self.torch, self.derive_seed, self.rundir = jax, torch, derive_seed, rundir
        self.args, self.hparams, self.checkout = args, hparams, checkout
        self.name = f"{args.algo}_official"
        self.seeds = list(args.seeds)
        S, E = len(self.seeds), args.eval_episodes
        self.envs = EnvBlock(args.task, [derive_seed(s, "train_env") for s in self.seeds])
        self.eval_envs = EnvBlock(args.task, [derive_seed(s, "eval_env") for s in self.seeds
                                              for _ in range(E)])
        self.obs_dim, self.act_dim, self.max_return = self.envs.obs_dim, self.envs.act_dim, self.envs.max_return
        obs_space, act_space = official.gym_spaces(self.obs_dim, self.act_dim)
        self.learners = [learner_cls.create(s, obs_space, act_space, **hparams) for s in self.seeds]
        self.adapter = ADAPTERS[args.algo](jax, learner_cls, checkout)
        self.replay = SeedBatchedReplay(self.seeds, self.obs_dim, self.act_dim,
                                        min(args.replay_capacity, args.steps), "cpu")
        self.random_actions = SeedStreams(self.seeds, "random_actions")
        self.timer = PhaseTimer("cpu")
        self.writers = [rundir.SeedRunWriter(Path(args.out) / f"seed{s}") for s in self.seeds]
        self.status = ["running"] * S
        self.step = 0
        self.evals_done = 0
        self.obs = None
        self.metrics = MetricsLog(S)
        self.progress = Progress(f"{self.name} {args.task}", args.steps)
        self.tensorboard = TensorBoardLog.open(args.tensorboard, self.name, args.task,
                                               args.run_id or "no-run-id", self.seeds)
        self.elapsed_before = 0.0
        ckpt_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else Path(args.out) / ".checkpoints"
        self.ckpt_path = ckpt_dir / f"seeds-{'-'.join(map(str, self.seeds))}.pkl"

    def close(self):
        self.envs.close()
        self.eval_envs.close()

    # -- the contract ---------------------------------------------------------------------------
    def config_for(self, seed) -> dict:
        a = self.args
        return {
            "algo": self.name, "task": a.task, "seed": int(seed),
            "hparams": {k: list(v) if isinstance(v, tuple) else v for k, v in self.hparams.items()},
            "budget": budget_of(a),
            "env": {"obs_dim": self.obs_dim, "act_dim": self.act_dim, "max_return": self.max_return},
            "block": {"seeds": self.seeds, "size": len(self.seeds)},
            "run_id": a.run_id, "code_version": a.code_version,
            "official": self.official_facts(),
            "provenance": self.provenance(),
        }

    def official_facts(self) -> dict:
        from qsm import official
        module, cls = official.LEARNERS[self.args.algo]
        return {"path": str(self.checkout), "learner": f"{module}.{cls}",
                "commit": git(self.checkout, "rev-parse", "HEAD") or official.OFFICIAL_COMMIT}

    def provenance(self) -> dict:
        root = Path(__file__).resolve().parents[2]
        device = self.jax.devices()[0]
        return {"git_commit": git(root, "rev-parse", "HEAD") or None,
                "git_dirty": bool(git(root, "status", "--porcelain", "--untracked-files=no")),
                "packages": package_versions(), "python": platform.python_version(),
                "hostname": socket.gethostname(), "device": device.platform,
                "device_name": str(device.device_kind), "torch_threads": self.torch.get_num_threads(),
                "command": shlex.join([sys.executable, *sys.argv]),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def write_timing(self):
        rows = [{"phase": phase, "calls": calls, "total_s": total, "env_steps": self.step,
                 "block_size": len(self.seeds), "device": "cpu"}
                for phase, (calls, total) in sorted(self.timer.summary().items())]
        for name in (*self.rundir.TIMING_PHASES, "replay", "eval"):
            if name not in self.timer.calls:
                rows.append({"phase": name, "calls": 0, "total_s": 0.0, "env_steps": self.step,
                             "block_size": len(self.seeds), "device": "cpu"})
        for w in self.writers:
            w.write_timing(rows)

    # -- training -------------------------------------------------------------------------------
    def run(self) -> int:
        a = self.args
        resumed = self.try_resume()
        if not resumed:
            for s, w in zip(self.seeds, self.writers):
                w.write_config(self.config_for(s))
                w.write_status("running", 0)
        try:
            if not resumed:
                self.obs = self.envs.reset()
                self.evaluate()
            self.progress.start(self.step, self.elapsed_before)
            log_every = budget_of(a)["log_every"]
            while self.step < a.steps:
                self.train_step()
                self.step += 1
                self.progress.update(self.step)
                if is_log_step(self.step, a.steps, a.start_steps, log_every):
                    self.log_metrics()
                if self.step % a.eval_every == 0 or self.step == a.steps:
                    self.evaluate()
                if a.checkpoint_every and self.step % a.checkpoint_every == 0 and self.step < a.steps:
                    self.save_checkpoint()
            self.progress.close()
            self.finish()
        except BaseException as e:
            for i, w in enumerate(self.writers):
                if self.status[i] == "running":
                    w.write_status("failed", self.step, f"{type(e).__name__}: {e}")
            raise
        return 0

    def alive(self) -> np.ndarray:
        return np.array([s == "running" for s in self.status])

    def train_step(self):
        a, t, jax = self.args, self.timer, self.jax
        alive = self.alive()
        live = np.flatnonzero(alive)
        with t.phase("act"):
            if self.step < a.start_steps:
                actions = (self.random_actions.rand(self.act_dim) * 2 - 1).numpy()
            else:
                actions = np.zeros((len(self.seeds), self.act_dim), np.float32)
                for i in live:
                    actions[i], self.learners[i] = self.adapter.explore(self.learners[i], self.obs[i])
            actions[~alive] = 0.0
        with t.phase("env_step"):
            next_obs, rewards, terminated, truncated = self.envs.step(actions)
        with t.phase("replay"):
            self.replay.add(self.obs, actions, rewards.astype(np.float32), next_obs,
                            terminated.astype(np.float32))
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            next_obs[done] = self.envs.reset(done)
        self.obs = next_obs
        if self.step < a.start_steps:
            return
        with t.phase("replay"):
            sample = {k: v.numpy() for k, v in self.replay.sample(a.batch_size).items()}
        batches = [{"observations": sample["obs"][i], "actions": sample["action"][i],
                    "rewards": sample["reward"][i], "masks": sample["mask"][i],
                    "next_observations": sample["next_obs"][i]} for i in range(len(self.seeds))]
        critic_info, actor_info = {}, {}
        with t.phase("critic_update"):
            for i in live:
                self.learners[i], critic_info[i] = self.adapter.update_critic(self.learners[i], batches[i])
            jax.block_until_ready([self.learners[i] for i in live])
        with t.phase("actor_update"):
            for i in live:
                self.learners[i], actor_info[i] = self.adapter.update_actor(self.learners[i], batches[i])
            jax.block_until_ready([self.learners[i] for i in live])
        S = len(self.seeds)
        columns = {}
        for i in live:
            for key, value in self.adapter.metrics(self.learners[i], critic_info[i],
                                                   actor_info[i]).items():
                columns.setdefault(key, np.zeros(S))[i] = value
        self.metrics.add(columns)
        for i in live:
            values = self.adapter.finite_values(critic_info[i], actor_info[i])
            if not np.all(np.isfinite(np.asarray(values, dtype=np.float64))):
                self.status[i] = "diverged"
                self.writers[i].write_status("diverged", self.step + 1,
                                             f"non-finite loss or Q value at step {self.step + 1}")
                print(f"[{self.name} {a.task}] seed {self.seeds[i]} diverged at step "
                      f"{self.step + 1}; other seeds continue", file=sys.stderr)

    def log_metrics(self):
        """A metrics.csv row per running seed: the means since the last row."""
        rows = self.metrics.flush(self.step)
        for i, (w, row) in enumerate(zip(self.writers, rows)):
            if self.status[i] == "running":
                w.add_metrics(row)
        self.tensorboard.add(self.step, rows, self.progress.steps_per_second())

    def evaluate(self):
        a = self.args
        S, E = len(self.seeds), a.eval_episodes
        t0 = time.perf_counter()
        with self.timer.phase("eval"):
            policies = {i: self.adapter.evaluator(self.learners[i])
                        for i in np.flatnonzero(self.alive())}

            def act(obs):
                out = np.zeros((S * E, self.act_dim), np.float32)
                for i, policy in policies.items():  # all of a seed's episodes: one fixed shape
                    out[i * E:(i + 1) * E] = policy(obs[i * E:(i + 1) * E])
                return out

            returns = eval_returns(self.eval_envs, self.seeds, E, self.evals_done,
                                   self.derive_seed, act)
        self.evals_done += 1
        for i in range(S):
            if self.status[i] == "running":
                self.writers[i].add_eval(self.step, returns[i], time.perf_counter() - t0)
        self.write_timing()
        self.progress.evaluation(self.step, returns, self.alive())
        self.tensorboard.add_eval(self.step, returns)

    def finish(self):
        from qsm.probes import probe_states
        P, N = self.args.probe_states, self.args.probe_samples
        states = probe_states(self.args.task, P)
        obs = np.repeat(states, N, axis=0)
        self.write_timing()
        for i, (s, w) in enumerate(zip(self.seeds, self.writers)):
            key = self.jax.random.PRNGKey(self.derive_seed(s, "probe") & 0x7FFFFFFF)
            policy, behaviour = self.adapter.probe(self.learners[i], key, obs)
            shape = (P, N, self.act_dim)
            w.write_probe_actions(states, policy.reshape(shape), behaviour.reshape(shape))
            if self.status[i] == "running":
                self.save_policy(i, w.dir / "policy.pt")
                self.status[i] = "complete"
                w.write_status("complete", self.step)
        self.tensorboard.close()
        if self.ckpt_path.exists() and not self.args.keep_checkpoint:
            self.ckpt_path.unlink()

    def save_policy(self, index, path):
        """The official learner's policy parameters (a flax state dict of numpy arrays) with the
        run's identity: qsm.policy loads them back into a learner made by create()."""
        from flax import serialization

        from qsm.policy import save_policy
        config = self.config_for(self.seeds[index])
        params = serialization.to_state_dict(self.adapter.policy_params(self.learners[index]))
        params = self.jax.tree_util.tree_map(np.asarray, params)
        save_policy(path, {k: config[k] for k in ("algo", "task", "seed", "run_id",
                                                   "code_version", "hparams", "budget")},
                    {"official_params": params}, {"official": config["official"]},
                    {"obs_dim": self.obs_dim, "act_dim": self.act_dim})

    # -- checkpoints ----------------------------------------------------------------------------
    def signature(self) -> dict:
        """What must match for a checkpoint to be resumed: the run's whole identity."""
        config = self.config_for(self.seeds[0])
        return {"algo": self.name, "task": self.args.task, "seeds": self.seeds,
                **{k: config[k] for k in ("hparams", "budget", "run_id", "code_version")},
                "commit": config["official"]["commit"]}

    def save_checkpoint(self):
        jax = self.jax
        state = {
            "signature": self.signature(), "step": self.step, "evals_done": self.evals_done,
            # a learner is a pytree: its leaves (parameters, optimiser moments, step counts, key)
            # are the state; the tree's structure is rebuilt by create() on resume
            "learners": [[np.asarray(x) for x in jax.tree_util.tree_leaves(learner)]
                         for learner in self.learners],
            "replay": self.replay.state_dict(), "envs": self.envs.get_states(), "obs": self.obs,
            "random_actions": self.random_actions.state_dict(), "timer": self.timer.state_dict(),
            "eval_rows": [w.eval_rows for w in self.writers], "status": self.status,
            "metrics": self.metrics.state_dict(),
            "metrics_rows": [w.metrics_rows for w in self.writers],
            "elapsed": self.progress.elapsed(),
        }
        self.rundir.atomic_write_bytes(self.ckpt_path, pickle.dumps(state, protocol=5))

    def try_resume(self) -> bool:
        if not self.ckpt_path.is_file():
            return False
        try:
            state = pickle.loads(self.ckpt_path.read_bytes())
        except Exception as e:
            print(f"warning: ignoring unreadable checkpoint {self.ckpt_path} ({type(e).__name__})",
                  file=sys.stderr)
            return False
        if state.get("signature") != self.signature():
            raise UsageError(f"checkpoint {self.ckpt_path} belongs to another configuration or "
                             f"code version; delete it or use another --checkpoint-dir")
        jax = self.jax
        for i, leaves in enumerate(state["learners"]):
            fresh = jax.tree_util.tree_leaves(self.learners[i])
            if [np.shape(x) for x in fresh] != [x.shape for x in leaves]:
                raise UsageError(f"checkpoint {self.ckpt_path}: the learners' parameters do not "
                                 f"fit this learner; delete it or use another --checkpoint-dir")
            treedef = jax.tree_util.tree_structure(self.learners[i])
            self.learners[i] = jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])
        self.step, self.evals_done = state["step"], state["evals_done"]
        self.replay.load_state_dict(state["replay"])
        self.envs.set_states(state["envs"])
        self.obs = state["obs"]
        self.random_actions.load_state_dict(state["random_actions"])
        self.timer.load_state_dict(state["timer"])
        for w, rows, metric_rows in zip(self.writers, state["eval_rows"], state["metrics_rows"]):
            w.eval_rows, w.metrics_rows = rows, metric_rows
        self.metrics.load_state_dict(state["metrics"])
        self.elapsed_before = state["elapsed"]
        self.status = state["status"]
        print(f"[{self.name} {self.args.task}] resumed from {self.ckpt_path} at step {self.step}",
              file=sys.stderr)
        return True


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_budget_args(args)
        if args.checkpoint_every < 0:
            raise UsageError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
        if args.threads:
            flags = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={args.threads}"
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
        from qsm import official
        from qsm.envs import TaskError, validate_task
        from qsm.registry import AgentError, parse_overrides
        try:
            validate_task(args.task)
            overrides = parse_overrides(args.overrides)
            checkout = official.find_checkout(args.official_path)
            learner_cls = official.load_learner(args.algo, checkout)
        except (TaskError, AgentError, official.OfficialUnavailable) as e:
            raise UsageError(str(e)) from None
        hparams = resolve_hparams(args.algo, learner_cls, overrides)
        import torch
        torch.set_num_threads(args.threads or 1)  # torch only draws replay indices and warm-up actions
        runner = OfficialRun(args, learner_cls, checkout, hparams)
        try:
            return runner.run()
        finally:
            runner.close()
    except (UsageError, MissingExtra) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
