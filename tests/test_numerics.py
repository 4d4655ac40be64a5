"""The CPU numerics fingerprint: stable on one machine, different where the kernels round
differently, and free of side effects on the training it is recorded for."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import ROOT, python_env
from qsm.numerics import cpu_model, fingerprint

PRINT = "from qsm.numerics import fingerprint; print(fingerprint())"


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
