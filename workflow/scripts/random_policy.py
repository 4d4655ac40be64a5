"""A uniform-random policy as an external baseline: a standalone program that writes the
run-directory contract itself (numpy, json and csv only; no torch, no qsm.contract.rundir).

    python workflow/scripts/random_policy.py --task cheetah_run --seeds 0 1 --steps 4000 \\
        --eval-every 1000 --eval-episodes 1 --probe-states 8 --probe-samples 1000 \\
        --run-id 0123456789ab --code-version 0123456789ab --out results/runs/random/cheetah_run/0123456789ab

It imports from the suite only `qsm.harness.envs.make_env` (the same tasks, action scaling and time
limits as the learners), `qsm.harness.probes.probe_states` (the same probe states) and
`qsm.harness.evaluation.eval_steps` (the learners' evaluation schedule). Everything it writes
follows the contract as documented (docs/run_directory.md, qsm/contract/rundir.py's docstring):

    OUT/seed<k>/config.json         contract_version, algo, task, seed, run_id, code_version,
                                    hparams, budget, env, provenance (+ block: the seeds
                                    written together)
    OUT/seed<k>/eval.csv            step, return, return_std, episodes, wall_time_s
    OUT/seed<k>/timing.csv          phase, calls, total_s, env_steps, block_size, device
    OUT/seed<k>/probe_actions.npz   states (P, obs_dim); policy, behaviour (P, N, act_dim)
    OUT/seed<k>/metrics.csv         the training diagnostics' header: nothing is learned, so
                                    no rows (and no policy.pt)
    OUT/seed<k>/status.json         status (running -> complete, or failed), step, reason

Every file is written to a temporary name in the same directory and renamed into place.

What "training" means for a policy that never changes: nothing is learned and no training
environment is stepped. The policy is evaluated at steps 0, eval_every, 2 eval_every, ... and at
`steps` (qsm.harness.evaluation.eval_steps), the grid a learner with the same budget reports, so its
curve is a flat floor line drawn against the learners' curves. Every evaluation runs fresh
episodes. timing.csv measures the evaluation episodes (one `env_step` / `act` call = one step of
every seed's environment of the block, as in the trainer); `critic_update` and `actor_update`
have 0 calls.

Seeds: run seed k draws its episodes' environment seeds and its actions from numpy
SeedSequence([TAG, k, ...]) streams, so a seed's numbers never depend on the other seeds of the
block, and the same command gives the same files.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shlex
import socket
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the checkout
from qsm.harness.envs import make_env  # noqa: E402
from qsm.harness.evaluation import eval_steps  # noqa: E402
from qsm.harness.probes import probe_states  # noqa: E402

ALGO = "random"
CONTRACT_VERSION = 3
TAG = 0x52414E44  # "RAND": separates this program's streams from any other use of the seed
EVAL_COLUMNS = ("step", "return", "return_std", "episodes", "wall_time_s")
TIMING_COLUMNS = ("phase", "calls", "total_s", "env_steps", "block_size", "device")
# training diagnostics (docs/run_directory.md): a policy that never learns writes the header only.
# The contract asks for step and the common columns (it declares no columns of its own, so
# config.json has no `metrics`); these are the trainer's layout (qsm.harness.metrics.COLUMNS).
METRICS_COLUMNS = ("step", "critic_loss", "actor_loss", "q_mean", "q_std", "target_q_mean",
                   "dq_da_rms", "score_target_rms", "eps_pred_rms", "bound_share", "alpha",
                   "entropy", "actor_q")


# -- atomic files --------------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj) -> None:
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def write_csv(path: Path, columns, rows) -> None:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(columns)
    for row in rows:
        out.writerow([repr(row[c]) if isinstance(row[c], float) else row[c] for c in columns])
    write_atomic(path, buf.getvalue().encode())


def write_npz(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())


# -- the program -----------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", required=True)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--steps", type=int, required=True, help="the learners' step budget")
    p.add_argument("--eval-every", type=int, required=True)
    p.add_argument("--eval-episodes", type=int, required=True)
    p.add_argument("--probe-states", type=int, required=True)
    p.add_argument("--probe-samples", type=int, required=True)
    p.add_argument("--out", required=True, help="seeds go to OUT/seed<k>/")
    p.add_argument("--run-id", required=True,
                   help="identity of this configuration, given by the pipeline (config.json)")
    p.add_argument("--code-version", required=True,
                   help="version of this program's source, given by the pipeline (config.json)")
    a = p.parse_args(argv)
    for name in ("steps", "eval_every", "eval_episodes", "probe_states", "probe_samples"):
        if getattr(a, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if any(s < 0 for s in a.seeds) or len(set(a.seeds)) != len(a.seeds):
        p.error("--seeds must be distinct non-negative integers")
    return a


def stream(seed: int, *path: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([TAG, seed, *path]))


def env_seed(seed: int, evaluation: int, episode: int) -> int:
    return int(np.random.SeedSequence([TAG, seed, 1, evaluation, episode]).generate_state(1)[0])


class Timer:
    def __init__(self):
        self.calls, self.total = {}, {}

    def add(self, phase, seconds):
        self.calls[phase] = self.calls.get(phase, 0) + 1
        self.total[phase] = self.total.get(phase, 0.0) + seconds

    def rows(self, env_steps, block_size):
        phases = sorted(set(self.calls) | {"env_step", "act", "critic_update", "actor_update"})
        return [{"phase": ph, "calls": self.calls.get(ph, 0), "total_s": self.total.get(ph, 0.0),
                 "env_steps": env_steps, "block_size": block_size, "device": "cpu"}
                for ph in phases]


def evaluate(envs, rngs, seeds, evaluation, timer):
    """Run `len(envs[i])` fresh episodes for every seed i; returns (S, E) returns. Episode e of
    all seeds runs side by side, so an env_step call steps one environment per seed."""
    S, E = len(seeds), len(envs[0])
    returns = np.zeros((S, E))
    for e in range(E):
        for i, s in enumerate(seeds):
            envs[i][e].reseed(env_seed(s, evaluation, e))
            envs[i][e].reset()
        running = np.ones(S, dtype=bool)
        while running.any():
            t0 = time.perf_counter()
            actions = [rng.uniform(-1.0, 1.0, envs[0][0].act_dim) for rng in rngs]
            t1 = time.perf_counter()
            for i in np.flatnonzero(running):
                _, r, terminated, truncated = envs[i][e].step(actions[i])
                returns[i, e] += r
                running[i] = not (terminated or truncated)
            t2 = time.perf_counter()
            timer.add("act", t1 - t0)
            timer.add("env_step", t2 - t1)
    return returns


def main(argv=None) -> int:
    a = parse_args(argv)
    seeds, S, E = list(a.seeds), len(a.seeds), a.eval_episodes
    # Environments first: an unknown task stops the program before anything is written.
    envs = [[make_env(a.task, env_seed(s, 0, e)) for e in range(E)] for s in seeds]
    env0 = envs[0][0]
    dirs = [Path(a.out) / f"seed{s}" for s in seeds]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    step = 0
    try:
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for s, d in zip(seeds, dirs):
            write_json(d / "config.json", {
                "contract_version": CONTRACT_VERSION, "algo": ALGO, "task": a.task, "seed": s,
                "run_id": a.run_id, "code_version": a.code_version, "hparams": {},
                "budget": {"steps": a.steps, "eval_every": a.eval_every,
                           "eval_episodes": a.eval_episodes, "probe_states": a.probe_states,
                           "probe_samples": a.probe_samples},
                "env": {"obs_dim": env0.obs_dim, "act_dim": env0.act_dim,
                        "max_return": env0.max_return},
                "block": {"seeds": seeds, "size": S},
                "provenance": {
                    "program": "workflow/scripts/random_policy.py",
                    "command": shlex.join([sys.executable, *sys.argv]),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "hostname": socket.gethostname(), "device": "cpu", "started": started},
            })
            write_csv(d / "metrics.csv", METRICS_COLUMNS, [])
            write_json(d / "status.json", {"status": "running", "step": 0, "reason": ""})

        rngs = [stream(s, 2) for s in seeds]  # action draws during evaluation
        timer, rows = Timer(), [[] for _ in seeds]
        for k, step in enumerate(eval_steps(a.steps, a.eval_every)):
            t0 = time.perf_counter()
            returns = evaluate(envs, rngs, seeds, k, timer)
            wall = time.perf_counter() - t0
            timer.add("eval", wall)
            for i, d in enumerate(dirs):
                rows[i].append({"step": step, "return": float(returns[i].mean()),
                                "return_std": float(returns[i].std()), "episodes": E,
                                "wall_time_s": wall})
                write_csv(d / "eval.csv", EVAL_COLUMNS, rows[i])
                write_csv(d / "timing.csv", TIMING_COLUMNS, timer.rows(step, S))
                write_json(d / "status.json", {"status": "running", "step": step, "reason": ""})
            print(f"[random {a.task}] step {step}/{a.steps}: eval return per seed "
                  + " ".join(f"{r:.1f}" for r in returns.mean(axis=1)), file=sys.stderr, flush=True)

        states = probe_states(a.task, a.probe_states)
        shape = (a.probe_states, a.probe_samples, env0.act_dim)
        for s, d in zip(seeds, dirs):
            rng = stream(s, 3)
            write_npz(d / "probe_actions.npz", states=states.astype(np.float32),
                      policy=rng.uniform(-1, 1, shape).astype(np.float32),
                      behaviour=rng.uniform(-1, 1, shape).astype(np.float32))
            write_json(d / "status.json", {"status": "complete", "step": a.steps, "reason": ""})
    except Exception as e:
        for d in dirs:
            write_json(d / "status.json", {"status": "failed", "step": step,
                                           "reason": f"{type(e).__name__}: {e}"})
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
