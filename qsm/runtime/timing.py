"""Per-phase wall-clock accounting (environment step, acting, critic update, actor update ...).

On CUDA, kernels run asynchronously, so host timestamps would charge a phase's GPU work to
whichever later phase happens to synchronise. Each phase instead records a pair of CUDA events;
the elapsed times are read (one synchronisation) only when totals are requested.
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

import torch


class PhaseTimer:
    def __init__(self, device: torch.device | str = "cpu", enabled: bool = True):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.enabled = enabled
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._pending: list[tuple[str, object, object]] = []

    @contextmanager
    def phase(self, name: str):
        if not self.enabled:
            yield
            return
        if self.cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._pending.append((name, start, end))
            if len(self._pending) > 4096:  # bound memory held by events
                self._drain()
        else:
            t0 = time.perf_counter()
            yield
            self.totals[name] += time.perf_counter() - t0
        self.calls[name] += 1

    def _drain(self):
        if self._pending:
            torch.cuda.synchronize(self.device)
            for name, start, end in self._pending:
                self.totals[name] += start.elapsed_time(end) / 1000.0
            self._pending.clear()

    def summary(self) -> dict[str, tuple[int, float]]:
        """{phase: (calls, total seconds)}."""
        if self.cuda:
            self._drain()
        return {k: (self.calls[k], self.totals[k]) for k in self.calls}

    def state_dict(self):
        s = self.summary()
        return {"totals": {k: v[1] for k, v in s.items()}, "calls": {k: v[0] for k, v in s.items()}}

    def load_state_dict(self, state):
        self.totals = defaultdict(float, state["totals"])
        self.calls = defaultdict(int, state["calls"])
