"""The wait of the background loops: until woken or the time is up.

The webhook dispatcher and the ban sweeper each sleep until their next due time, and
something done on this node (a new event, a new ban) wakes them early to look again.
They are stopped by cancelling them, so a cancel must always end the wait:
`asyncio.wait_for` on Python 3.11 swallows a cancel that arrives in the same turn of
the loop as the wake (it returns the wake's result instead), which left a stopped
loop running forever. `asyncio.timeout` does not.
"""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_unless_woken(wake: asyncio.Event, seconds: float) -> None:
    """Return after `seconds`, or as soon as `wake` is set (the caller clears it)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
