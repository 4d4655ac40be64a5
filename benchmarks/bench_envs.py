"""Environment stepping for a seed block: in-process against worker processes.

    python benchmarks/bench_envs.py                                  # cheetah_run, quadruped_walk
    python benchmarks/bench_envs.py --tasks humanoid_walk --envs 10 100 --workers 0 4 8

Prints one table: milliseconds per step of the whole block (every environment stepped once,
random actions) and environment steps per second, fastest of 3 rounds. Use it to choose
`resources.train.env_workers`: workers pay off once a block's physics costs more than the
round trip to them (docs/performance.md), i.e. for large blocks (evaluation steps seeds x
episodes environments at once) or heavy tasks.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("MUJOCO_GL", "disable")

import numpy as np  # noqa: E402

from qsm.harness.vecenv import EnvBlock  # noqa: E402


def ms_per_block_step(task, n, workers, steps):
    envs = EnvBlock(task, list(range(n)), workers)
    try:
        envs.reset()
        actions = np.random.default_rng(0).uniform(-1, 1, (steps, n, envs.act_dim))
        for k in range(min(10, steps)):
            envs.step(actions[k])
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for k in range(steps):
                envs.step(actions[k])
            best = min(best, (time.perf_counter() - t0) / steps)
        return best * 1e3
    finally:
        envs.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["cheetah_run", "quadruped_walk"])
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--steps", type=int, default=200, help="block steps per round")
    a = ap.parse_args(argv)
    print(f"# {os.cpu_count()} CPU cores")
    print("| task | envs | workers | ms/block step | env steps/s |")
    print("|---|---|---|---|---|")
    for task in a.tasks:
        for n in a.envs:
            for w in a.workers:
                if w > n:
                    continue
                ms = ms_per_block_step(task, n, w, a.steps)
                print(f"| {task} | {n} | {w} | {ms:.3f} | {n / ms * 1e3:.0f} |", flush=True)


if __name__ == "__main__":
    main()
