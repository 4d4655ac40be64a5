"""Keep freed memory in the process instead of handing it back to the OS after every tensor.

An update allocates and frees activations of about 1 MiB dozens of times. With glibc's defaults
each is a fresh mapping whose pages fault in again on first touch; the settings below keep them
mapped, which removes most of those page faults (measured: docs/performance.md). Results are
unchanged; only where memory comes from changes.
"""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Serve allocations below `mmap_threshold` bytes from the heap and keep up to
    `trim_threshold` bytes of freed heap. True when glibc took the settings; elsewhere (macOS,
    musl) nothing happens and the defaults stay."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    except (OSError, AttributeError):
        return False
