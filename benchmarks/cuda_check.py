"""Checks of the CUDA path, for a GPU machine: does training on the GPU compute what it computes on
the CPU, and which of the CPU's reproducibility guarantees hold there?

    python benchmarks/cuda_check.py                 # on a machine with a GPU (a few minutes)
    python benchmarks/cuda_check.py --device cpu    # the same checks on the CPU (a dry run)
    python benchmarks/cuda_check.py --keep DIR      # keep the training runs under DIR

Prints one table, one row per check, and exits 1 if a check that must hold fails:
  agreement   qsm, sac and td3 at cheetah_run's sizes, 2 seeds: a CPU agent and a CUDA agent start
              from the same weights and take the same updates on the same batches with the same
              noise (the CPU agent's draws replayed on the GPU through
              qsm.harness.seeding.ReplayedDraws). Reports the relative difference of the updates'
              diagnostics (losses, Q statistics) after 1 and after --updates updates, and of the
              first update's parameter step: float32 rounding is expected; an error in a CUDA-only
              code path (mish's fused kernel, the wide-output layers) is not.
  training    qsm, sac and td3 train end to end on the device (cheetah_run, seeds 0 and 1, a
              short budget) and every seed directory passes the run-directory contract
              (qsm.contract.rundir); timing.csv's phases sum to a positive time.
  determinism each run trained twice: metrics.csv and eval.csv (without wall_time_s) and
              probe_actions.npz identical (on CUDA through torch's deterministic kernels, which
              the trainer switches on: qsm.runtime.numerics.deterministic_cuda)
  resume      the qsm run stopped after a checkpoint and resumed equals the uninterrupted run
  block       seed 1 trained alone against seed 1 trained in the block {0, 1}: reported only,
              as batched matrix products of different widths may round differently on either
              device (the seed's random streams are the same).
  policy      the qsm run's policy.pt, loaded on the device, redraws its probe_actions.npz bit for
              bit (qsm.policy probe --compare); loaded on the CPU it samples with a fresh stream,
              and a CUDA run's own stream is refused there with a message that says so.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "disable")

import torch  # noqa: E402

from qsm.declare.registry import get_agent, resolve_config  # noqa: E402
from qsm.harness.seeding import ReplayedDraws  # noqa: E402
from qsm.runtime.numerics import deterministic_cuda  # noqa: E402
from qsm.runtime.timing import PhaseTimer  # noqa: E402

OBS_DIM, ACT_DIM, BATCH = 17, 6, 256  # cheetah_run
ALGOS = ("qsm", "sac", "td3")


class Recorder:
    """Wraps a SeedStreams and keeps a CPU copy of every draw, to replay elsewhere."""

    def __init__(self, streams):
        self.streams, self.draws = streams, []

    def __len__(self):
        return len(self.streams)

    def _keep(self, x):
        self.draws.append(x.detach().cpu().clone())
        return x

    def randn(self, *shape):
        return self._keep(self.streams.randn(*shape))

    def rand(self, *shape):
        return self._keep(self.streams.rand(*shape))

    def randint(self, high, *shape):
        return self._keep(self.streams.randint(high, *shape))


class ReplayedOn(ReplayedDraws):
    """Replayed draws moved to `device`."""

    def __init__(self, draws, device):
        super().__init__(draws)
        self.device = device

    def randn(self, *shape):
        return super().randn(*shape).to(self.device)

    def randint(self, high, *shape):
        return super().randint(high, *shape).to(self.device)


def random_batch(S, g):
    return {"obs": torch.randn(S, BATCH, OBS_DIM, generator=g),
            "action": torch.rand(S, BATCH, ACT_DIM, generator=g) * 2 - 1,
            "reward": torch.rand(S, BATCH, generator=g),
            "next_obs": torch.randn(S, BATCH, OBS_DIM, generator=g),
            "mask": torch.ones(S, BATCH)}


def flat_parameters(agent: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().cpu().flatten() for p in agent.parameters()])


def relative_difference(a: dict, b: dict) -> float:
    """Largest |a - b| / max(|a|, 1e-6) over the diagnostics both updates returned, per seed."""
    worst = 0.0
    for key, x in a.items():
        x, y = torch.as_tensor(x).detach().cpu().double(), torch.as_tensor(b[key]).detach().cpu().double()
        worst = max(worst, float(((x - y).abs() / x.abs().clamp_min(1e-6)).max()))
    return worst


def agreement(algo: str, device: torch.device, updates: int) -> dict:
    """A CPU agent and a `device` agent from the same weights through the same updates: the
    relative difference of the updates' diagnostics (losses, Q statistics) after 1 and `updates`
    updates, and of the first update's step in parameter space (L2 over all parameters; Adam's
    first step is about lr * sign(gradient), so only gradients within rounding of 0 can differ)."""
    cls = get_agent(algo)
    cfg = resolve_config(cls, "cheetah_run", {})
    seeds = [0, 1]
    cpu = cls(OBS_DIM, ACT_DIM, seeds, cfg, "cpu")
    dev = cls(OBS_DIM, ACT_DIM, seeds, cfg, device)
    dev.load_state_dict(cpu.state_dict())
    start = flat_parameters(cpu)
    g = torch.Generator().manual_seed(0)
    timer = PhaseTimer("cpu", enabled=False)
    out = {}
    for i in range(updates):
        batch = random_batch(len(seeds), g)
        cpu.update_noise = Recorder(cpu.update_noise)
        ours = cpu.update(batch, timer)
        dev.update_noise = ReplayedOn(cpu.update_noise.draws, device)
        cpu.update_noise = cpu.update_noise.streams
        theirs = dev.update({k: v.to(device) for k, v in batch.items()},
                            PhaseTimer(device, enabled=False))
        if len(dev.update_noise):
            raise RuntimeError(f"{algo}: {len(dev.update_noise)} replayed draws left unused")
        if i == 0:
            out["diagnostics after 1"] = relative_difference(ours, theirs)
            step_cpu, step_dev = flat_parameters(cpu) - start, flat_parameters(dev) - start
            out["first step"] = float((step_cpu - step_dev).norm() / step_cpu.norm())
    out[f"diagnostics after {updates}"] = relative_difference(ours, theirs)
    return out


def train(out: Path, algo: str, seeds, device: str, extra=()) -> float:
    """Trains a short cheetah_run run; returns its wall-clock seconds."""
    cmd = [sys.executable, "-m", "qsm.train", "--algo", algo, "--task", "cheetah_run",
           "--seeds", *map(str, seeds), "--steps", "1400", "--start-steps", "1000",
           "--eval-every", "700", "--eval-episodes", "2", "--probe-samples", "200",
           "--log-every", "50", "--device", device, "--out", str(out), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def table_without(path: Path, column: str) -> list:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    drop = rows[0].index(column) if column in rows[0] else None
    return [[c for j, c in enumerate(r) if j != drop] for r in rows]


def same_run(a: Path, b: Path) -> tuple[bool, str]:
    """Compares the numbers two seed directories recorded; names what differs."""
    differ = []
    if (a / "metrics.csv").read_bytes() != (b / "metrics.csv").read_bytes():
        differ.append("metrics.csv")
    if table_without(a / "eval.csv", "wall_time_s") != table_without(b / "eval.csv", "wall_time_s"):
        differ.append("eval.csv")
    with np.load(a / "probe_actions.npz") as za, np.load(b / "probe_actions.npz") as zb:
        if any(not np.array_equal(za[k], zb[k]) for k in za.files):
            differ.append("probe_actions.npz")
    return not differ, ("identical" if not differ else "differ: " + ", ".join(differ))


def run_dir_ok(out: Path) -> tuple[bool, str]:
    proc = subprocess.run([sys.executable, "-m", "qsm.contract.rundir", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    timing_ok = all(
        sum(float(r["total_s"]) for r in csv.DictReader(open(t))) > 0
        for t in out.glob("seed*/timing.csv"))
    ok = proc.returncode == 0 and timing_ok
    return ok, ("contract ok" if proc.returncode == 0 else proc.stderr.strip()[-300:]) + \
        ("" if timing_ok else "; timing.csv sums to 0")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--updates", type=int, default=50, help="updates of the agreement check")
    ap.add_argument("--keep", default=None, help="keep the training runs under this folder")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    if device.type == "cuda":
        deterministic_cuda()  # as the trainer does
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# device: {device} ({name}); torch {torch.__version__}; "
          f"TF32 matmul {torch.backends.cuda.matmul.allow_tf32}")
    print("| check | algo | result | detail |")
    print("|---|---|---|---|")
    failed = []

    def row(check, algo, ok, detail, must=True):
        verdict = "pass" if ok else ("FAIL" if must else "no")
        if not ok and must:
            failed.append(f"{check} {algo}")
        print(f"| {check} | {algo} | {verdict} | {detail} |", flush=True)

    for algo in ALGOS:
        diff = agreement(algo, device, a.updates)
        # float32 rounding moves the first update's losses by about 1e-6 relative and flips the
        # sign of a few gradients within rounding of 0; a wrong kernel (another activation, a
        # transposed weight) changes the losses and a large share of the step at once. Later
        # updates are reported: Adam amplifies the rounding of near-zero gradients.
        ok = diff["diagnostics after 1"] < 1e-4 and diff["first step"] < 1e-2
        row("agreement", algo, ok, ", ".join(f"{k}: {v:.1e}" for k, v in diff.items()))

    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="cuda_check_"))
    root.mkdir(parents=True, exist_ok=True)
    for algo in ALGOS:
        secs = train(root / algo, algo, [0, 1], a.device)
        ok, detail = run_dir_ok(root / algo)
        row("training", algo, ok, f"{detail}; {secs:.0f} s for 2 seeds x 1400 steps")

    for algo in ALGOS:
        train(root / f"{algo}_again", algo, [0, 1], a.device)
        ok, detail = same_run(root / algo / "seed0", root / f"{algo}_again" / "seed0")
        row("determinism", algo, ok, detail)

    base = root / "qsm"

    resumed = root / "qsm_resumed"
    train(resumed, "qsm", [0, 1], a.device, ["--checkpoint-every", "1200", "--stop-after", "1200"])
    train(resumed, "qsm", [0, 1], a.device, ["--checkpoint-every", "1200"])
    ok, detail = same_run(base / "seed0", resumed / "seed0")
    row("resume", "qsm", ok, detail)

    alone = root / "qsm_alone"
    train(alone, "qsm", [1], a.device)
    ok, detail = same_run(base / "seed1", alone / "seed1")
    row("block", "qsm", ok, detail, must=False)

    probe = subprocess.run([sys.executable, "-m", "qsm.policy", "probe", str(base / "seed0"),
                            "--device", a.device, "--compare"], cwd=ROOT, capture_output=True,
                           text=True)
    same = probe.returncode == 0 and "differs" not in probe.stdout
    row("policy", "qsm", same, f"redrawn on {a.device}: " +
        ("identical" if same else (probe.stdout + probe.stderr).strip().splitlines()[-1][:200]))
    on_cpu = subprocess.run([sys.executable, "-m", "qsm.policy", "probe", str(base / "seed0"),
                             "--device", "cpu", "--stream-seed", "0"], cwd=ROOT,
                            capture_output=True, text=True)
    row("policy", "qsm", on_cpu.returncode == 0,
        "sampled on cpu: " + ("ok" if on_cpu.returncode == 0
                              else (on_cpu.stderr.strip().splitlines() or ["?"])[-1][:200]))
    run_stream = subprocess.run([sys.executable, "-m", "qsm.policy", "probe", str(base / "seed0"),
                                 "--device", "cpu"], cwd=ROOT, capture_output=True, text=True)
    said = (run_stream.stderr.strip().splitlines() or ["?"])[-1]
    if device.type == "cpu":
        row("policy", "qsm", run_stream.returncode == 0, "on cpu from the run's own stream")
    else:  # a CUDA generator's state cannot seed a CPU one: refused in one clear line
        row("policy", "qsm", run_stream.returncode == 2 and "--stream-seed" in said,
            f"on cpu from the run's own stream: refused ({said[:160]})")
    print(f"# runs under {root}")
    if failed:
        print("failed: " + "; ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
