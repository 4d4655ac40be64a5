"""Cost of the training diagnostics (metrics.csv) against the update they describe.

    python benchmarks/bench_metrics.py                 # CPU, paper sizes, cheetah_run's dims
    python benchmarks/bench_metrics.py --quick         # seconds: checks the table's shape

For QSM, SAC and TD3 (one seed, batch 256) it times, in one run, fastest of 5 rounds:
  update ms       one agent.update, which computes its diagnostics (the reductions below)
  reductions ms   those reductions alone, on tensors of the update's shapes: critic loss, Q mean
                  and std, target mean (every agent); QSM also RMS of dQ/da, of M_q dQ/da and of
                  eps_theta, and the share of sampler actions on a bound
  log ms          qsm.harness.metrics.MetricsLog.add of the update's values, plus one flush (read to
                  the host, one row per seed) every log_every = 450 updates (200 rows at 100k steps)
  cost %          (reductions + log) / (update - reductions): what logging adds to an update
All numbers come from this run on this machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from qsm.declare.catalog import get_entry  # noqa: E402
from qsm.declare.registry import get_agent, resolve_config  # noqa: E402
from qsm.harness.metrics import MetricsLog  # noqa: E402
from qsm.learners.agent_base import bound_share, critic_diagnostics, rms  # noqa: E402
from qsm.runtime.timing import PhaseTimer  # noqa: E402

OBS, ACT, BATCH, LOG_EVERY = 17, 6, 256, 450


def fastest(fn, repeats: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best * 1e3


def batch(S=1):
    g = torch.Generator().manual_seed(0)
    return {"obs": torch.randn(S, BATCH, OBS, generator=g),
            "action": torch.rand(S, BATCH, ACT, generator=g) * 2 - 1,
            "reward": torch.randn(S, BATCH, generator=g),
            "next_obs": torch.randn(S, BATCH, OBS, generator=g), "mask": torch.ones(S, BATCH)}


def reductions(algo):
    """The diagnostics' extra work of one update, on tensors of its shapes."""
    q, target, loss = torch.randn(1, 2, BATCH), torch.randn(1, BATCH), torch.randn(1)
    actions = torch.rand(1, BATCH, ACT) * 2 - 1
    grad, eps = torch.randn(1, BATCH, ACT), torch.randn(1, BATCH, ACT)

    def work():
        out = critic_diagnostics(loss, q, target)
        if algo == "qsm":
            out["bound_share"] = bound_share(actions)
            out["dq_da_rms"] = rms(grad)
            out["score_target_rms"] = 50.0 * out["dq_da_rms"]
            out["eps_pred_rms"] = rms(eps)
        return out
    return work


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repeats: check the table's shape")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    repeats = 3 if a.quick else 30
    print(f"# {torch.get_num_threads()} thread(s), batch {BATCH}, one seed, cheetah_run's sizes")
    print(f"{'algo':6} {'update ms':>10} {'reductions ms':>14} {'log ms':>8} {'cost %':>7}")
    for algo in ("qsm", "sac", "td3"):
        cls = get_agent(algo)
        agent = cls(OBS, ACT, [0], resolve_config(cls, "cheetah_run", {}))
        timer, b = PhaseTimer(enabled=False), batch()
        values = agent.update(b, timer)
        update = fastest(lambda: agent.update(b, timer), repeats)
        extra = fastest(reductions(algo), repeats * 10)
        log = MetricsLog(1, get_entry(algo).metrics, algo)

        def add():
            log.add(values)
        add_ms = fastest(add, repeats * 10)
        flush_ms = fastest(lambda: (log.add(values), log.flush(1)), repeats)
        log_ms = add_ms + flush_ms / LOG_EVERY
        cost = 100 * (extra + log_ms) / (update - extra)
        print(f"{algo:6} {update:10.3f} {extra:14.4f} {log_ms:8.4f} {cost:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
