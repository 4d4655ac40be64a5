"""Per-seed random streams.

Every run seed owns independent random streams, one per purpose (network init, replay sampling,
update noise, acting noise, environments ...). A stream depends only on (seed, purpose), never on
which other seeds share the process, so seed k trained in a block of 8 sees the same numbers as
seed k trained alone.
"""
from __future__ import annotations

import zlib

import numpy as np
import torch

def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit integer seed for (run seed, purpose), stable across processes and machines: the
    purpose enters as its CRC-32, never through Python's randomised string hashing."""
    tag = zlib.crc32(purpose.encode())
    state = np.random.SeedSequence([int(seed), tag]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


class SeedStreams:
    """One torch.Generator per seed for a single purpose; draws come back stacked on dim 0."""

    def __init__(self, seeds, purpose: str, device: torch.device | str = "cpu"):
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        self.generators = []
        for s in self.seeds:
            g = torch.Generator(device=self.device)
            g.manual_seed(derive_seed(s, purpose))
            self.generators.append(g)

    def __len__(self):
        return len(self.generators)

    # Each seed's slice is filled in place from its own generator: the same numbers as
    # torch.randn(shape, generator=g) (tested), without a stack copy.
    def randn(self, *shape) -> torch.Tensor:
        out = torch.empty((len(self.generators), *shape), device=self.device)
        for row, g in zip(out, self.generators):
            row.normal_(generator=g)
        return out

    def rand(self, *shape) -> torch.Tensor:
        out = torch.empty((len(self.generators), *shape), device=self.device)
        for row, g in zip(out, self.generators):
            row.uniform_(generator=g)
        return out

    def randint(self, high: int, *shape) -> torch.Tensor:
        return torch.stack([torch.randint(high, shape, generator=g, device=self.device)
                            for g in self.generators])

    def state_dict(self):
        return [g.get_state() for g in self.generators]

    def load_state_dict(self, states):
        for g, st in zip(self.generators, states):
            g.set_state(st)


class ReplayedDraws:
    """Stands in for a SeedStreams and hands out given draws, in order, instead of random ones.

    The seam through which a check feeds an agent the exact noise another implementation drew
    (tests/official.py replays the official JAX learners' draws this way). Each draw is a tensor
    with the seed dimension first, (S, *shape); a request whose kind (normal / integer) or shape
    differs from the next draw raises, so a replay that runs out of step fails loudly.
    """

    def __init__(self, draws):
        self.draws = [torch.as_tensor(d) for d in draws]

    def __len__(self):
        return len(self.draws)

    def _next(self, integer: bool, shape) -> torch.Tensor:
        if not self.draws:
            raise RuntimeError(f"no replayed draw left for a request of shape {tuple(shape)}")
        draw = self.draws.pop(0)
        if (not draw.is_floating_point()) != integer or tuple(draw.shape[1:]) != tuple(shape):
            kind = "integer" if integer else "normal"
            raise RuntimeError(f"replayed draw of dtype {draw.dtype}, shape {tuple(draw.shape)} "
                               f"does not fit a request for {kind} draws of shape (S, {tuple(shape)})")
        return draw

    def randn(self, *shape) -> torch.Tensor:
        return self._next(False, shape).float()

    def randint(self, high: int, *shape) -> torch.Tensor:
        draw = self._next(True, shape).long()
        if draw.numel() and (draw.min() < 0 or draw.max() >= high):
            raise RuntimeError(f"replayed integer draw outside [0, {high})")
        return draw
