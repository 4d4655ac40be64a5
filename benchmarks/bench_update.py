"""Per-update cost of QSM, SAC and TD3 at the paper's sizes, against the FLOP floor.

    python benchmarks/bench_update.py                     # CPU, blocks of 1, 4, 8, 16 seeds
    python benchmarks/bench_update.py --device cuda --blocks 1 10 20
    python benchmarks/bench_update.py --quick             # seconds: checks the table's shape

Prints one table. For every algorithm and seed-block size S:
  ms/update       wall-clock of one update of the whole block (critic + actor; TD3's actor every 2nd),
                  fastest of 5 rounds (shared machines: neighbours only ever slow a round down)
  ms/seed         ms/update divided by S: what one seed costs inside the block
  per-seed speed-up  ms/update of a one-seed block / ms/seed here: how much more throughput
                  per seed the block gives (the GPU target is >= 8x at 10 seeds); "-" unless 1
                  comes first in --blocks
  GFLOP/update    matmul FLOPs of one update per seed (torch.utils.flop_counter), times S for the block
  % of matmul     achieved FLOP rate / this machine's measured matmul rate (same threads, same
                  device): how close the update is to the floor set by its matrix products
  env steps/s     the whole training loop (act + environment step + replay + update) on
                  cheetah_run after the warm-up: environment steps per second summed over the
                  block's seeds (S x loop iterations per second).
All numbers come from this run on this machine; nothing is assumed.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("MUJOCO_GL", "disable")

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.flop_counter import flop_registry  # noqa: E402

from qsm.declare.registry import get_agent, resolve_config  # noqa: E402
from qsm.runtime.allocator import keep_freed_memory  # noqa: E402
from qsm.runtime.numerics import deterministic_cuda  # noqa: E402
from qsm.runtime.timing import PhaseTimer  # noqa: E402

OBS_DIM, ACT_DIM, BATCH = 17, 6, 256  # cheetah_run


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_agent(algo, S, device, overrides=None):
    cls = get_agent(algo)
    cfg = resolve_config(cls, "cheetah_run", overrides or {})
    return cls(OBS_DIM, ACT_DIM, list(range(S)), cfg, device)


def random_batch(S, device, g):
    return {"obs": torch.randn(S, BATCH, OBS_DIM, generator=g).to(device),
            "action": (torch.rand(S, BATCH, ACT_DIM, generator=g) * 2 - 1).to(device),
            "reward": torch.rand(S, BATCH, generator=g).to(device),
            "next_obs": torch.randn(S, BATCH, OBS_DIM, generator=g).to(device),
            "mask": torch.ones(S, BATCH).to(device)}


def time_updates(agent, S, device, min_time, max_iters, rounds=5):
    """Seconds per update: the fastest of `rounds` timed rounds of about min_time / rounds each.
    These machines are shared; a neighbour's burst slows a round, never speeds it up, so the
    fastest round is the best estimate of what the code costs."""
    g = torch.Generator().manual_seed(0)
    batches = [random_batch(S, device, g) for _ in range(4)]
    timer = PhaseTimer(device, enabled=False)
    for i in range(4):  # warm-up (allocator, lazy init, TD3's delayed actor both ways)
        agent.update(batches[i % 4], timer)
    sync(device)
    best = float("inf")
    for _ in range(rounds):
        n, t0 = 0, time.perf_counter()
        while n < max_iters and (n < 2 or time.perf_counter() - t0 < min_time / rounds):
            for _ in range(2):  # pairs, so TD3's every-second actor update counts at its rate
                agent.update(batches[n % 4], timer)
                n += 1
        sync(device)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


class FlopCount(TorchDispatchMode):
    """Counts FLOPs with torch's own per-operator formulas (torch.utils.flop_counter's registry:
    mm, addmm, bmm, baddbmm, convolutions ...). FlopCounterMode itself cannot be used: its module
    hooks reject torch.autograd.grad on leaf inputs, which QSM's dQ/da needs."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def flops_per_update(algo, device):
    """FLOPs of one update of a one-seed agent (average of two updates, so TD3's delayed actor
    counts at its real rate)."""
    agent = make_agent(algo, 1, device)
    g = torch.Generator().manual_seed(0)
    b = random_batch(1, device, g)
    with FlopCount() as counter:
        agent.update(b, PhaseTimer(device, enabled=False))
        agent.update(b, PhaseTimer(device, enabled=False))
    return counter.total / 2


