"""The CPU priority of VOD work: below every live stream, always.

A live ladder encodes in threads of the server process at normal priority; VOD
encoding runs in a child process that lowers itself first (its x264 threads
inherit it):
- "idle": the SCHED_IDLE policy (Linux) on top of nice 19. The kernel runs the
  child only on CPU time nothing else wants, and preempts it the moment a live
  thread wakes, so live parts are never late because of VOD work, with no
  polling of the live packager: the scheduler backs off for us, per time slice.
- "low": nice 19 only (weight 15 against 1024 for normal work: about 1.5 % of a
  contended core).
- "normal": no change (benchmarks, or a node that does VOD only).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from typing import Literal

VodPriority = Literal["idle", "low", "normal"]
VOD_PRIORITIES: tuple[str, ...] = ("idle", "low", "normal")
LOWEST_NICE = 19


def lower_priority(priority: VodPriority) -> None:
    """Lower this process (call before any thread starts)."""
    if priority == "normal":
        return
    os.nice(max(0, LOWEST_NICE - os.nice(0)))
    if priority == "idle" and hasattr(os, "SCHED_IDLE"):
        # A container may forbid it: nice 19 still holds.
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def die_with_parent() -> None:
    """Linux: this process is killed when its parent dies, even by SIGKILL, so a
    crashed server leaves no encoder running (its restart re-runs the job)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1
