import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "disable")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
torch.set_num_threads(1)  # tests run in parallel workers; one thread each keeps them predictable


@pytest.fixture(scope="session")
def root():
    return ROOT


def official_or_skip(extra=True, sac=False):
    """The official checkout (and, with `extra`, the jax extra) or a skip that says how to enable
    them; with QSM_REQUIRE_OFFICIAL=1 (CI) a failure instead, so these tests cannot silently
    stop running."""
    import pytest

    from qsm.harness import official
    try:
        checkout = official.find_checkout()
        if extra:
            official.check_extra(sac=sac)
    except official.OfficialUnavailable as e:
        if os.environ.get("QSM_REQUIRE_OFFICIAL"):
            pytest.fail(f"QSM_REQUIRE_OFFICIAL is set: {e}")
        pytest.skip(str(e))
    return checkout


def sigkill_after_checkpoint(command, ckpt, delay, timeout=300) -> bool:
    """Start a training command, wait until it writes the checkpoint `ckpt` anew, wait `delay`
    seconds more and SIGKILL its whole process group. False when it finished first."""
    import signal
    import subprocess
    import time
    proc = subprocess.Popen(command, env=python_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    before = ckpt.stat().st_mtime_ns if ckpt.exists() else 0
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and ckpt.stat().st_mtime_ns != before:
            break
        time.sleep(0.01)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def preset_config(name: str) -> dict:
    """A preset as Snakemake reads it: config/config.yaml, updated key by key (recursively) by
    config/<name>."""
    import yaml

    def update(base, over):
        for key, value in over.items():
            base[key] = (update(dict(base[key]), value)
                         if isinstance(value, dict) and isinstance(base.get(key), dict) else value)
        return base
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    if name != "config.yaml":
        config = update(config, yaml.safe_load((ROOT / "config" / name).read_text()) or {})
    return config


def python_env():
    """Environment for subprocesses: the repo importable, one thread, no rendering."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # the pipeline's rules call `python`: make it this interpreter, activated venv or not
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MUJOCO_GL="disable")
    return env


# Tests are hermetic: the checkout's own results/ (e.g. from the demo) and .snakemake/ must come
# out of a test session byte for byte as they went in. Checked once, by the controlling process.
_GUARDED = ("results", ".snakemake")


def _digest_checkout_outputs() -> str:
    import hashlib
    h = hashlib.sha256()
    for name in _GUARDED:
        for p in sorted((ROOT / name).rglob("*")):
            if p.is_file() and not p.is_symlink():
                h.update(p.relative_to(ROOT).as_posix().encode() + b"\0")
                h.update(p.read_bytes())
    return h.hexdigest()


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):
        session.config._checkout_digest = _digest_checkout_outputs()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_checkout_digest", None)
    if before is not None and _digest_checkout_outputs() != before:
        print(f"\nFAILED: the test session changed the checkout's {' or '.join(_GUARDED)}/ "
              f"(tests must work in temporary directories)", file=sys.stderr)
        session.exitstatus = 1
