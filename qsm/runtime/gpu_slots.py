"""One GPU per training job on a machine with several: a slot allocator over its devices.

    python -m qsm.runtime.gpu_slots run -- python -m qsm.train --device cuda ...
    python -m qsm.runtime.gpu_slots status

Snakemake's `gpu` resource only counts: `--resources gpu=4` lets four GPU jobs run at once but
tells none of them which GPU is its own, so all of them would use cuda:0. `run` takes the first
free device (and waits while every device is taken), sets CUDA_VISIBLE_DEVICES to it and then
becomes the command (exec): the command keeps the slot for its whole life, exits with its own
status, and frees the slot however it ends, killed included, because a slot is an flock on one
lock file per device, which the OS drops when the last process holding it is gone. With no
device at all, `run` runs the command unchanged. The pipeline puts `run` in front of a training
command when the job asks for a GPU on a local run (docs/gpus.md).

Devices: QSM_GPU_DEVICES (e.g. "0,1,2,3"), else CUDA_VISIBLE_DEVICES, else the GPUs that
`nvidia-smi -L` lists. Lock files: QSM_GPU_SLOTS_DIR, else results/.gpu_slots/<hostname> under
the working directory (per host, so that machines sharing a checkout never share slots).

Torch-free: the pipeline builds its commands without importing torch.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from qsm.declare.cli import HelpFormatter

DEVICES_VAR = "QSM_GPU_DEVICES"
SLOTS_DIR_VAR = "QSM_GPU_SLOTS_DIR"
POLL_SECONDS = 1.0


def visible_devices(environ=os.environ) -> list[str]:
    """The devices slots are handed out over, as CUDA_VISIBLE_DEVICES entries."""
    if environ.get(DEVICES_VAR, "").strip():
        return [d.strip() for d in environ[DEVICES_VAR].split(",") if d.strip()]
    if "CUDA_VISIBLE_DEVICES" in environ:  # set but empty: no device
        return [d.strip() for d in environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return re.findall(r"^GPU (\d+):", listing, flags=re.M)


def slots_dir(environ=os.environ) -> Path:
    if environ.get(SLOTS_DIR_VAR):
        return Path(environ[SLOTS_DIR_VAR])
    return Path("results") / ".gpu_slots" / socket.gethostname()


def lock_path(directory: Path, device: str) -> Path:
    # entries may be UUIDs (GPU-..., MIG-...): keep the file name plain
    return directory / f"gpu_{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}.lock"


def try_acquire(directory: Path, device: str) -> int | None:
    """An fd holding the device's lock, or None when another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(directory, device), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def acquire(devices: list[str], directory: Path, poll: float = POLL_SECONDS) -> tuple[str, int]:
    """The first free device and the fd that holds it; waits while all are taken."""
    waiting = False
    while True:
        for device in devices:
            fd = try_acquire(directory, device)
            if fd is not None:
                return device, fd
        if not waiting:
            print(f"gpu_slots: every device of {','.join(devices)} is taken; waiting",
                  file=sys.stderr, flush=True)
            waiting = True
        time.sleep(poll)


def holder(directory: Path, device: str) -> str | None:
    """What holds a device (pid and command, as its holder wrote them), or None when it is free."""
    fd = try_acquire(directory, device)
    if fd is not None:
        os.close(fd)
        return None
    return lock_path(directory, device).read_text().strip() or "unknown process"


def run(command: list[str], poll: float = POLL_SECONDS) -> int:
    """Exec `command` holding a device of its own (returns only if the exec fails)."""
    devices = visible_devices()
    env = dict(os.environ)
    fd = None
    if devices:
        device, fd = acquire(devices, slots_dir(), poll)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: {shlex.join(command)}\n".encode())
        os.set_inheritable(fd, True)  # the lock lives as long as the command
        env["CUDA_VISIBLE_DEVICES"] = device
        print(f"gpu_slots: CUDA_VISIBLE_DEVICES={device} (of {','.join(devices)})",
              file=sys.stderr, flush=True)
    else:
        print(f"gpu_slots: no GPU found ({DEVICES_VAR}, CUDA_VISIBLE_DEVICES, nvidia-smi -L); "
              f"running the command as it is", file=sys.stderr, flush=True)
    try:
        os.execvpe(command[0], command, env)
    except OSError as e:
        print(f"error: cannot run {command[0]!r}: {e}", file=sys.stderr)
        return 127


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m qsm.runtime.gpu_slots", description=__doc__,
                                 formatter_class=HelpFormatter)
    sub = ap.add_subparsers(dest="action", required=True, metavar="ACTION",
                            help="run or status (python -m qsm.runtime.gpu_slots ACTION --help)")
    run_p = sub.add_parser("run", help="run a command on a GPU of its own",
                           formatter_class=HelpFormatter)
    run_p.add_argument("--poll", type=float, default=POLL_SECONDS,
                       help="seconds between looks for a free device while all are taken")
    run_p.add_argument("command", nargs=argparse.REMAINDER,
                       help="the command, after --")
    sub.add_parser("status", help="show each device's slot: free, or the command holding it",
                   formatter_class=HelpFormatter)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.action == "status":
        devices, directory = visible_devices(), slots_dir()
        if not devices:
            print(f"no GPU found ({DEVICES_VAR}, CUDA_VISIBLE_DEVICES, nvidia-smi -L)")
        for device in devices:
            print(f"{device}: {holder(directory, device) or 'free'}")
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("run needs a command: python -m qsm.runtime.gpu_slots run -- COMMAND ...")
    return run(command, args.poll)


if __name__ == "__main__":
    sys.exit(main())
