"""The benchmark script runs in CI-sized form and prints its table (shape only, not speed)."""
import re
import subprocess
import sys

import pytest

from conftest import ROOT, python_env


def test_benchmark_quick_table_shape():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_update.py"), "--quick",
                           "--threads", "1", "--blocks", "1", "2"], capture_output=True, text=True,
                          env=python_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("# device: cpu") and "GFLOP/s" in lines[0]
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    assert header == ["algo", "seeds/block", "ms/update", "ms/seed", "per-seed speed-up",
                      "GFLOP/update", "% of matmul", "env steps/s"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[4:]]
    assert [(r[0], r[1]) for r in rows] == [(a, s) for a in ("qsm", "sac", "td3") for s in ("1", "2")]
    for r in rows:
        assert all(float(x) > 0 for x in (r[2], r[3], r[5], r[7])) and re.fullmatch(r"\d+%", r[6])
        assert abs(float(r[3]) * int(r[1]) - float(r[2])) < 0.02 * float(r[2]) + 0.02
        # speed-up = one seed's ms/update over this block's ms/seed (rounding of the printed ms)
        single = next(float(q[2]) for q in rows if q[0] == r[0] and q[1] == "1")
        assert float(r[4].rstrip("x")) == pytest.approx(single / float(r[3]), rel=0.02, abs=0.01)
    flops = {r[0]: float(r[5]) for r in rows if r[1] == "1"}
    assert flops["qsm"] > flops["sac"] > flops["td3"]  # QSM's 512-wide nets and sampler cost most


def test_env_benchmark_table_shape():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_envs.py"), "--tasks",
                           "cheetah_run", "--envs", "1", "3", "--workers", "0", "2", "--steps", "3"],
                          capture_output=True, text=True, env=python_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert [c.strip() for c in lines[1].strip("|").split("|")] == [
        "task", "envs", "workers", "ms/block step", "env steps/s"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[3:]]
    # one environment never gets two workers; every cell is a positive measurement
    assert [(r[1], r[2]) for r in rows] == [("1", "0"), ("3", "0"), ("3", "2")]
    assert all(float(r[3]) > 0 and int(r[4]) > 0 for r in rows)


def test_metrics_benchmark_table_shape():
    """The logging-cost benchmark prints one row per agent with positive times and the cost of
    logging as a share of the update (measured, so only its sign is asserted here)."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_metrics.py"), "--quick"],
                          capture_output=True, text=True, env=python_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[1].split() == ["algo", "update", "ms", "reductions", "ms", "log", "ms", "cost", "%"]
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == ["qsm", "sac", "td3"]
    assert all(float(x) > 0 for r in rows for x in r[1:])


@pytest.mark.parametrize("algo", ["qsm", "sac", "td3"])
def test_cuda_check_replays_every_random_draw_of_an_update(algo):
    """benchmarks/cuda_check.py compares a CPU agent with a CUDA agent by replaying the CPU
    agent's noise on the GPU. Run CPU against CPU it must agree to the bit: an update that drew
    from a stream the replay misses would differ here (or leave replayed draws unused, which
    raises)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import cuda_check
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    import torch
    diff = cuda_check.agreement(algo, torch.device("cpu"), updates=2)
    assert diff == {"diagnostics after 1": 0.0, "first step": 0.0, "diagnostics after 2": 0.0}
