"""Train the authors' official JAX learners under this suite's protocol: the external baselines
`qsm_official`, `sac_official` and `td3_official`.

    python workflow/scripts/official_baseline.py --algo qsm --task cheetah_run --seeds 0 1 \\
        --steps 100000 --out results/runs/qsm_official/cheetah_run [--official-path PATH] [--set M_q=120]

The learners are the official ones (ScoreMatchingLearner, SACLearner, TD3Learner), imported
unmodified from a checkout of Alescontrela/score_matching_rl (qsm/harness/official.py:
--official-path, else QSM_OFFICIAL_PATH, else ../shared/official/score_matching_rl); they need
the optional extra (pip install -e ".[official]"). Hyperparameters: the official configs
(examples/states/configs/score_matching_config.py, the "paper settings": M_q = 50, 512x512
networks, T = 5; sac_config.py and td3_config.py on td_config.py: 256x256 networks), then the
defaults of the learner's create() for the rest; --set overrides any create() argument.

The loop around the learner is the suite's own (qsm/harness/loop.py: environments, warm-up, replay,
evaluation, divergence checks, timing, probes, the run directory, checkpoints and resume), the one
our torch agents run under, so that e.g. `qsm` and `qsm_official` differ only in the learner.
What this program adds is how each official learner acts, updates and is probed:
  * after the warm-up: the learner's sample_actions, one observation at a time;
  * evaluation: SAC and TD3, the learner's eval_actions (deterministic). QSM: eval_actions runs
    the official ddpm_sampler on one observation; here the same sampler runs on all of a seed's
    episodes at once, from the learner's current key, which is not fed back (as the official
    evaluate() discards its copy of the learner);
  * probe samples keyed by derive_seed(seed, "probe"): QSM policy = the official ddpm_sampler,
    behaviour = + N(0, 0.1^2) clipped (sample_actions); SAC policy = behaviour = sample_actions
    (a tanh-Gaussian draw); TD3 policy = eval_actions, behaviour = sample_actions (+ N(0, 0.1^2),
    clipped);
  * the official update() calls the critic and actor updates inside one jit; here the halves are
    jitted separately so that each phase can be timed (the same computation). QSM: update_q, then
    update_actor. SAC: update_critic, then update_actor and update_temperature (the actor phase).
    TD3: update_critic, then update_actor when the critic's step count is a multiple of
    actor_delay, which is the condition official update() evaluates;
  * the divergence check runs after every update (the values are on the host anyway);
  * config.json records `run_id` and `code_version` verbatim (the pipeline computes them) and the
    official checkout, learner and commit; a checkpoint holds each learner's pytree leaves
    (parameters, optimiser states, step counts, key), the tree rebuilt by create() on resume.
Seeds share nothing: each has its own learner (created with the run seed, as the official
scripts do), environments, replay buffer and streams.
"""
from __future__ import annotations

import argparse
import inspect
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from qsm.contract.identity import OFFICIAL_PACKAGES, package_versions
from qsm.declare.budget import Budget
from qsm.declare.cli import HelpFormatter
from qsm.declare.train_cli import add_run_options
from qsm.harness.loop import Learner, TrainingLoop, UsageError, check_run_args, git_output
from qsm.harness.seeding import derive_seed
from qsm.runtime.progress import MissingExtra

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
                        ".official/score_matching_rl; qsm/harness/official.py)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an argument of the learner's create(), e.g. --set M_q=120 "
                        "(default: the official configs)")
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


# recorded in config.json's provenance (the identity holds those that compute numbers)
PROVENANCE_PACKAGES = ("jax", "jaxlib", "flax", "optax", "tfp-nightly", "numpy", "dm_control",
                       "mujoco", "torch")


# ---------------------------------------------------------------------------------------------
# The learners: how each official learner acts, updates (in timed halves) and is probed
# ---------------------------------------------------------------------------------------------

class OfficialAlgorithm:
    """Adapter over one official learner class; every method takes and returns learner values."""

    # the metrics.csv columns metrics() gives beyond the common ones (qsm.harness.metrics.COMMON)
    METRICS: tuple = ()

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
        """The metrics.csv columns this learner's update info gives (qsm.harness.metrics)."""
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


class QSMAlgorithm(OfficialAlgorithm):
    METRICS = ("dq_da_rms", "score_target_rms", "eps_pred_rms")

    def __init__(self, jax, learner_cls, checkout):
        super().__init__(jax, learner_cls, checkout)
        from qsm.harness import official
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


class SACAlgorithm(OfficialAlgorithm):
    METRICS = ("alpha", "entropy")

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


class TD3Algorithm(OfficialAlgorithm):
    METRICS = ("actor_q",)

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


ALGORITHMS = {"qsm": QSMAlgorithm, "sac": SACAlgorithm, "td3": TD3Algorithm}


# ---------------------------------------------------------------------------------------------
# A block of seeds' official learners as the loop's learner
# ---------------------------------------------------------------------------------------------

