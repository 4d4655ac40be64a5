"""The run-directory contract: what every run of every algorithm writes, and its validator.

Layout (documented for users in docs/run_directory.md; the pipeline's DIR is
results/runs/{algo}/{task}/{run_id}, see qsm/contract/identity.py):

    DIR/seed<k>/
        config.json         resolved hyperparameters, budget, task facts, provenance
        eval.csv            step, return, return_std, episodes, wall_time_s
        timing.csv          phase, calls, total_s, env_steps, block_size, device
        probe_actions.npz   states (P, obs_dim); policy, behaviour (P, N, act_dim) in [-1, 1]
        metrics.csv         step, the common diagnostics (qsm.harness.metrics.COMMON) and those the
                            run's learner declares (config.json `metrics`); empty: not computed
        policy.pt           the trained policy (qsm.policy), in a complete run that learned
        status.json         status in {running, complete, diverged, failed}, step, reason

Every file is written to a temporary name in the same directory and renamed into place, so a
killed job leaves either the old complete file or the new complete file, never half of one.
Analysis code reads runs only through `load_run`, which validates all of the above.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qsm.harness.metrics import COLUMNS as METRICS_COLUMNS
from qsm.harness.metrics import metric_steps, required_columns

# 2: config.json carries run_id and code_version; policy samples are validated too.
# 3: metrics.csv (training diagnostics) and policy.pt (the trained policy); budget.log_every.
CONTRACT_VERSION = 3
STATUSES = ("running", "complete", "diverged", "failed")
EVAL_COLUMNS = ("step", "return", "return_std", "episodes", "wall_time_s")
TIMING_COLUMNS = ("phase", "calls", "total_s", "env_steps", "block_size", "device")
# Phases every training loop records; extra phases are allowed.
TIMING_PHASES = ("env_step", "act", "critic_update", "actor_update")
CONFIG_KEYS = ("contract_version", "algo", "task", "seed", "run_id", "code_version", "hparams",
               "budget", "env", "provenance")
REQUIRED_FILES = ("config.json", "eval.csv", "timing.csv", "probe_actions.npz", "metrics.csv",
                  "status.json")
POLICY_FILE = "policy.pt"
#: What a finished run keeps (the archive copies these; checkpoints are scratch, not the run).
KEPT_FILES = (*REQUIRED_FILES, POLICY_FILE)
#: Statuses of a run whose training has ended: its files are final and it has a final score.
FINISHED_STATUSES = ("complete", "diverged")


class ContractError(ValueError):
    """A run directory that does not satisfy the contract; the message names the file."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        super().__init__(f"{path}: {problem}")


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------

def atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_write_csv(path, columns, rows) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_fmt(row[c]) for c in columns])
    atomic_write_text(path, buf.getvalue())


def _fmt(v):
    if isinstance(v, float):
        return repr(v)  # round-trips exactly
    return v


