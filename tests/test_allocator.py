"""`use_mmap_for_large_buffers`: after it, a part-sized buffer is a mapping of its own
(glibc's `mallinfo2().hblks` counts those), before it one from the heap. Each case
runs in a fresh interpreter, whose allocator nobody has tuned yet."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import ctypes, sys
from live.allocator import use_mmap_for_large_buffers

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
tuned = use_mmap_for_large_buffers() if sys.argv[1] == "tune" else None
before = mallinfo2().hblks
part = bytes(100_000)  # a 200 ms part of a 4 Mbps stream
print(tuned, mallinfo2().hblks - before)
"""


def probe(mode: str, env: dict[str, str] | None = None) -> str:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_a_part_sized_buffer_is_mapped_on_its_own_once_tuned() -> None:
    assert probe("leave") == "None 0"  # glibc's default: from the heap
    assert probe("tune") == "True 1"


def test_the_operators_threshold_wins() -> None:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1024 * 1024)}
    assert probe("tune", env) == "False 0"
