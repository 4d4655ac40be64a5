"""What a training program says while it runs: a progress bar on a terminal, and in a log file one
line per evaluation with the elapsed time, the speed and the time left; optionally the metrics as
TensorBoard scalars. Nothing here changes a number a run computes."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Elapsed time (across resumes), steps per second and the time left of one training run."""

    def __init__(self, label: str, total_steps: int):
        self.label, self.total = label, total_steps
        self.bar = None

    def start(self, step: int, elapsed_before: float = 0.0) -> None:
        from tqdm import tqdm
        self.elapsed_before = elapsed_before
        self.wall0 = self.mark_wall = time.perf_counter()
        self.step0 = self.mark_step = self.step = step
        self.bar = tqdm(total=self.total, initial=step, disable=None, dynamic_ncols=True,
                        desc=self.label, unit="step", file=sys.stderr)

    def update(self, step: int) -> None:
        self.step = step
        self.bar.update(1)

    def elapsed(self) -> float:
        """Seconds of training so far, including the runs before a resume."""
        return self.elapsed_before + time.perf_counter() - self.wall0

    def steps_per_second(self, since_mark: bool = False) -> float:
        step0, wall0 = (self.mark_step, self.mark_wall) if since_mark else (self.step0, self.wall0)
        seconds = time.perf_counter() - wall0
        return (self.step - step0) / seconds if seconds > 0 else float("nan")

    def evaluation(self, step: int, returns: np.ndarray, alive: np.ndarray) -> None:
        """After an evaluation: the bar's postfix, or (in a log file) one line with the returns,
        the elapsed time, the speed since the previous evaluation and the time left at it."""
        live = returns[alive].mean(axis=1) if alive.any() else np.array([np.nan])
        if self.bar is None:  # the evaluation before the first step
            return
        self.bar.set_postfix_str(f"return {np.mean(live):.1f}")
        if not sys.stderr.isatty():
            per_seed = " ".join(f"{r:.1f}" for r in returns.mean(axis=1))
            rate = self.steps_per_second(since_mark=True)
            left = (self.total - step) / rate if rate > 0 else float("nan")
            left_text = _clock(left) if np.isfinite(left) else "unknown"
            print(f"[{self.label}] step {step}/{self.total}: eval return per seed {per_seed} | "
                  f"elapsed {_clock(self.elapsed())}, {rate:.1f} steps/s, {left_text} left",
                  file=sys.stderr, flush=True)
        self.mark_step, self.mark_wall = step, time.perf_counter()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class TensorBoardLog:
    """The metrics rows and evaluation returns as TensorBoard scalars, one event directory per
    seed: DIR/<algo>/<task>/<run_id>/seed<k>. `open(None, ...)` gives one that writes nothing."""

    def __init__(self, writers):
        self.writers = writers

    @classmethod
    def open(cls, directory, algo, task, run_id, seeds) -> "TensorBoardLog":
        if not directory:
            return cls([])
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingExtra("--tensorboard needs the optional extra: "
                               "pip install -e '.[tensorboard]'") from None
        root = Path(directory) / algo / task / run_id
        return cls([SummaryWriter(str(root / f"seed{s}")) for s in seeds])

    def add(self, step: int, rows: list[dict], steps_per_second: float) -> None:
        for writer, row in zip(self.writers, rows):
            for key, value in row.items():
                if key != "step" and value is not None:
                    writer.add_scalar(f"train/{key}", value, step)
            writer.add_scalar("time/steps_per_second", steps_per_second, step)

    def add_eval(self, step: int, returns: np.ndarray) -> None:
        for writer, seed_returns in zip(self.writers, returns):
            writer.add_scalar("eval/return", float(np.mean(seed_returns)), step)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers = []


class MissingExtra(RuntimeError):
    """An option that needs an optional extra which is not installed."""
