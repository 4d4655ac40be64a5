"""Seed-batched replay buffer: one independent ring buffer per seed, stored as (S, capacity, ...).

All seeds of a block step in lock-step, so they share the write pointer; sampling draws each
seed's indices from that seed's own stream.
"""
from __future__ import annotations

import torch

from qsm.harness.seeding import SeedStreams


class SeedBatchedReplay:
    FIELDS = ("obs", "action", "reward", "next_obs", "mask")

    def __init__(self, seeds, obs_dim: int, act_dim: int, capacity: int, device):
        S = len(seeds)
        self.capacity = int(capacity)
        self.device = torch.device(device)
        # torch.empty does not touch pages until written, so a large capacity costs what is used.
        self.storage = {
            "obs": torch.empty(S, self.capacity, obs_dim, device=self.device),
            "action": torch.empty(S, self.capacity, act_dim, device=self.device),
            "reward": torch.empty(S, self.capacity, device=self.device),
            "next_obs": torch.empty(S, self.capacity, obs_dim, device=self.device),
            "mask": torch.empty(S, self.capacity, device=self.device),  # 0 at true terminals
        }
        self.ptr = 0
        self.size = 0
        self.streams = SeedStreams(seeds, "replay", self.device)

    def add(self, obs, action, reward, next_obs, terminated) -> None:
        """Each argument holds one transition per seed: (S, ...) arrays or tensors."""
        values = {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs,
                  "mask": 1.0 - torch.as_tensor(terminated, dtype=torch.float32)}
        for key, value in values.items():
            self.storage[key][:, self.ptr] = torch.as_tensor(value, dtype=torch.float32).to(
                self.device, non_blocking=True)
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        idx = self.streams.randint(self.size, batch_size)  # (S, B)
        rows = torch.arange(idx.shape[0], device=self.device).unsqueeze(1)
        return {key: value[rows, idx] for key, value in self.storage.items()}

    def state_dict(self):
        return {"ptr": self.ptr, "size": self.size, "streams": self.streams.state_dict(),
                "storage": {k: v[:, : self.size].clone().cpu() for k, v in self.storage.items()}}

    def load_state_dict(self, state):
        self.ptr, self.size = state["ptr"], state["size"]
        self.streams.load_state_dict(state["streams"])
        for key, value in state["storage"].items():
            self.storage[key][:, : self.size] = value.to(self.device)
