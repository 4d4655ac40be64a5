"""Train one of the suite's torch agents on one task for a block of seeds at once.

    python -m qsm.train --algo qsm --task cheetah_run --seeds 0 1 2 --steps 100000 --out DIR

Writes the run-directory contract (docs/run_directory.md) to DIR/seed<k>/ for every seed.
With --checkpoint-every N the whole training state (networks, optimisers, replay buffers,
environments, every random stream) is saved atomically every N steps; running the same command
again resumes from it, and on CPU the result is bitwise identical to an uninterrupted run.
The loop itself (environments, replay, evaluation, checkpoints, the run directory) is
qsm/harness/loop.py, shared with the official learners' program; this file adapts our agents to it.
"""
from __future__ import annotations

import dataclasses
import platform
import shlex
import sys

import torch

from qsm.declare.budget import Budget
from qsm.declare.catalog import get_entry
from qsm.declare.hparams import identity_values, specs_of
from qsm.harness.envs import TaskError, validate_task
from qsm.runtime.allocator import keep_freed_memory
from qsm.contract.identity import (TRAINER_PACKAGES, canonical, package_versions, run_identity,
                                   training_code_version)
from qsm.declare.registry import AgentError, get_agent, parse_overrides, resolve_config
from qsm.declare.train_cli import build_parser
from qsm.harness.loop import Learner, TrainingLoop, UsageError, check_run_args
from qsm.harness.metrics import UndeclaredMetric
from qsm.runtime.numerics import deterministic_cuda
from qsm.runtime.progress import MissingExtra

# recorded in config.json's provenance (the identity holds those that compute numbers)
PROVENANCE_PACKAGES = ("torch", "numpy", "dm_control", "mujoco", "gymnasium")


class AgentLearner(Learner):
    """A seed-batched torch agent (qsm.learners.agent_base.Agent) as the loop's learner."""

    def __init__(self, agent_cls, cfg, device: torch.device):
        self.agent_cls, self.cfg, self.device = agent_cls, cfg, device
        self.metrics = tuple(get_entry(agent_cls.name).metrics)  # declared with the agent

    def build(self, seeds, obs_dim, act_dim):
        self.agent = self.agent_cls(obs_dim, act_dim, seeds, self.cfg, self.device)

    def explore(self, obs, alive):
        obs = torch.as_tensor(obs, device=self.device).unsqueeze(1)
        return self.agent.act(obs, "explore")[:, 0].cpu().numpy()

    def update(self, batch, timer, alive):
        return self.agent.update(batch, timer)

    def evaluator(self, alive):
        @torch.no_grad()
        def act(obs):
            return self.agent.act(torch.as_tensor(obs, device=self.device), "eval").cpu().numpy()
        return act

    def probe(self, states, n):
        S = len(self.agent.seeds)
        st = torch.as_tensor(states, device=self.device).unsqueeze(0).expand(S, -1, -1)
        policy, behaviour = self.agent.probe_samples(st.contiguous(), n)
        return policy.cpu().numpy(), behaviour.cpu().numpy()

    def policy_file(self, index):
        return self.agent.policy_state(index), {"act": self.agent.act_noise.state_dict()[index]}

    def state_dict(self):
        return self.agent.full_state()

    def load_state_dict(self, state):
        self.agent.load_full_state(state)

    def poison(self, index):
        with torch.no_grad():
            rows = self.agent.critic.members_of(index)
            for p in self.agent.critic.parameters():
                p[rows].fill_(float("nan"))

    def provenance(self):
        d = self.device
        return {"packages": package_versions(PROVENANCE_PACKAGES), "device": str(d),
                "device_name": (torch.cuda.get_device_name(d) if d.type == "cuda"
                                else platform.processor() or platform.machine())}

    def device_label(self):
        return str(self.device)


def resolve_device(name: str) -> torch.device:
    """--device as a torch device; on CUDA, torch's deterministic kernels are switched on."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}")
    if dev.type == "cuda":
        deterministic_cuda()
    return dev


def make_trainer(args, device: torch.device) -> TrainingLoop:
    """The loop over one of our agents, its identity checked against --run-id."""
    agent_cls = get_agent(args.algo)
    cfg = resolve_config(agent_cls, args.task, parse_overrides(args.overrides))
    identity = run_identity(args.algo, args.task,
                            identity_values(specs_of(type(cfg)), dataclasses.asdict(cfg)),
                            Budget.of(args).as_dict(), training_code_version(agent_cls.__module__),
                            package_versions(TRAINER_PACKAGES))
    if args.run_id and args.run_id != identity["run_id"]:
        raise UsageError(f"--run-id {args.run_id} was asked for, but this code and "
                         f"configuration make run {identity['run_id']} (the pipeline "
                         f"and the trainer disagree on the identity: {canonical(identity)})")
    command = shlex.join([sys.executable, "-m", "qsm.train", *sys.argv[1:]])
    return TrainingLoop(args, AgentLearner(agent_cls, cfg, device), identity, command)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_run_args(args)
        validate_task(args.task)
        get_agent(args.algo)
        resolve_config(get_agent(args.algo), args.task, parse_overrides(args.overrides))
        device = resolve_device(args.device)
        if args.threads:
            torch.set_num_threads(args.threads)
        keep_freed_memory()
        trainer = make_trainer(args, device)
        try:
            return trainer.run()
        finally:
            trainer.close()
    except (UsageError, TaskError, AgentError, MissingExtra, UndeclaredMetric) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
