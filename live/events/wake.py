"""The wait of the event layer's background loops: until woken or the time is up.

The webhook dispatcher and the ban sweeper each sleep until their next due time, and
something done on this node (a new event, a new ban) wakes them early to look again.
"""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_unless_woken(wake: asyncio.Event, seconds: float) -> None:
    """Return after `seconds`, or as soon as `wake` is set (the caller clears it)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
