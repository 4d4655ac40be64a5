"""The CPU numerics fingerprint: stable on one machine, different where the kernels round
differently, and free of side effects on the training it is recorded for."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import ROOT, python_env
from qsm.runtime.numerics import cpu_model, fingerprint

PRINT = "from qsm.runtime.numerics import fingerprint; print(fingerprint())"


def fingerprint_in_subprocess(**env):
    proc = subprocess.run([sys.executable, "-c", PRINT], env={**python_env(), **env},
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_same_machine_same_fingerprint_and_no_side_effects():
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    fingerprint.cache_clear()
    here = fingerprint()
    assert len(here) == 16 and int(here, 16) >= 0
    # the global generator (seeded runs draw from it) and the thread count are untouched
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    assert fingerprint_in_subprocess() == here
    assert isinstance(cpu_model(), str)


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() == "DEFAULT",
                    reason="this CPU has no vectorised kernels to turn off")
def test_kernels_that_round_differently_give_another_fingerprint():
    # torch's scalar kernels stand in for another kind of CPU: they round some results otherwise
    assert fingerprint_in_subprocess(ATEN_CPU_CAPABILITY="default") != fingerprint()


def test_training_on_cuda_switches_deterministic_kernels_on(monkeypatch):
    """Two runs of the same command on CUDA differed (the backward of gather adds atomically, in
    arrival order; measured on an H200, docs/gpus.md). The trainer's device resolution switches
    torch's deterministic kernels on for CUDA, and only for CUDA: the CPU path is untouched."""
    from qsm.train import resolve_device
    before = torch.are_deterministic_algorithms_enabled()
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        assert resolve_device("cpu").type == "cpu"
        assert not torch.are_deterministic_algorithms_enabled()
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert resolve_device("auto").type == "cuda"
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        import os
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(before)
