"""Per-update cost of this suite's QSM against the official JAX learner, one seed, paper sizes.

    python benchmarks/bench_official.py                 # 1 thread, 5 rounds of 20 updates each
    python benchmarks/bench_official.py --threads 2 --rounds 7

Both run the same update (T = 5, 512x512 denoiser and critics, batch 256, cheetah_run sizes) on
random batches, in the same process, with the same number of CPU threads. The machine's speed
drifts over minutes, so the three variants are interleaved round by round and the table reports,
besides each one's fastest and median round, the ratio official / ours within every round:
  ours              qsm.agent.QSM.update (critic, then score update)
  official          ScoreMatchingLearner.update, one jitted call (its own update)
  official split    update_q and update_actor jitted separately (what workflow/scripts/official_baseline.py times)
Needs the optional extra (pip install -e ".[official]") and the official checkout.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OBS_DIM, ACT_DIM, BATCH = 17, 6, 256


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=20, help="updates per round and variant")
    a = ap.parse_args(argv)
    os.environ["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={'true' if a.threads > 1 else 'false'} "
                               f"intra_op_parallelism_threads={a.threads}")
    import jax
    import numpy as np
    import torch

    from qsm.harness import official
    from qsm.runtime.allocator import keep_freed_memory
    from qsm.declare.registry import get_agent, resolve_config
    from qsm.runtime.timing import PhaseTimer

    torch.set_num_threads(a.threads)
    keep_freed_memory()
    try:
        learner_cls = official.load_learner("qsm")
    except official.OfficialUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    settings = dict(actor_lr=3e-4, critic_lr=3e-4, discount=0.99, tau=0.005, T=5, M_q=50,
                    critic_hidden_dims=(512, 512), actor_hidden_dims=(512, 512))
    learner = learner_cls.create(0, *official.gym_spaces(OBS_DIM, ACT_DIM), **settings)
    cls = get_agent("qsm")
    agent = cls(OBS_DIM, ACT_DIM, [0], resolve_config(cls, "cheetah_run", {}))
    rng = np.random.default_rng(0)
    batch_np = {"observations": rng.normal(size=(BATCH, OBS_DIM)).astype(np.float32),
                "actions": rng.uniform(-1, 1, (BATCH, ACT_DIM)).astype(np.float32),
                "rewards": rng.uniform(size=BATCH).astype(np.float32),
                "masks": np.ones(BATCH, np.float32),
                "next_observations": rng.normal(size=(BATCH, OBS_DIM)).astype(np.float32)}
    batch_t = {k: torch.from_numpy(v)[None] for k, v in (
        ("obs", batch_np["observations"]), ("action", batch_np["actions"]),
        ("reward", batch_np["rewards"]), ("mask", batch_np["masks"]),
        ("next_obs", batch_np["next_observations"]))}
    timer = PhaseTimer(enabled=False)
    update_q, update_actor = jax.jit(learner_cls.update_q), jax.jit(learner_cls.update_actor)
    state = {"fused": learner, "split": learner}

    def ours():
        agent.update(batch_t, timer)

    def fused():
        state["fused"], _ = state["fused"].update(batch_np)
        jax.block_until_ready(state["fused"].score_model.params)

    def split():
        s, _ = update_q(state["split"], batch_np)
        s, _ = update_actor(s, batch_np)
        state["split"] = jax.block_until_ready(s)

    variants = {"ours": ours, "official": fused, "official split": split}
    for fn in variants.values():  # compile and warm up
        for _ in range(3):
            fn()
    times = {name: [] for name in variants}
    for _ in range(a.rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            for _ in range(a.updates):
                fn()
            times[name].append((time.perf_counter() - t0) / a.updates * 1000)
    print(f"QSM update, one seed, paper sizes, batch {BATCH}, {a.threads} thread(s), "
          f"{a.rounds} interleaved rounds of {a.updates} updates")
    print("| variant | fastest ms/update | median ms/update | official/ours per round (median) |")
    print("|---|---|---|---|")
    for name, ts in times.items():
        ratio = statistics.median(t / o for t, o in zip(ts, times["ours"]))
        print(f"| {name} | {min(ts):.2f} | {statistics.median(ts):.2f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