class OfficialLearner(Learner):
    """One official learner per seed (created with the run seed, as the official scripts do)."""

    divergence_check_every = 1

    def __init__(self, algo, learner_cls, checkout: Path, hparams: dict):
        import jax
        self.jax, self.algo_name, self.cls = jax, algo, learner_cls
        self.checkout, self.hparams = checkout, hparams
        self._facts = None
        self.algo = ALGORITHMS[algo](jax, learner_cls, checkout)
        self.metrics = self.algo.METRICS

    def build(self, seeds, obs_dim, act_dim):
        from qsm.harness import official
        obs_space, act_space = official.gym_spaces(obs_dim, act_dim)
        self.seeds, self.act_dim = list(seeds), act_dim
        self.learners = [self.cls.create(s, obs_space, act_space, **self.hparams) for s in seeds]

    def explore(self, obs, alive):
        actions = np.zeros((len(self.seeds), self.act_dim), np.float32)
        for i in np.flatnonzero(alive):
            actions[i], self.learners[i] = self.algo.explore(self.learners[i], obs[i])
        return actions

    def update(self, batch, timer, alive):
        live = np.flatnonzero(alive)
        sample = {k: v.numpy() for k, v in batch.items()}
        batches = {i: {"observations": sample["obs"][i], "actions": sample["action"][i],
                       "rewards": sample["reward"][i], "masks": sample["mask"][i],
                       "next_observations": sample["next_obs"][i]} for i in live}
        critic_info, actor_info = {}, {}
        with timer.phase("critic_update"):
            for i in live:
                self.learners[i], critic_info[i] = self.algo.update_critic(self.learners[i],
                                                                           batches[i])
            self.jax.block_until_ready([self.learners[i] for i in live])
        with timer.phase("actor_update"):
            for i in live:
                self.learners[i], actor_info[i] = self.algo.update_actor(self.learners[i],
                                                                         batches[i])
            self.jax.block_until_ready([self.learners[i] for i in live])
        columns = {}
        for i in live:
            for key, value in self.algo.metrics(self.learners[i], critic_info[i],
                                                actor_info[i]).items():
                columns.setdefault(key, np.zeros(len(self.seeds)))[i] = value
        return columns

    def evaluator(self, alive):
        policies = {i: self.algo.evaluator(self.learners[i]) for i in np.flatnonzero(alive)}

        def act(obs):
            out = np.zeros((*obs.shape[:2], self.act_dim), np.float32)
            for i, policy in policies.items():  # all of a seed's episodes: one fixed shape
                out[i] = policy(obs[i])
            return out
        return act

    def probe(self, states, n):
        P = len(states)
        obs = np.repeat(states, n, axis=0)
        policy, behaviour = [], []
        for s, learner in zip(self.seeds, self.learners):
            key = self.jax.random.PRNGKey(derive_seed(s, "probe") & 0x7FFFFFFF)
            p, b = self.algo.probe(learner, key, obs)
            policy.append(p.reshape(P, n, self.act_dim))
            behaviour.append(b.reshape(P, n, self.act_dim))
        return np.stack(policy), np.stack(behaviour)

    def policy_file(self, index):
        """The policy parameters (a flax state dict of numpy arrays): qsm.policy loads them back
        into a learner made by create()."""
        from flax import serialization
        params = serialization.to_state_dict(self.algo.policy_params(self.learners[index]))
        params = self.jax.tree_util.tree_map(np.asarray, params)
        return {"official_params": params}, self.facts()

    def state_dict(self):
        # a learner is a pytree: its leaves (parameters, optimiser moments, step counts, key) are
        # the state; the tree's structure is rebuilt by create() on resume
        return [[np.asarray(x) for x in self.jax.tree_util.tree_leaves(learner)]
                for learner in self.learners]

    def load_state_dict(self, state):
        tree = self.jax.tree_util
        for i, leaves in enumerate(state):
            fresh = tree.tree_leaves(self.learners[i])
            if [np.shape(x) for x in fresh] != [x.shape for x in leaves]:
                raise UsageError("checkpoint: the learners' parameters do not fit this learner; "
                                 "delete it or use another --checkpoint-dir")
            self.learners[i] = tree.tree_unflatten(tree.tree_structure(self.learners[i]),
                                                   [self.jax.numpy.asarray(x) for x in leaves])

    def facts(self):
        if self._facts is None:  # asked per seed and per checkpoint: one git call is enough
            from qsm.harness import official
            module, cls = official.LEARNERS[self.algo_name]
            self._facts = {"official": {"path": str(self.checkout), "learner": f"{module}.{cls}",
                                        "commit": git_output(self.checkout, "rev-parse", "HEAD")
                                        or official.OFFICIAL_COMMIT}}
        return self._facts

    def provenance(self):
        device = self.jax.devices()[0]
        return {"packages": package_versions(PROVENANCE_PACKAGES), "device": device.platform,
                "device_name": str(device.device_kind)}

    def device_label(self):
        return "cpu"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_run_args(args)
        if args.threads:
            flags = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={args.threads}"
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
        from qsm.harness import official
        from qsm.harness.envs import TaskError, validate_task
        from qsm.declare.registry import AgentError, parse_overrides
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
        identity = {"algo": f"{args.algo}_official", "task": args.task,
                    "hparams": {k: list(v) if isinstance(v, tuple) else v
                                for k, v in hparams.items()},
                    "budget": Budget.of(args).as_dict(), "code_version": args.code_version,
                    "versions": package_versions(OFFICIAL_PACKAGES), "run_id": args.run_id}
        runner = TrainingLoop(args, OfficialLearner(args.algo, learner_cls, checkout, hparams),
                              identity, shlex.join([sys.executable, *sys.argv]))
        try:
            return runner.run()
        finally:
            runner.close()
    except (UsageError, MissingExtra) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
