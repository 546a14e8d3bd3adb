"""The background loops' wait: woken early, or the time is up, and a cancel always
cancels (the loops are stopped by cancelling them)."""

from __future__ import annotations

import asyncio

import pytest

from live.events.wake import sleep_unless_woken


async def test_a_wake_ends_the_wait_early() -> None:
    wake = asyncio.Event()
    task = asyncio.create_task(sleep_unless_woken(wake, 60))
    await asyncio.sleep(0)
    wake.set()
    await asyncio.wait_for(task, 5)


async def test_the_wait_ends_when_the_time_is_up() -> None:
    await sleep_unless_woken(asyncio.Event(), 0.01)


async def test_a_cancel_that_meets_a_wake_still_cancels() -> None:
    """A wake and a cancel in the same turn of the loop (a delivery finishing as the
    dispatcher is stopped): `asyncio.wait_for` on Python 3.11 returned normally here,
    swallowing the cancel, and the loop it was in went on forever."""
    wake = asyncio.Event()
    task = asyncio.create_task(sleep_unless_woken(wake, 60))
    await asyncio.sleep(0)  # the task is waiting
    wake.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