def atomic_write_npz(path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------
# Writer used by the training loop (any external program may write the same files itself)
# ---------------------------------------------------------------------------------------------

class SeedRunWriter:
    def __init__(self, seed_dir, metrics_columns=METRICS_COLUMNS):
        """metrics_columns: the header of metrics.csv (the trainer's:
        qsm.harness.metrics.file_columns of the learner's declared columns)."""
        self.dir = Path(seed_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics_columns = tuple(metrics_columns)
        self.eval_rows: list[dict] = []
        self.metrics_rows: list[dict] = []

    def write_config(self, config: dict) -> None:
        """The run's config.json, and its metrics.csv without rows (rows come as it learns)."""
        atomic_write_json(self.dir / "config.json", {"contract_version": CONTRACT_VERSION, **config})
        self.write_metrics()

    def add_metrics(self, row: dict) -> None:
        self.metrics_rows.append(row)
        self.write_metrics()

    def write_metrics(self) -> None:
        rows = [{c: ("" if row.get(c) is None else row[c]) for c in self.metrics_columns}
                for row in self.metrics_rows]
        atomic_write_csv(self.dir / "metrics.csv", self.metrics_columns, rows)

    def write_status(self, status: str, step: int, reason: str = "") -> None:
        assert status in STATUSES, status
        atomic_write_json(self.dir / "status.json",
                          {"status": status, "step": int(step), "reason": reason})

    def add_eval(self, step, returns, wall_time_s) -> None:
        returns = np.asarray(returns, dtype=np.float64)
        self.eval_rows.append({"step": int(step), "return": float(returns.mean()),
                               "return_std": float(returns.std()), "episodes": int(returns.size),
                               "wall_time_s": float(wall_time_s)})
        atomic_write_csv(self.dir / "eval.csv", EVAL_COLUMNS, self.eval_rows)

    def write_timing(self, rows: list[dict]) -> None:
        atomic_write_csv(self.dir / "timing.csv", TIMING_COLUMNS, rows)

    def write_probe_actions(self, states, policy, behaviour) -> None:
        atomic_write_npz(self.dir / "probe_actions.npz", states=np.asarray(states, np.float32),
                         policy=np.asarray(policy, np.float32),
                         behaviour=np.asarray(behaviour, np.float32))


# ---------------------------------------------------------------------------------------------
# Validator used by every analysis
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    path: Path
    config: dict
    status: dict
    eval: "object"  # pandas.DataFrame
    timing: "object"  # pandas.DataFrame
    probe_file: Path
    metrics: "object" = None  # pandas.DataFrame; empty cells are NaN
    problems: list = field(default_factory=list)

    @property
    def algo(self):
        return self.config["algo"]

    @property
    def task(self):
        return self.config["task"]

    @property
    def seed(self):
        return int(self.config["seed"])

    @property
    def run_id(self):
        return str(self.config["run_id"])

    def probe_actions(self, which: str = "behaviour"):
        return load_probe_actions(self.probe_file, which)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ContractError(path, f"is not valid JSON ({e.msg} at line {e.lineno})") from None


def _read_csv(path, columns):
    import pandas as pd
    try:
        df = pd.read_csv(path)
    except Exception as e:  # pandas raises several types for mangled files
        raise ContractError(path, f"cannot be parsed as CSV ({type(e).__name__}: {e})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ContractError(path, f"is missing columns {missing} (has {list(df.columns)})")
    return df


PROBE_ARRAYS = ("policy", "behaviour")


def probe_problem(states, actions, act_dim, must_be_valid=True):
    """What is wrong with probe samples (states (P, obs_dim), actions (P, N, act_dim)), or None."""
    states, actions = np.asarray(states), np.asarray(actions)
    if states.ndim != 2 or actions.ndim != 3 or actions.shape[0] != states.shape[0] \
            or actions.shape[2] != act_dim:
        return (f"has shape {actions.shape} for states {states.shape}, expected "
                f"(P, N, {act_dim}) with P = {states.shape[0] if states.ndim else '?'}")
    if actions.shape[0] == 0 or actions.shape[1] == 0:
        return f"is empty (shape {actions.shape})"
    if must_be_valid and (not np.isfinite(actions).all() or np.abs(actions).max() > 1 + 1e-6):
        return "actions must be finite and in [-1, 1]"
    return None


def load_probe_actions(path, which="behaviour"):
    path = Path(path)
    try:
        with np.load(path) as z:
            states = z["states"]
            actions = z[which]
    except KeyError as e:
        raise ContractError(path, f"has no array {e}") from None
    except Exception as e:
        raise ContractError(path, f"cannot be read as .npz ({type(e).__name__}: {e})") from None
    return states, actions


def load_run(seed_dir, check_probes: bool = True) -> Run:
    """Read and validate one seed directory; raise ContractError naming the bad file."""
    d = Path(seed_dir)
    if not d.is_dir():
        raise ContractError(d, "is not a directory")
    for name in ("config.json", "status.json"):
        if not (d / name).is_file():
            raise ContractError(d / name, "is missing")
    config = _read_json(d / "config.json")
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise ContractError(d / "config.json", f"is missing keys {missing}")
    version = config["contract_version"]
    if version == 2:
        raise ContractError(d / "config.json",
                            "has contract_version 2: written before metrics.csv and policy.pt "
                            f"joined the contract (version {CONTRACT_VERSION}); retrain the run "
                            "to analyse it")
    if version != CONTRACT_VERSION:
        raise ContractError(d / "config.json",
                            f"has contract_version {version}, expected {CONTRACT_VERSION}")
    for key in ("obs_dim", "act_dim", "max_return"):
        if key not in config["env"]:
            raise ContractError(d / "config.json", f"env is missing {key!r}")
    declared = config.get("metrics", [])
    if not (isinstance(declared, list) and all(isinstance(c, str) and c for c in declared)):
        raise ContractError(d / "config.json", f"metrics must be a list of the metrics.csv "
                                               f"columns its learner declares, got {declared!r}")
    optima = config["env"].get("optima")
    if optima is not None:
        arr = np.asarray(optima, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != int(config["env"]["act_dim"]) or not len(arr):
            raise ContractError(d / "config.json",
                                f"env.optima must be a list of act_dim-long action vectors, got "
                                f"shape {arr.shape}")
    status = _read_json(d / "status.json")
    if status.get("status") not in STATUSES:
        raise ContractError(d / "status.json", f"status must be one of {STATUSES}, got {status.get('status')!r}")

    if status["status"] in ("running", "failed"):
        # Incomplete runs are reported by the caller; their partial files are not trusted.
        return Run(d, config, status, None, None, d / "probe_actions.npz")

    for name in REQUIRED_FILES:
        if not (d / name).is_file():
            raise ContractError(d / name, "is missing")
    ev = _read_csv(d / "eval.csv", EVAL_COLUMNS)
    if len(ev) == 0:
        raise ContractError(d / "eval.csv", "has no rows")
    if not np.isfinite(ev["step"].to_numpy(dtype=float)).all() or (ev["step"] < 0).any():
        raise ContractError(d / "eval.csv", "has invalid steps")
    if not ev["step"].is_monotonic_increasing:
        raise ContractError(d / "eval.csv", "steps are not increasing")
    if status["status"] == "complete" and not np.isfinite(ev["return"].to_numpy(dtype=float)).all():
        raise ContractError(d / "eval.csv", "has non-finite returns in a complete run")
    timing = _read_csv(d / "timing.csv", TIMING_COLUMNS)
    absent = [p for p in TIMING_PHASES if p not in set(timing["phase"])]
    if absent:
        raise ContractError(d / "timing.csv", f"is missing phases {absent}")
    metrics = read_metrics(d / "metrics.csv", status, config["budget"], declared,
                           config["algo"])
    if status["status"] == "complete" and learned(config["budget"]) \
            and not (d / POLICY_FILE).is_file():
        raise ContractError(d / POLICY_FILE, "is missing (a complete run that learned keeps its "
                                             "policy)")
    if check_probes:
        act_dim = int(config["env"]["act_dim"])
        for which in PROBE_ARRAYS:
            states, actions = load_probe_actions(d / "probe_actions.npz", which)
            problem = probe_problem(states, actions, act_dim,
                                    must_be_valid=status["status"] == "complete")
            if problem:
                raise ContractError(d / "probe_actions.npz", f"{which}: {problem}")
    return Run(d, config, status, ev, timing, d / "probe_actions.npz", metrics)


def learned(budget: dict) -> bool:
    """Whether a run of this budget takes learning steps, and so logs metrics and keeps a policy:
    a program that learns nothing (the random policy) declares no start_steps or log_every."""
    return "log_every" in budget and "start_steps" in budget \
        and int(budget["steps"]) > int(budget["start_steps"])


def read_metrics(path, status: dict, budget: dict, declared=(), algo: str = "its learner"):
    """metrics.csv: the columns step, the common ones (qsm.harness.metrics.COMMON) and those the
    run's learner declares (`declared`: config.json's `metrics`; none in a run recorded before
    learners declared them, or by a program that declares none), each cell of every column a
    number or empty (not computed); in a complete run every number finite and one row at each
    step of metric_steps(). Other columns are allowed (the trainer writes every column of
    qsm.harness.metrics.COLUMNS). The table has every column of the file and of
    qsm.harness.metrics.COLUMNS (NaN where the file has none)."""
    import pandas as pd
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:  # pandas raises several types for mangled files
        raise ContractError(path, f"cannot be parsed as CSV ({type(e).__name__}: {e})") from None
    required = required_columns(declared)
    missing = [c for c in required if c not in raw.columns]
    if missing:
        own = [c for c in missing if c in declared]
        whose = f" ({', '.join(own)} declared by {algo}, config.json metrics)" if own else ""
        raise ContractError(path, f"is missing columns {missing}{whose} (has "
                                  f"{list(raw.columns)})")
    values = {}
    for column in raw.columns:
        cells = raw[column].str.strip()
        try:
            values[column] = np.array([float(c) if c else np.nan for c in cells], dtype=float)
        except ValueError:
            raise ContractError(path, f"column {column!r} holds a value that is not a number")
        given = cells != ""
        if status["status"] == "complete" and not np.isfinite(values[column][given]).all():
            raise ContractError(path, f"column {column!r} has non-finite values in a complete run")
    steps = values["step"]
    if np.isnan(steps).any() or (np.diff(steps) <= 0).any():
        raise ContractError(path, "steps must be given and strictly increase")
    if status["status"] == "complete":
        expected = metric_steps(int(budget["steps"]), int(budget["start_steps"]),
                                int(budget["log_every"])) if learned(budget) else []
        if steps.astype(int).tolist() != expected:
            raise ContractError(path, f"has {len(steps)} rows, expected {len(expected)} (one at "
                                      f"each of steps {_steps_text(expected)})")
    columns = [*METRICS_COLUMNS, *(c for c in raw.columns if c not in METRICS_COLUMNS)]
    return pd.DataFrame({c: values[c] if c in values else np.full(len(raw), np.nan)
                         for c in columns})


def _steps_text(steps: list[int]) -> str:
    if len(steps) <= 4:
        return ", ".join(map(str, steps)) or "none"
    return f"{steps[0]}, {steps[1]}, ..., {steps[-1]}"


def find_seed_dirs(root) -> list[Path]:
    """Every directory under root that looks like a seed directory (holds config.json)."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob("config.json") if p.parent.name.startswith("seed"))


def build_parser():
    """The command line of main()."""
    import argparse
    import inspect

    from qsm.declare.cli import HelpFormatter
    ap = argparse.ArgumentParser(prog="python -m qsm.contract.rundir",
                                 description=inspect.cleandoc(main.__doc__),
                                 formatter_class=HelpFormatter)
    ap.add_argument("paths", nargs="+", metavar="PATH",
                    help="a seed directory (.../seed<k>), or a folder searched for them")
    return ap


def main(argv=None) -> int:
    """python -m qsm.contract.rundir PATH [PATH ...]: validate seed directories (or every seed
    directory under a root); one line per run, exit status 1 if any is invalid."""
    import sys
    ap = build_parser()
    args = ap.parse_args(argv)
    bad = 0
    for path in map(Path, args.paths):
        dirs = [path] if (path / "config.json").exists() or path.name.startswith("seed") \
            else find_seed_dirs(path)
        if not dirs:
            print(f"error: {path}: no seed directories found", file=sys.stderr)
            bad += 1
        for d in dirs:
            try:
                run = load_run(d)
                print(f"ok: {d} ({run.status['status']})")
            except ContractError as e:
                print(f"error: {e}", file=sys.stderr)
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
