"""GPU slots for local training jobs (qsm/runtime/gpu_slots.py), on fake devices: side by side, jobs
get different devices; a finished, failed or killed job frees its device."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import python_env
from qsm.runtime import gpu_slots

# Writes the device it was given and when it held it, to the file named by its argument.
RECORDER = ("import json, os, sys, time; start = time.time(); time.sleep(float(sys.argv[2])); "
            "json.dump({'device': os.environ.get('CUDA_VISIBLE_DEVICES'), 'start': start, "
            "'end': time.time()}, open(sys.argv[1], 'w'))")


@pytest.fixture
def slots(tmp_path):
    env = python_env()
    env.update(QSM_GPU_DEVICES="0,1", QSM_GPU_SLOTS_DIR=str(tmp_path / "slots"))
    return env


def wrapped(env, *command, **popen):
    return subprocess.Popen([sys.executable, "-m", "qsm.runtime.gpu_slots", "run", "--poll", "0.05",
                             "--", *command], env=env, **popen)


def wait_until(condition, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_jobs_side_by_side_never_share_a_device_and_use_all(tmp_path, slots):
    records = [tmp_path / f"job{i}.json" for i in range(4)]
    jobs = [wrapped(slots, sys.executable, "-c", RECORDER, str(r), "0.6") for r in records]
    assert [job.wait(timeout=120) for job in jobs] == [0] * 4
    held = [json.loads(r.read_text()) for r in records]
    assert {h["device"] for h in held} == {"0", "1"}
    together = [(a, b) for i, a in enumerate(held) for b in held[i + 1:]
                if a["start"] < b["end"] and b["start"] < a["end"]]
    assert together, held  # two devices: jobs did run side by side
    assert all(a["device"] != b["device"] for a, b in together), held


def test_a_killed_or_failed_job_frees_its_device(tmp_path, slots):
    slots["QSM_GPU_DEVICES"] = "0"
    directory = tmp_path / "slots"
    holder = wrapped(slots, sys.executable, "-c", "import time; time.sleep(60)",
                     start_new_session=True)
    try:
        # the wrapper takes the lock, then writes its pid and command into the lock file: in
        # between, the device reads as held by an "unknown process"
        assert wait_until(lambda: "time.sleep(60)" in (gpu_slots.holder(directory, "0") or ""))
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
    assert wait_until(lambda: gpu_slots.holder(directory, "0") is None, timeout=10)
    # the command's exit status is the wrapper's, and a failure frees the device too
    failed = wrapped(slots, sys.executable, "-c", "import sys; sys.exit(3)")
    assert failed.wait(timeout=60) == 3
    record = tmp_path / "next.json"
    assert wrapped(slots, sys.executable, "-c", RECORDER, str(record), "0").wait(timeout=60) == 0
    assert json.loads(record.read_text())["device"] == "0"


def test_without_devices_the_command_runs_unchanged(tmp_path):
    env = python_env()
    env.pop("QSM_GPU_DEVICES", None)
    env.update(CUDA_VISIBLE_DEVICES="", QSM_GPU_SLOTS_DIR=str(tmp_path / "slots"))
    proc = subprocess.run([sys.executable, "-m", "qsm.runtime.gpu_slots", "run", "--",
                           sys.executable, "-c",
                           "import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "''"
    assert "no GPU found" in proc.stderr


def test_devices_come_from_the_override_then_cuda_then_nvidia_smi(monkeypatch):
    listing = ("GPU 0: NVIDIA H100 (UUID: GPU-a)\nGPU 1: NVIDIA H100 (UUID: GPU-b)\n"
               "  MIG 1g.10gb Device 0: (UUID: MIG-c)\n")
    monkeypatch.setattr(gpu_slots.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=listing))
    assert gpu_slots.visible_devices({}) == ["0", "1"]
    assert gpu_slots.visible_devices({"CUDA_VISIBLE_DEVICES": "3,1"}) == ["3", "1"]
    assert gpu_slots.visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert gpu_slots.visible_devices({"QSM_GPU_DEVICES": "0,2", "CUDA_VISIBLE_DEVICES": "5"}) \
        == ["0", "2"]
