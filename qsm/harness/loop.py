"""The training loop every learner of the suite runs under: our torch agents (qsm/train.py) and
the authors' JAX learners (workflow/scripts/official_baseline.py) differ only in the `Learner`
they hand to `TrainingLoop`, so that e.g. `qsm` and `qsm_official` differ only in the learner.

Per block of seeds (one learner per seed, sharing nothing):
  * environments: qsm.harness.vecenv.EnvBlock, training streams derive_seed(seed, "train_env");
  * the first --start-steps actions: uniform, from the "random_actions" streams, then the
    learner's exploration actions; one update per step from --start-steps on, each seed on its own
    replay sample (qsm.harness.replay.SeedBatchedReplay; mask = 0 only at true terminals);
  * evaluation at step 0, every --eval-every steps and at the last step (qsm.harness.evaluation:
    is_eval_step);
  * metrics.csv rows every --log-every steps (qsm.harness.metrics; the columns the learner declares,
    recorded in config.json as `metrics`), a divergence check every
    `learner.divergence_check_every` steps and at every evaluation: a seed with a non-finite loss
    or Q value is marked `diverged` and the others go on;
  * at the end, probe samples at qsm.harness.probes.probe_states and each seed's policy.pt;
  * the run-directory contract (qsm.contract.rundir), per-phase wall-clock (qsm.runtime.timing), and
    on an exception `failed` in every running seed's status.json;
  * with --checkpoint-every N, the whole state (the learner's, replay, environments, every random
    stream, timers, the rows written so far) saved atomically every N steps; the same command
    resumes from it, bit for bit on CPU. A checkpoint of another identity is refused.
"""
from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
import platform
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from qsm import ROOT
from qsm.contract import rundir
from qsm.declare.budget import Budget, BudgetError
from qsm.harness.evaluation import eval_returns, is_eval_step
from qsm.harness.metrics import MetricsLog, file_columns, is_log_step
from qsm.harness.probes import probe_states
from qsm.harness.replay import SeedBatchedReplay
from qsm.harness.seeding import SeedStreams, derive_seed
from qsm.harness.vecenv import EnvBlock
from qsm.policy import save_policy
from qsm.runtime import numerics
from qsm.runtime.progress import Progress, TensorBoardLog
from qsm.runtime.timing import PhaseTimer


class UsageError(ValueError):
    """Bad command-line input: reported in one line, exit status 2."""


def check_run_args(a) -> None:
    """The checks of the run options both training programs share (train_cli.add_run_options)."""
    try:
        Budget.of(a)
    except BudgetError as e:
        raise UsageError(str(e)) from None
    if any(s < 0 for s in a.seeds) or len(set(a.seeds)) != len(a.seeds):
        raise UsageError(f"--seeds must be distinct non-negative integers, got {a.seeds}")
    if a.threads is not None and a.threads <= 0:
        raise UsageError(f"--threads must be positive, got {a.threads}")
    if a.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0, got {a.checkpoint_every}")
    if a.env_workers < 0:
        raise UsageError(f"--env-workers must be >= 0, got {a.env_workers}")
    if a.stop_after is not None and not 0 < a.stop_after < a.steps:
        raise UsageError(f"--stop-after must lie between 0 and --steps {a.steps} (exclusive), "
                         f"got {a.stop_after}")


