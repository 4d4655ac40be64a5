"""How strongly does the action move Q? The scale the toy bandits are matched to.

QSM regresses its denoiser onto -M_q dQ/da and SAC trades Q against alpha * entropy, so what
each algorithm "sees" of a task is the action-dependent part of Q, not its level. This script
measures that part two ways and prints one table row per (task, measure):

  rollout   Q of a uniform-random continuation, from the environment alone (no learning): at
            fixed states, every candidate first action is followed by the same random action
            sequence (common random numbers, dm_control is deterministic), and the discounted
            return is compared across candidates. Reports the range over candidates (max - min)
            and the RMS of the finite-difference gradient dQ/da_i (step 0.05).
  critic    the twin critics (mean of the two) of an agent trained with the pipeline's trainer
            for a short budget: at the probe states and at states from its replay buffer, Q at
            uniform actions. Reports the Q level, the action range and the RMS gradient.

    python benchmarks/action_sensitivity.py rollout --tasks cheetah_run walker_run
    python benchmarks/action_sensitivity.py critic --algo qsm --task cheetah_run --steps 3000 \\
        --start-steps 1000 [--set M_q=50]

One thread (how the pipeline runs a job). Numbers depend on the budget: a critic after a few
thousand steps has not converged, which is why both measures are printed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GAMMA = 0.99
FD_STEP = 0.05


def _discounted(rewards, gamma=GAMMA):
    return float(np.sum(np.asarray(rewards) * gamma ** np.arange(len(rewards))))


def rollout_sensitivity(task, states=8, candidates=16, horizon=300, prefix_stride=60, seed=0):
    """Per start state: discounted return of a random continuation after each candidate first
    action. Start states are reached by replaying a fixed random prefix (deterministic physics),
    so no simulator state is copied."""
    from qsm.harness.envs import make_env
    rng = np.random.default_rng(seed)
    env = make_env(task, seed)
    act_dim = env.act_dim
    prefix_all = rng.uniform(-1, 1, (states * prefix_stride, act_dim))
    ranges, grads, levels = [], [], []
    for s in range(states):
        prefix = prefix_all[: s * prefix_stride]
        tail = rng.uniform(-1, 1, (horizon - 1, act_dim))
        base = rng.uniform(-1, 1, act_dim)
        firsts = [rng.uniform(-1, 1, act_dim) for _ in range(candidates)]
        for i in range(act_dim):  # central differences around `base`
            for sign in (-1, 1):
                a = base.copy()
                a[i] = np.clip(a[i] + sign * FD_STEP, -1, 1)
                firsts.append(a)
        values = []
        for first in firsts:
            env = make_env(task, seed)
            env.reset()
            for a in prefix:
                env.step(a)
            rewards = [env.step(first)[1]]
            for a in tail:
                rewards.append(env.step(a)[1])
            values.append(_discounted(rewards))
        values = np.asarray(values)
        cand = values[:candidates]
        ranges.append(cand.max() - cand.min())
        levels.append(cand.mean())
        fd = values[candidates:].reshape(act_dim, 2)
        widths = np.array([min(base[i] + FD_STEP, 1) - max(base[i] - FD_STEP, -1)
                           for i in range(act_dim)])
        grads.append((fd[:, 1] - fd[:, 0]) / widths)
    grads = np.concatenate(grads)
    return {"level": float(np.mean(levels)), "range": float(np.mean(ranges)),
            "range_sd": float(np.std(ranges)), "grad_rms": float(np.sqrt(np.mean(grads ** 2))),
            "states": states, "horizon": horizon}


def critic_sensitivity(algo, task, steps, start_steps, overrides=(), seeds=(0,), actions=64,
                       replay_states=64):
    """Train with the training loop (one block), then probe the trained twin critics."""
    import torch

    from qsm.harness.probes import probe_states
    from qsm.train import build_parser, make_trainer

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        argv = ["--algo", algo, "--task", task, "--seeds", *map(str, seeds), "--steps", str(steps),
                "--start-steps", str(start_steps), "--eval-every", str(steps),
                "--eval-episodes", "1", "--probe-samples", "10", "--out", out, "--device", "cpu"]
        for kv in overrides:
            argv += ["--set", kv]
        args = build_parser().parse_args(argv)
        t0 = time.perf_counter()
        trainer = make_trainer(args, torch.device("cpu"))
        try:
            trainer.run()
        finally:
            trainer.close()
        wall = time.perf_counter() - t0
        agent = trainer.learner.agent
        S = len(trainer.seeds)
        probe = torch.as_tensor(probe_states(task, 8)).unsqueeze(0).expand(S, -1, -1)
        replay = trainer.replay.sample(replay_states)["obs"]
        obs = torch.cat([probe, replay], dim=1)                                  # (S, P, o)
        P = obs.shape[1]
        gen = torch.Generator().manual_seed(0)
        a = (torch.rand(S, P, actions, trainer.act_dim, generator=gen) * 2 - 1)
        o = obs.unsqueeze(2).expand(S, P, actions, obs.shape[-1]).reshape(S, P * actions, -1)
        a = a.reshape(S, P * actions, -1).requires_grad_(True)
        q = agent.critic(o, a).mean(dim=1)                                      # (S, P*A)
        (g,) = torch.autograd.grad(q.sum(), a)
        q = q.detach().reshape(S, P, actions)
        rng_ = (q.max(dim=2).values - q.min(dim=2).values)
        last_eval = [w.eval_rows[-1]["return"] for w in trainer.writers]
    return {"level": float(q.mean()), "range": float(rng_.mean()), "range_sd": float(rng_.std()),
            "grad_rms": float(g.pow(2).mean().sqrt()), "states": P, "wall_s": wall,
            "final_return": float(np.mean(last_eval))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rollout")
    r.add_argument("--tasks", nargs="+", required=True)
    r.add_argument("--states", type=int, default=8)
    r.add_argument("--candidates", type=int, default=16)
    r.add_argument("--horizon", type=int, default=300)
    c = sub.add_parser("critic")
    c.add_argument("--algo", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--steps", type=int, required=True)
    c.add_argument("--start-steps", type=int, required=True)
    c.add_argument("--seeds", type=int, nargs="+", default=[0])
    c.add_argument("--set", dest="overrides", action="append", default=[])
    a = ap.parse_args(argv)
    print(f"{'task':16s} {'measure':22s} {'Q level':>8s} {'Q range over a':>15s} "
          f"{'RMS dQ/da_i':>12s} {'50*RMS':>7s}  notes")
    if a.cmd == "rollout":
        for task in a.tasks:
            m = rollout_sensitivity(task, a.states, a.candidates, a.horizon)
            print(f"{task:16s} {'random continuation':22s} {m['level']:8.2f} "
                  f"{m['range']:9.3f}+-{m['range_sd']:<5.2f} {m['grad_rms']:12.3f} "
                  f"{50 * m['grad_rms']:7.1f}  {m['states']} states, horizon {m['horizon']}",
                  flush=True)
    else:
        m = critic_sensitivity(a.algo, a.task, a.steps, a.start_steps, a.overrides, a.seeds)
        label = f"{a.algo} critic @{a.steps}"
        print(f"{a.task:16s} {label:22s} {m['level']:8.2f} {m['range']:9.3f}+-{m['range_sd']:<5.2f}"
              f" {m['grad_rms']:12.3f} {50 * m['grad_rms']:7.1f}  final return "
              f"{m['final_return']:.3g}, {a.start_steps} random steps, {' '.join(a.overrides)}, "
              f"{m['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
