"""Which floating-point results this machine's CPU gives: a fingerprint of its numerics.

On the CPU with one thread, a run is a function of its config and code, to the bit, on one kind
of CPU. Another kind can round differently (torch's vectorised kernels and MKL's GEMM choose
their code by instruction set and vendor), so a run retrained there agrees with the original to
rounding only. `fingerprint()` tells the kinds apart by what they compute: a few Adam steps of a
small MLP in float32, one thread, through the kernel families the agents use (GEMM of the
agents' layer sizes, tanh, exp, log, softplus, mish, sum and mean reductions); the SHA-256 of
the results' bytes. Equal fingerprints: runs reproduce bit for bit between the two machines (as
far as these kernels tell); unequal: to rounding only.
"""
from __future__ import annotations

import functools
import hashlib
import os


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """16 hex digits that differ between machines whose float32 CPU kernels round differently."""
    import torch  # here: the pipeline imports this module to build its DAG, where torch may not be

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(256, 24, generator=gen)
        layers = [torch.randn(24, 256, generator=gen) / 5, torch.randn(256, 256, generator=gen) / 16,
                  torch.randn(256, 2, generator=gen) / 16]
        for w in layers:
            w.requires_grad_(True)
        opt = torch.optim.Adam(layers, lr=3e-4)
        out = []
        for _ in range(5):
            h = torch.nn.functional.mish(x @ layers[0])
            h = torch.tanh(h @ layers[1])
            mean, log_std = (h @ layers[2]).unbind(-1)
            loss = (torch.nn.functional.softplus(mean) - torch.exp(log_std.clamp(-5, 2))
                    + torch.log1p(h.square().sum(-1))).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.detach().reshape(1))
        data = torch.cat([*out, *(w.detach().flatten() for w in layers)]).numpy().tobytes()
    finally:
        torch.set_num_threads(threads)
    return hashlib.sha256(torch.__version__.encode() + data).hexdigest()[:16]


def deterministic_cuda() -> None:
    """Make CUDA training a function of config and code, as CPU training is. Some CUDA kernels
    accumulate with atomic adds in whatever order the threads arrive, so two runs of the same
    command differ after a few updates: the backward of `gather` (QSM's time term) is one.
    torch's deterministic algorithms replace them, and cuBLAS needs a fixed workspace for the
    same. Call before the first CUDA operation; docs/performance.md has the measured cost."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: an op without a deterministic kernel warns instead of stopping the run
    torch.use_deterministic_algorithms(True, warn_only=True)


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it ('' where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""