class Learner(ABC):
    """What the loop asks of a block's learners (qsm/train.py's AgentLearner and the official
    learners' OfficialLearner implement every abstract method). Arrays in and out are numpy,
    seed-major: observations (S, obs_dim) or (S, E, obs_dim), actions likewise with act_dim."""

    divergence_check_every = 1000  # steps between checks (a check reads the metrics to the host)
    device = None                  # where MetricsLog's sums live on resume (None: numpy)
    # The metrics.csv columns `update` returns beyond the common ones (qsm.harness.metrics.COMMON),
    # in the order they are written; returning any other key is an error (qsm.harness.metrics).
    metrics: tuple = ()

    @abstractmethod
    def build(self, seeds: list, obs_dim: int, act_dim: int) -> None:
        """Create the block's learners, once the environments' shapes are known."""

    @abstractmethod
    def explore(self, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """Behaviour actions (S, act_dim) after the warm-up."""

    @abstractmethod
    def update(self, batch: dict, timer, alive: np.ndarray) -> dict:
        """One update per seed from its replay sample (torch tensors (S, B, ...)), timed in the
        phases critic_update and actor_update; returns metrics columns, (S,) each: common ones
        (qsm.harness.metrics.COMMON) and those of `metrics`."""

    @abstractmethod
    def evaluator(self, alive: np.ndarray):
        """For one evaluation: a function of observations (S, E, obs_dim) -> actions."""

    @abstractmethod
    def probe(self, states: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n draws of the policy and of the behaviour at each probe state: two arrays
        (S, P, n, act_dim)."""

    @abstractmethod
    def policy_file(self, index: int) -> tuple[dict, dict]:
        """(modules, streams) of seed `index`'s policy.pt, taken before the probe draws."""

    @abstractmethod
    def state_dict(self):
        """Everything of the learners a checkpoint must hold to resume bit for bit."""

    @abstractmethod
    def load_state_dict(self, state) -> None:
        """Restore what state_dict returned."""

    @abstractmethod
    def provenance(self) -> dict:
        """device, device_name and packages for config.json's provenance."""

    @abstractmethod
    def device_label(self) -> str:
        """The device column of timing.csv."""

    def poison(self, index: int) -> None:
        """Make seed `index`'s learner diverge (a test hook: --debug-poison STEP:SEED)."""
        raise UsageError(f"--debug-poison is not supported by {type(self).__name__}")

    def facts(self) -> dict:
        """Extra entries of config.json (and of the checkpoint signature)."""
        return {}

    def close(self) -> None:
        pass


class TrainingLoop:
    def __init__(self, args, learner: Learner, identity: dict, command: str):
        """identity: algo, task, hparams, budget, code_version, run_id (what must match to skip
        a complete run or to resume); command: the command line recorded in provenance."""
        self.args, self.learner, self.identity, self.command = args, learner, identity, command
        self.name = identity["algo"]
        # Seeds that already hold a complete run of this identity are not trained again.
        self.complete_seeds = [s for s in args.seeds if self.holds_complete_run(s)]
        self.seeds = [s for s in args.seeds if s not in self.complete_seeds]
        if not self.seeds:
            return
        # Training envs, one per seed; evaluation envs, seed-major (seed i, episode e) -> i*E + e.
        self.envs = EnvBlock(args.task, [derive_seed(s, "train_env") for s in self.seeds],
                             args.env_workers)
        try:
            self.eval_envs = EnvBlock(args.task, [derive_seed(s, "eval_env") for s in self.seeds
                                                  for _ in range(args.eval_episodes)],
                                      args.env_workers)
            self._build()
        except BaseException:  # no worker process outlives a failed start
            self.close()
            raise

    def _build(self):
        args, envs, S = self.args, self.envs, len(self.seeds)
        self.obs_dim, self.act_dim, self.max_return = envs.obs_dim, envs.act_dim, envs.max_return
        self.optima = envs.optima
        self.learner.build(self.seeds, self.obs_dim, self.act_dim)
        self.replay = SeedBatchedReplay(self.seeds, self.obs_dim, self.act_dim,
                                        min(args.replay_capacity, args.steps),
                                        self.learner.device or "cpu")
        self.random_actions = SeedStreams(self.seeds, "random_actions")
        self.timer = PhaseTimer(self.learner.device or "cpu")
        columns = file_columns(self.learner.metrics)
        self.writers = [rundir.SeedRunWriter(self.seed_dir(s), columns) for s in self.seeds]
        self.status = ["running"] * S
        self.reasons = [""] * S
        self.nonfinite = np.zeros(S, dtype=bool)
        self.metrics = MetricsLog(S, self.learner.metrics, self.name)
        self.progress = Progress(f"{self.name} {args.task}", args.steps)
        self.tensorboard = TensorBoardLog.open(args.tensorboard, self.name, args.task,
                                               self.identity["run_id"] or "no-run-id", self.seeds)
        self.step = 0
        self.evals_done = 0
        self.elapsed_before = 0.0
        self.obs = None
        ckpt_dir = (Path(args.checkpoint_dir) if args.checkpoint_dir
                    else Path(args.out) / ".checkpoints")
        self.ckpt_path = ckpt_dir / f"seeds-{'-'.join(map(str, self.seeds))}.pt"

    def close(self):
        """Stop the environment workers (if any)."""
        for block in (getattr(self, "envs", None), getattr(self, "eval_envs", None)):
            if block is not None:
                block.close()
        self.learner.close()

    # -- identity of a run: what must match to resume or to skip --------------------------------
    def seed_dir(self, seed) -> Path:
        return Path(self.args.out) / f"seed{seed}"

    def signature(self, seed) -> dict:
        return {**self.identity, "seed": int(seed)}

    def config_for(self, seed, provenance: dict) -> dict:
        env = {"obs_dim": self.obs_dim, "act_dim": self.act_dim, "max_return": self.max_return}
        if self.optima is not None:
            env["optima"] = np.asarray(self.optima).tolist()
        return {**_jsonable(self.signature(seed)), **self.learner.facts(), "env": env,
                "block": {"seeds": self.seeds, "size": len(self.seeds)},
                "metrics": list(self.learner.metrics), "provenance": provenance}

    def provenance(self) -> dict:
        return {"git_commit": git_output(ROOT, "rev-parse", "HEAD") or None,
                "git_dirty": bool(git_output(ROOT, "status", "--porcelain",
                                             "--untracked-files=no")),
                "python": platform.python_version(), "hostname": socket.gethostname(),
                "torch_threads": torch.get_num_threads(), "command": self.command,
                "cpu_model": numerics.cpu_model(), "cpu_numerics": numerics.fingerprint(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                **self.learner.provenance()}

    def holds_complete_run(self, seed) -> bool:
        """True when the seed's directory holds a complete run of this identity; raises
        UsageError when it holds a complete run of another one (unless --overwrite)."""
        d = self.seed_dir(seed)
        if not (d / "status.json").is_file() or not (d / "config.json").is_file():
            return False
        try:
            run = rundir.load_run(d)
        except rundir.ContractError:
            return False  # a broken earlier attempt: retrain
        if run.status["status"] != "complete":
            return False
        if all(run.config.get(k) == v for k, v in _jsonable(self.identity).items()):
            return True
        if self.args.overwrite:
            return False
        raise UsageError(f"{d} holds a complete run of another configuration or code version "
                         f"(run {run.config.get('run_id')}, this is {self.identity['run_id']}); "
                         f"pass --overwrite to replace it or choose another --out")

    # -- main loop ------------------------------------------------------------------------------
    def run(self) -> int:
        a = self.args
        if self.complete_seeds:
            print(f"[{self.name} {a.task}] seeds {self.complete_seeds} already hold complete runs "
                  f"of {self.identity['run_id']} in {a.out}; "
                  + (f"training seeds {self.seeds}" if self.seeds else "nothing to do"),
                  file=sys.stderr)
        if not self.seeds:
            return 0
        resumed = self.try_resume()
        if not resumed:
            provenance = self.provenance()  # one block, one start: the same for every seed
            for s, w in zip(self.seeds, self.writers):
                w.write_config(self.config_for(s, provenance))
                w.write_status("running", 0)
        try:
            if not resumed:
                self.obs = self.envs.reset()
                if is_eval_step(self.step, a.steps, a.eval_every):  # step 0: always
                    self.evaluate()
            self.train()
        except BaseException as e:
            for i, w in enumerate(self.writers):
                if self.status[i] == "running":
                    w.write_status("failed", self.step, f"{type(e).__name__}: {e}")
            raise
        return 0

    def train(self):
        a = self.args
        self.progress.start(self.step, self.elapsed_before)
        poison = _parse_poison(a.debug_poison, self.seeds)
        log_every = Budget.of(a).log_every
        check_every = self.learner.divergence_check_every
        last = a.stop_after or a.steps
        while self.step < last:
            self.train_step()
            self.step += 1
            self.progress.update(self.step)
            if poison and self.step == poison[0]:
                self.learner.poison(poison[1])
            if is_log_step(self.step, a.steps, a.start_steps, log_every):
                self.log_metrics()
            if self.step % check_every == 0 or self.step % a.eval_every == 0:
                self.check_divergence()
            if is_eval_step(self.step, a.steps, a.eval_every):
                self.evaluate()
            if a.checkpoint_every and self.step % a.checkpoint_every == 0 and self.step < a.steps:
                self.save_checkpoint(self.progress.elapsed())
        self.progress.close()
        if self.step < a.steps:  # --stop-after: the rows so far are written; nothing is finished
            print(f"[{self.name} {a.task}] stopped after {self.step} of {a.steps} steps "
                  f"(--stop-after); the run is left unfinished", file=sys.stderr)
            return
        self.finish()

    def train_step(self):
        a, t = self.args, self.timer
        alive = self.alive_mask()
        with t.phase("act"):
            if self.step < a.start_steps:
                actions = (self.random_actions.rand(self.act_dim) * 2 - 1).numpy()
            else:
                actions = self.learner.explore(self.obs, alive)
            actions[~alive] = 0.0  # diverged seeds only keep their environment in step
        with t.phase("env_step"):
            next_obs, rewards, terminated, truncated = self.envs.step(actions)
        with t.phase("replay"):
            self.replay.add(self.obs, actions, rewards.astype(np.float32), next_obs,
                            terminated.astype(np.float32))
        done = np.flatnonzero(terminated | truncated)
        if done.size:
            next_obs[done] = self.envs.reset(done)
        self.obs = next_obs
        if self.step >= a.start_steps:
            with t.phase("replay"):
                batch = self.replay.sample(a.batch_size)
            # summed where they are computed; read once per logging interval (log_metrics)
            self.metrics.add(self.learner.update(batch, t, alive))

    def alive_mask(self) -> np.ndarray:
        return np.array([s == "running" for s in self.status])

    def log_metrics(self):
        """A metrics.csv row per running seed: the means since the last row."""
        pending = self.metrics.nonfinite()
        if pending is not None:
            self.nonfinite |= pending
        rows = self.metrics.flush(self.step)
        for i, (w, row) in enumerate(zip(self.writers, rows)):
            if self.status[i] == "running":
                w.add_metrics(row)
        self.tensorboard.add(self.step, rows, self.progress.steps_per_second())

    def check_divergence(self):
        pending = self.metrics.nonfinite()
        bad = self.nonfinite | (pending if pending is not None else False)
        for i, s in enumerate(self.seeds):
            if bad[i] and self.status[i] == "running":
                self.status[i] = "diverged"
                self.reasons[i] = f"non-finite loss or Q value detected by step {self.step}"
                self.writers[i].write_status("diverged", self.step, self.reasons[i])
                print(f"[{self.name} {self.args.task}] seed {s} diverged at step <= {self.step}; "
                      f"other seeds continue", file=sys.stderr)

    def evaluate(self):
        S, E = len(self.seeds), self.args.eval_episodes
        t0 = time.perf_counter()
        alive = self.alive_mask()
        alive_rows = np.repeat(alive, E)
        with self.timer.phase("eval"):
            policy = self.learner.evaluator(alive)

            def act(obs):
                out = policy(obs.reshape(S, E, -1)).reshape(S * E, -1)
                out[~alive_rows] = 0.0
                return out

            returns = eval_returns(self.eval_envs, self.seeds, E, self.evals_done, derive_seed, act)
        self.evals_done += 1
        for i in range(S):
            if self.status[i] == "running":
                self.writers[i].add_eval(self.step, returns[i], time.perf_counter() - t0)
        self.write_timing()
        self.progress.evaluation(self.step, returns, alive)
        self.tensorboard.add_eval(self.step, returns)

    def write_timing(self):
        device = self.learner.device_label()
        rows = [{"phase": phase, "calls": calls, "total_s": total, "env_steps": self.step,
                 "block_size": len(self.seeds), "device": device}
                for phase, (calls, total) in sorted(self.timer.summary().items())]
        for name in rundir.TIMING_PHASES:  # phases not reached yet (e.g. before learning starts)
            if name not in self.timer.calls:
                rows.append({"phase": name, "calls": 0, "total_s": 0.0, "env_steps": self.step,
                             "block_size": len(self.seeds), "device": device})
        for w in self.writers:
            w.write_timing(rows)

    def finish(self):
        a = self.args
        self.check_divergence()
        states = probe_states(a.task, a.probe_states)
        # the policy files keep each seed's acting stream as it was before the probe draws, so
        # that `python -m qsm.policy probe` redraws the probe samples exactly
        policy_files = [self.learner.policy_file(i) for i in range(len(self.seeds))]
        policy, behaviour = self.learner.probe(states, a.probe_samples)
        self.write_timing()
        for i, w in enumerate(self.writers):
            w.write_probe_actions(states, policy[i], behaviour[i])
            if self.status[i] == "running":
                modules, streams = policy_files[i]
                save_policy(w.dir / "policy.pt", self.signature(self.seeds[i]), modules, streams,
                            {"obs_dim": self.obs_dim, "act_dim": self.act_dim})
                self.status[i] = "complete"
                w.write_status("complete", self.step)
        self.tensorboard.close()
        if self.ckpt_path.exists() and not a.keep_checkpoint:
            self.ckpt_path.unlink()

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint_signature(self) -> list:
        """What must match for a checkpoint to be resumed: each seed's whole identity (with the
        code version: a checkpoint of other code is never resumed into a hybrid run)."""
        return [_jsonable({**self.signature(s), **self.learner.facts()}) for s in self.seeds]

    def save_checkpoint(self, elapsed):
        state = {
            "signature": self.checkpoint_signature(),
            "step": self.step, "evals_done": self.evals_done, "elapsed": elapsed,
            "learner": self.learner.state_dict(), "replay": self.replay.state_dict(),
            "envs": self.envs.get_states(), "obs": self.obs,
            "random_actions": self.random_actions.state_dict(), "timer": self.timer.state_dict(),
            "eval_rows": [w.eval_rows for w in self.writers], "status": self.status,
            "reasons": self.reasons, "nonfinite": self.nonfinite,
            "metrics": self.metrics.state_dict(),
            "metrics_rows": [w.metrics_rows for w in self.writers],
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        rundir.atomic_write_bytes(self.ckpt_path, buf.getvalue())

    def try_resume(self) -> bool:
        if not self.ckpt_path.is_file():
            return False
        try:
            # on CPU first: generator states must stay CPU tensors even for CUDA generators;
            # load_state_dict moves parameters, optimiser state and buffers to the device
            state = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
        except Exception as e:
            print(f"warning: ignoring unreadable checkpoint {self.ckpt_path} ({type(e).__name__})",
                  file=sys.stderr)
            return False
        if state.get("signature") != self.checkpoint_signature():
            raise UsageError(f"checkpoint {self.ckpt_path} belongs to another configuration or "
                             f"code version; delete it or use another --checkpoint-dir")
        self.learner.load_state_dict(state["learner"])
        self.step, self.evals_done = state["step"], state["evals_done"]
        self.elapsed_before = state["elapsed"]
        self.replay.load_state_dict(state["replay"])
        self.envs.set_states(state["envs"])
        self.obs = state["obs"]
        self.random_actions.load_state_dict(state["random_actions"])
        self.timer.load_state_dict(state["timer"])
        for w, rows, metric_rows in zip(self.writers, state["eval_rows"], state["metrics_rows"]):
            w.eval_rows, w.metrics_rows = rows, metric_rows
        self.status, self.reasons = state["status"], state["reasons"]
        self.nonfinite = np.asarray(state["nonfinite"])
        self.metrics.load_state_dict(state["metrics"], self.learner.device)
        print(f"[{self.name} {self.args.task}] resumed from {self.ckpt_path} at step {self.step}",
              file=sys.stderr)
        return True


def _parse_poison(spec, seeds):
    if not spec:
        return None
    step, seed = (int(x) for x in spec.split(":"))
    return step, seeds.index(seed)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=rundir._json_default))


def git_output(root, *args) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
