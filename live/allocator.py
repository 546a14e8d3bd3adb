"""Large buffers straight from mmap, so what a live stream frees goes back to the system.

Each live stream holds about 15 s of 40-120 KB parts (the window, and the segments
that left it but must stay requestable, RFC 8216 §6.2.2), allocated and freed in
stream order. glibc serves buffers that size from its heap (its default mmap
threshold is 128 KiB), where a part freed between two that are still held leaves a
hole the process keeps in its RSS. With the threshold at 64 KiB each part is a
mapping of its own, returned whole when the window drops it: about 0.7 MB less RSS
per 3 Mbps stream (`bench/memory.py`, 8 streams: 7.3 -> 6.6 MB), with no CPU
difference measured at 16 streams (`bench/BENCHMARKS.md`, memory section).
"""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
LARGE_BUFFER = 64 * 1024


def use_mmap_for_large_buffers(threshold: int = LARGE_BUFFER) -> bool:
    """Have malloc map buffers of `threshold` bytes and more on their own.

    False when nothing changed: the C library has no `mallopt` (not glibc), refused
    it, or the operator chose a threshold with `MALLOC_MMAP_THRESHOLD_` (theirs wins).
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1
