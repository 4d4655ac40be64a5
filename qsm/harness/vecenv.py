"""The environments of a seed block, stepped together, in this process or in worker processes.

    envs = EnvBlock("cheetah_run", [derive_seed(s, "train_env") for s in seeds], workers=4)
    obs = envs.reset()                                         # (N, obs_dim)
    obs, reward, terminated, truncated = envs.step(actions)    # actions (N, act_dim)
    obs[done] = envs.reset(np.flatnonzero(done))

Environments always run on the CPU. With workers=0 they step one after another in this process;
with workers=W each of W processes owns a contiguous slice of them, so a large block's physics is
spread over W cores (the learner waits for the step either way). Every environment is the same object
either way (built from the same seed, fed the same actions), so results are bit-identical
whatever the worker count (tested): it is a speed setting, not part of a run's identity.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import traceback

import numpy as np

from qsm import ROOT
from qsm.harness.envs import make_env


class EnvWorkerError(RuntimeError):
    """An environment raised inside a worker process; carries the worker's traceback."""


def _serve(task: str, seeds: list[int]) -> None:
    """Worker loop (python -m qsm.harness.vecenv TASK SEED...): build the slice's environments, then
    answer pickled (method, calls) messages on stdin with pickled results on stdout."""
    # The protocol owns the original stdout; anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    inp = sys.stdin.buffer

    def reply(kind, payload):
        try:
            data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # serialise first: a half-written reply would desynchronise the stream
            data = pickle.dumps(("error", traceback.format_exc()))
        out.write(data)
        out.flush()

    try:
        envs = [make_env(task, s) for s in seeds]
    except Exception:
        reply("error", traceback.format_exc())
        return
    reply("ok", None)
    while True:
        try:
            message = pickle.load(inp)
        except (EOFError, KeyboardInterrupt):  # the trainer is gone: nothing left to serve
            return
        if message is None:
            return
        method, calls = message
        try:
            reply("ok", [getattr(envs[i], method)(*args) for i, args in calls])
        except Exception:
            reply("error", traceback.format_exc())


class EnvBlock:
    def __init__(self, task: str, seeds: list[int], workers: int = 0):
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.task, self.n = task, len(seeds)
        self._procs, self._closed = [], False
        probe = make_env(task, seeds[0])  # dimensions, and the in-process envs when workers=0
        self.obs_dim, self.act_dim, self.max_return = probe.obs_dim, probe.act_dim, probe.max_return
        self.optima = getattr(probe, "optima", None)  # known optimal actions (toy tasks)
        self.workers = min(workers, self.n)
        if self.workers == 0:
            self._envs = [probe] + [make_env(task, s) for s in seeds[1:]]
            return
        # Contiguous slices, sizes differing by at most one.
        bounds = np.linspace(0, self.n, self.workers + 1).round().astype(int)
        self._slices = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
        # Fresh interpreters, not fork (the parent holds torch's thread pools, which a fork copies
        # broken) and not multiprocessing's spawn (it re-imports the caller's main script).
        env = dict(os.environ)  # the workers import this package from where the parent did
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        for lo, hi in self._slices:
            cmd = [sys.executable, "-m", "qsm.harness.vecenv", task, *map(str, seeds[lo:hi])]
            self._procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                env=env))
        for proc in self._procs:
            self._receive(proc)

    # -- the calls ------------------------------------------------------------------------------
    def _call(self, method: str, calls: dict[int, tuple]) -> dict[int, object]:
        """Run envs[i].method(*args) for every (i, args) in calls; results keyed by i."""
        if self._closed:
            raise EnvWorkerError(f"the environments of {self.task} are closed (after an error "
                                 f"or close())")
        if self.workers == 0:
            return {i: getattr(self._envs[i], method)(*args) for i, args in calls.items()}
        try:
            sent = []
            for proc, (lo, hi) in zip(self._procs, self._slices):
                mine = [(i, args) for i, args in calls.items() if lo <= i < hi]
                if mine:
                    self._send(proc, (method, [(i - lo, args) for i, args in mine]))
                    sent.append((proc, [i for i, _ in mine]))
            results = {}
            for proc, indices in sent:  # every worker steps its slice while the others do theirs
                results.update(zip(indices, self._receive(proc)))
            return results
        except BaseException:
            # Replies may be left unread (an error, Ctrl-C between send and receive): the next
            # call would read them as its own, so the block is unusable from here on.
            self.close()
            raise

    def _send(self, proc, message):
        try:
            pickle.dump(message, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.close()
            raise EnvWorkerError(f"an environment worker for {self.task} died "
                                 f"(exit status {proc.poll()})") from None

    def _receive(self, proc):
        try:
            kind, payload = pickle.load(proc.stdout)
        except (EOFError, pickle.UnpicklingError):
            self.close()
            raise EnvWorkerError(f"an environment worker for {self.task} died "
                                 f"(exit status {proc.poll()})") from None
        if kind == "error":
            self.close()
            raise EnvWorkerError(f"environment worker for {self.task} failed:\n{payload}")
        return payload

    def _all(self, which):
        return range(self.n) if which is None else [int(i) for i in which]

    # -- the environment interface, for many at once --------------------------------------------
    def reset(self, which=None) -> np.ndarray:
        """Reset the environments `which` (default all); their observations, in that order."""
        idx = self._all(which)
        out = self._call("reset", {i: () for i in idx})
        return np.stack([out[i] for i in idx]) if idx else np.zeros((0, self.obs_dim), np.float32)

    def step(self, actions: np.ndarray, which=None):
        """Step the environments `which` (default all) with actions[k] for the k-th of them.
        Returns stacked (obs, reward float64, terminated bool, truncated bool)."""
        idx = self._all(which)
        out = self._call("step", {i: (actions[k],) for k, i in enumerate(idx)})
        res = [out[i] for i in idx]
        return (np.stack([r[0] for r in res]), np.array([r[1] for r in res], np.float64),
                np.array([r[2] for r in res], bool), np.array([r[3] for r in res], bool))

    def reseed(self, seeds: dict[int, int]) -> None:
        self._call("reseed", {i: (s,) for i, s in seeds.items()})

    def get_states(self) -> list:
        out = self._call("get_state", {i: () for i in range(self.n)})
        return [out[i] for i in range(self.n)]

    def set_states(self, blobs: list) -> None:
        self._call("set_state", {i: (b,) for i, b in enumerate(blobs)})

    def close(self) -> None:
        self._closed = True
        procs, self._procs = getattr(self, "_procs", []), []
        for proc in procs:
            try:
                pickle.dump(None, proc.stdin)
                proc.stdin.close()
            except (OSError, ValueError):
                pass
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def __len__(self):
        return self.n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


if __name__ == "__main__":
    _serve(sys.argv[1], [int(x) for x in sys.argv[2:]])
