"""Train one algorithm on one task for a block of seeds at once.

    python -m qsm.train --algo qsm --task cheetah_run --seeds 0 1 2 --steps 100000 --out DIR

Writes the run-directory contract (docs/run_directory.md) to DIR/seed<k>/ for every seed.
With --checkpoint-every N the whole training state (networks, optimisers, replay buffers,
environments, every random stream) is saved atomically every N steps; running the same command
again resumes from it, and on CPU the result is bitwise identical to an uninterrupted run.
"""
from __future__ import annotations

import dataclasses
import io
import platform
import shlex
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import rundir
from .allocator import keep_freed_memory
from .envs import TaskError, validate_task
from .evaluation import eval_returns
from .train_cli import build_parser
from .identity import BUDGET_KEYS, canonical, run_identity, training_code_version
from .metrics import MetricsLog, default_log_every, is_log_step
from .policy import save_policy
from .progress import MissingExtra, Progress, TensorBoardLog
from .probes import probe_states
from .registry import AgentError, get_agent, parse_overrides, resolve_config
from .replay import SeedBatchedReplay
from .seeding import SeedStreams, derive_seed
from .timing import PhaseTimer
from .vecenv import EnvBlock

DIVERGENCE_CHECK_EVERY = 1000  # steps between (synchronising) checks for NaN/inf losses