def matmul_rate(device, seconds=1.0):
    """Measured FLOP/s of the update's typical product (256 x 512 @ 512 x 512), best of a few."""
    a = torch.randn(BATCH, 512, device=device)
    w = torch.randn(512, 512, device=device)
    best = 0.0
    for _ in range(3):
        for _ in range(3):
            a @ w
        sync(device)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            a @ w
            n += 1
        sync(device)
        best = max(best, 2 * BATCH * 512 * 512 * n / (time.perf_counter() - t0))
    return best


def loop_steps_per_second(algo, S, device, steps, env_workers=0):
    """Seed-steps per second of the real training loop (acting, env, replay, update) on
    cheetah_run, after warm-up, evaluation excluded."""
    import tempfile
    from qsm.train import build_parser, make_trainer
    with tempfile.TemporaryDirectory() as out:
        args = build_parser().parse_args(
            ["--algo", algo, "--task", "cheetah_run", "--seeds", *map(str, range(S)),
             "--steps", str(10 * steps), "--start-steps", str(BATCH), "--out", out,
             "--eval-episodes", "1", "--batch-size", str(BATCH), "--env-workers", str(env_workers)])
        trainer = make_trainer(args, device)
        try:
            trainer.obs = trainer.envs.reset()
            for _ in range(BATCH):  # random-action warm-up fills the replay buffers, untimed
                trainer.train_step()
                trainer.step += 1
            sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                trainer.train_step()
                trainer.step += 1
            sync(device)
            rate = S * steps / (time.perf_counter() - t0)
        finally:
            trainer.close()
        return rate


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--algos", nargs="+", default=["qsm", "sac", "td3"])
    ap.add_argument("--blocks", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds of timing per cell")
    ap.add_argument("--loop-steps", type=int, default=100, help="loop iterations timed per cell")
    ap.add_argument("--env-workers", type=int, default=0,
                    help="environment worker processes in the training-loop column")
    ap.add_argument("--nondeterministic", action="store_true",
                    help="CUDA: torch's default kernels instead of the deterministic ones the "
                         "trainer uses (qsm.runtime.numerics.deterministic_cuda), to measure "
                         "their cost")
    ap.add_argument("--quick", action="store_true", help="tiny timings, to check the output")
    a = ap.parse_args(argv)
    if a.quick:
        a.min_time, a.loop_steps, max_iters = 0.0, 5, 4
    else:
        max_iters = 10_000
    torch.set_num_threads(a.threads)
    keep_freed_memory()  # as the trainer does
    device = torch.device(a.device)
    deterministic = device.type == "cuda" and not a.nondeterministic
    if deterministic:
        deterministic_cuda()  # as the trainer does
    rate = matmul_rate(device, 0.2 if a.quick else 1.5)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"# device: {device} ({name}), torch {torch.__version__}, threads {a.threads}, "
          f"env workers {a.env_workers}; "
          f"{'deterministic' if deterministic else 'default'} kernels; "
          f"matmul 256x512@512x512: {rate / 1e9:.1f} GFLOP/s")
    print(f"# batch {BATCH}, obs {OBS_DIM}, act {ACT_DIM} (cheetah_run); paper sizes "
          f"(QSM 512x512 mish denoiser T=5, 512x512 critics; SAC/TD3 256x256)")
    header = ["algo", "seeds/block", "ms/update", "ms/seed", "per-seed speed-up", "GFLOP/update",
              "% of matmul", "env steps/s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for algo in a.algos:
        flops = flops_per_update(algo, device)
        single = None  # ms per update of a one-seed block, when measured
        for S in a.blocks:
            agent = make_agent(algo, S, device)
            t = time_updates(agent, S, device, a.min_time, max_iters)
            single = t if S == 1 else single
            speedup = f"{single / (t / S):.2f}x" if single else "-"
            frac = S * flops / t / rate
            sps = loop_steps_per_second(algo, S, device, a.loop_steps, a.env_workers)
            print(f"| {algo} | {S} | {t * 1e3:.2f} | {t * 1e3 / S:.2f} | {speedup} | "
                  f"{S * flops / 1e9:.3f} | {100 * frac:.0f}% | {sps:.0f} |", flush=True)


if __name__ == "__main__":
    main()