class UsageError(ValueError):
    """Bad command-line input: reported in one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def check_args(a) -> None:
    check_budget_args(a)
    if a.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be >= 0, got {a.checkpoint_every}")
    if a.env_workers < 0:
        raise UsageError(f"--env-workers must be >= 0, got {a.env_workers}")
    if a.stop_after is not None and not 0 < a.stop_after < a.steps:
        raise UsageError(f"--stop-after must lie between 0 and --steps {a.steps} (exclusive), "
                         f"got {a.stop_after}")


def check_budget_args(a) -> None:
    """The checks every training program of the suite shares (this trainer and
    workflow/scripts/official_baseline.py): budget, seeds, threads."""
    if a.steps <= 0:
        raise UsageError(f"--steps must be positive, got {a.steps}")
    if a.start_steps < 0:
        raise UsageError(f"--start-steps must be >= 0, got {a.start_steps}")
    for name in ("eval_every", "eval_episodes", "batch_size", "replay_capacity", "probe_states",
                 "probe_samples"):
        if getattr(a, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(a, name)}")
    if any(s < 0 for s in a.seeds) or len(set(a.seeds)) != len(a.seeds):
        raise UsageError(f"--seeds must be distinct non-negative integers, got {a.seeds}")
    if a.threads is not None and a.threads <= 0:
        raise UsageError(f"--threads must be positive, got {a.threads}")
    if a.log_every is not None and a.log_every <= 0:
        raise UsageError(f"--log-every must be positive, got {a.log_every}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}")
    return dev


def provenance(device) -> dict:
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    packages = {}
    for name in ("torch", "numpy", "dm_control", "mujoco", "gymnasium"):
        try:
            from importlib.metadata import version
            packages[name] = version(name)
        except Exception:
            packages[name] = None
    return {
        "git_commit": git("rev-parse", "HEAD") or None,
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "packages": packages,
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "command": shlex.join([sys.executable, "-m", "qsm.train", *sys.argv[1:]]),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------------

class Trainer:
    def __init__(self, args, device: torch.device):
        self.args = args
        self.device = device
        agent_cls = get_agent(args.algo)
        self.cfg = resolve_config(agent_cls, args.task, parse_overrides(args.overrides))
        self.identity = run_identity(args.algo, args.task, dataclasses.asdict(self.cfg),
                                     self.budget(), training_code_version(agent_cls.__module__))
        if args.run_id and args.run_id != self.identity["run_id"]:
            raise UsageError(f"--run-id {args.run_id} was asked for, but this code and "
                             f"configuration make run {self.identity['run_id']} (the pipeline "
                             f"and the trainer disagree on the identity: "
                             f"{canonical(self.identity)})")
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
            self._build(agent_cls, device)
        except BaseException:  # no worker process outlives a failed start
            self.close()
            raise

    def _build(self, agent_cls, device):
        args, envs, S = self.args, self.envs, len(self.seeds)
        self.obs_dim, self.act_dim, self.max_return = envs.obs_dim, envs.act_dim, envs.max_return
        self.optima = envs.optima

        self.agent = agent_cls(self.obs_dim, self.act_dim, self.seeds, self.cfg, device)
        self.replay = SeedBatchedReplay(self.seeds, self.obs_dim, self.act_dim,
                                        min(args.replay_capacity, args.steps), device)
        self.random_actions = SeedStreams(self.seeds, "random_actions")
        self.timer = PhaseTimer(device)
        self.writers = [rundir.SeedRunWriter(self.seed_dir(s)) for s in self.seeds]
        self.status = ["running"] * S
        self.reasons = [""] * S
        self.nonfinite = np.zeros(S, dtype=bool)
        self.metrics = MetricsLog(S)
        self.progress = Progress(f"{args.algo} {args.task}", args.steps)
        self.tensorboard = TensorBoardLog.open(args.tensorboard, args.algo, args.task,
                                               self.identity["run_id"], self.seeds)
        self.step = 0
        self.evals_done = 0
        self.elapsed_before = 0.0
        self.obs = None
        ckpt_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else Path(args.out) / ".checkpoints"
        self.ckpt_path = ckpt_dir / f"seeds-{'-'.join(map(str, self.seeds))}.pt"

    def close(self):
        """Stop the environment workers (if any)."""
        for block in (getattr(self, "envs", None), getattr(self, "eval_envs", None)):
            if block is not None:
                block.close()

    # -- identity of a run: what must match to resume or to skip --------------------------------
    def seed_dir(self, seed) -> Path:
        return Path(self.args.out) / f"seed{seed}"

    def signature(self, seed) -> dict:
        return {**self.identity, "seed": int(seed)}

    def budget(self) -> dict:
        return budget_of(self.args)

    def config_for(self, seed) -> dict:
        env = {"obs_dim": self.obs_dim, "act_dim": self.act_dim, "max_return": self.max_return}
        if self.optima is not None:
            env["optima"] = np.asarray(self.optima).tolist()
        return {**_jsonable(self.signature(seed)), "env": env,
                "block": {"seeds": self.seeds, "size": len(self.seeds)},
                "provenance": provenance(self.device)}

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
        if run.config.get("run_id") == self.identity["run_id"]:
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
            print(f"[{a.algo} {a.task}] seeds {self.complete_seeds} already hold complete runs of "
                  f"{self.identity['run_id']} in {a.out}; "
                  + (f"training seeds {self.seeds}" if self.seeds else "nothing to do"),
                  file=sys.stderr)
        if not self.seeds:
            return 0
        resumed = self.try_resume()
        if not resumed:
            for s, w in zip(self.seeds, self.writers):
                w.write_config(self.config_for(s))
                w.write_status("running", 0)
            self.obs = self.envs.reset()
            self.evaluate()
        self.progress.start(self.step, self.elapsed_before)
        poison = _parse_poison(a.debug_poison, self.seeds)
        log_every = self.budget()["log_every"]
        last = a.stop_after or a.steps
        while self.step < last:
            self.train_step()
            self.step += 1
            self.progress.update(self.step)
            if poison and self.step == poison[0]:
                self.poison_seed(poison[1])
            if is_log_step(self.step, a.steps, a.start_steps, log_every):
                self.log_metrics()
            if self.step % DIVERGENCE_CHECK_EVERY == 0 or self.step % a.eval_every == 0:
                self.check_divergence()
            if self.step % a.eval_every == 0 or self.step == a.steps:
                self.evaluate()
            if a.checkpoint_every and self.step % a.checkpoint_every == 0 and self.step < a.steps:
                self.save_checkpoint(self.progress.elapsed())
        self.progress.close()
        if self.step < a.steps:  # --stop-after: the rows so far are written; nothing is finished
            print(f"[{a.algo} {a.task}] stopped after {self.step} of {a.steps} steps (--stop-after); "
                  f"the run is left unfinished", file=sys.stderr)
            return 0
        self.finish()
        return 0

    def train_step(self):
        a, t = self.args, self.timer
        alive = self.alive_mask()
        with t.phase("act"):
            if self.step < a.start_steps:
                actions = (self.random_actions.rand(self.act_dim) * 2 - 1).numpy()
            else:
                obs = torch.as_tensor(self.obs, device=self.device).unsqueeze(1)
                actions = self.agent.act(obs, "explore")[:, 0].cpu().numpy()
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
            self.metrics.add(self.agent.update(batch, t))

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
                print(f"[{self.args.algo} {self.args.task}] seed {s} diverged at step <= {self.step}; "
                      f"other seeds continue", file=sys.stderr)

    def poison_seed(self, index):
        with torch.no_grad():
            rows = self.agent.critic.members_of(index)
            for p in self.agent.critic.parameters():
                p[rows].fill_(float("nan"))

    @torch.no_grad()
    def evaluate(self):
        a = self.args
        S, E = len(self.seeds), a.eval_episodes
        t0 = time.perf_counter()
        alive = self.alive_mask()
        alive_rows = np.repeat(alive, E)

        def act(obs):
            out = self.agent.act(torch.as_tensor(obs.reshape(S, E, -1), device=self.device),
                                 "eval").cpu().numpy().reshape(S * E, -1)
            out[~alive_rows] = 0.0
            return out

        with self.timer.phase("eval"):
            returns = eval_returns(self.eval_envs, self.seeds, E, self.evals_done, derive_seed, act)
        self.evals_done += 1
        for i in range(S):
            if self.status[i] == "running":
                self.writers[i].add_eval(self.step, returns[i], time.perf_counter() - t0)
        self.write_timing()
        self.progress.evaluation(self.step, returns, alive)
        self.tensorboard.add_eval(self.step, returns)

    def write_timing(self):
        rows = [{"phase": phase, "calls": calls, "total_s": total, "env_steps": self.step,
                 "block_size": len(self.seeds), "device": str(self.device)}
                for phase, (calls, total) in sorted(self.timer.summary().items())]
        for name in rundir.TIMING_PHASES:  # phases not reached yet (e.g. before learning starts)
            if name not in self.timer.calls:
                rows.append({"phase": name, "calls": 0, "total_s": 0.0, "env_steps": self.step,
                             "block_size": len(self.seeds), "device": str(self.device)})
        for w in self.writers:
            w.write_timing(rows)

    def finish(self):
        a = self.args
        self.check_divergence()
        states = probe_states(a.task, a.probe_states)
        st = torch.as_tensor(states, device=self.device).unsqueeze(0).expand(len(self.seeds), -1, -1)
        # the policy files keep each seed's acting stream as it was before the probe draws, so
        # that `python -m qsm.policy probe` redraws the probe samples exactly
        probe_streams = self.agent.act_noise.state_dict()
        policy, behaviour = self.agent.probe_samples(st.contiguous(), a.probe_samples)
        policy, behaviour = policy.cpu().numpy(), behaviour.cpu().numpy()
        self.write_timing()
        for i, w in enumerate(self.writers):
            w.write_probe_actions(states, policy[i], behaviour[i])
            if self.status[i] == "running":
                save_policy(w.dir / "policy.pt", self.signature(self.seeds[i]),
                            self.agent.policy_state(i), {"act": probe_streams[i]},
                            {"obs_dim": self.obs_dim, "act_dim": self.act_dim})
                self.status[i] = "complete"
                w.write_status("complete", self.step)
        self.tensorboard.close()
        if self.ckpt_path.exists() and not a.keep_checkpoint:
            self.ckpt_path.unlink()

    # -- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self, elapsed):
        state = {
            "signature": [_jsonable(self.signature(s)) for s in self.seeds],
            "step": self.step, "evals_done": self.evals_done, "elapsed": elapsed,
            "agent": self.agent.full_state(), "replay": self.replay.state_dict(),
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
        if state.get("signature") != [_jsonable(self.signature(s)) for s in self.seeds]:
            # The identity holds the code version: a checkpoint of other code is never resumed
            # into a hybrid run.
            raise UsageError(f"checkpoint {self.ckpt_path} belongs to another configuration or "
                             f"code version; delete it or use another --checkpoint-dir")
        self.step, self.evals_done, self.elapsed_before = state["step"], state["evals_done"], state["elapsed"]
        self.agent.load_full_state(state["agent"])
        self.replay.load_state_dict(state["replay"])
        self.envs.set_states(state["envs"])
        self.obs = state["obs"]
        self.random_actions.load_state_dict(state["random_actions"])
        self.timer.load_state_dict(state["timer"])
        for w, rows, metric_rows in zip(self.writers, state["eval_rows"], state["metrics_rows"]):
            w.eval_rows, w.metrics_rows = rows, metric_rows
        self.status, self.reasons = state["status"], state["reasons"]
        self.nonfinite = np.asarray(state["nonfinite"])
        self.metrics.load_state_dict(state["metrics"], self.device)
        print(f"[{self.args.algo} {self.args.task}] resumed from {self.ckpt_path} at step {self.step}",
              file=sys.stderr)
        return True


def budget_of(args) -> dict:
    """The run's budget from a training program's arguments (this trainer's and the official
    learners' program's): part of the run identity."""
    b = {key: getattr(args, key) for key in BUDGET_KEYS if key != "log_every"}
    b["log_every"] = args.log_every or default_log_every(args.steps, args.start_steps)
    return b


def _parse_poison(spec, seeds):
    if not spec:
        return None
    step, seed = (int(x) for x in spec.split(":"))
    return step, seeds.index(seed)


def _jsonable(obj):
    import json
    return json.loads(json.dumps(obj, default=rundir._json_default))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args(args)
        validate_task(args.task)
        get_agent(args.algo)
        resolve_config(get_agent(args.algo), args.task, parse_overrides(args.overrides))
        device = resolve_device(args.device)
        if args.threads:
            torch.set_num_threads(args.threads)
        keep_freed_memory()
        trainer = Trainer(args, device)
        try:
            return trainer.run()
        finally:
            trainer.close()
    except (UsageError, TaskError, AgentError, MissingExtra) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
