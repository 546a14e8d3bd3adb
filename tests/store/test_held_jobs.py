"""Holding a leased job while its work runs (`live/store/held_jobs.py`)."""

from __future__ import annotations

import asyncio

import pytest

from live.store.errors import StoreUnavailable
from live.store.held_jobs import cancel_and_wait, renewed, run_while_held


async def _stops_slowly(stopped: list[str]) -> None:
    """Work that takes a while to clean up once cancelled (a child being killed)."""
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        await asyncio.sleep(0.2)
        stopped.append("work")
        raise


async def test_a_caller_cancelled_while_it_waits_is_still_cancelled() -> None:
    stopped: list[str] = []
    after: list[str] = []
    work = asyncio.create_task(_stops_slowly(stopped))
    await asyncio.sleep(0)

    async def caller() -> None:
        await cancel_and_wait(work)
        after.append("went on")  # what a worker told to stop must not do

    waiting = asyncio.create_task(caller())
    await asyncio.sleep(0.05)  # the caller waits for the work's cleanup
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert after == []
    await asyncio.wait({work})
    assert work.cancelled() and stopped == ["work"]


async def test_cancel_and_wait_waits_for_the_end_and_keeps_its_exception_to_itself() -> None:
    async def fails_when_stopped() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    work = asyncio.create_task(fails_when_stopped())
    await asyncio.sleep(0)
    await cancel_and_wait(work)  # neither the RuntimeError nor a CancelledError here
    assert work.done() and isinstance(work.exception(), RuntimeError)
    await cancel_and_wait(work)  # an ended task: nothing to do


async def test_work_runs_while_renewals_hold_and_is_stopped_when_one_says_lost() -> None:
    renewals: list[bool] = [True, True, False]
    stopped: list[str] = []
    work = asyncio.create_task(_stops_slowly(stopped))

    async def renew() -> bool:
        return renewals.pop(0)

    assert await run_while_held(work, renew, every_s=0.01) is False
    assert renewals == [] and work.cancelled() and stopped == ["work"]


async def test_work_that_ends_is_reported_done_with_its_outcome_in_the_task() -> None:
    async def quick() -> str:
        await asyncio.sleep(0.03)
        return "made"

    calls: list[int] = []

    async def renew() -> bool:
        calls.append(1)
        return True

    work = asyncio.create_task(quick())
    assert await run_while_held(work, renew, every_s=0.01) is True
    assert work.result() == "made" and calls  # renewed while it ran


async def test_a_holder_cancelled_stops_the_work_and_stays_cancelled() -> None:
    stopped: list[str] = []
    work = asyncio.create_task(_stops_slowly(stopped))

    async def renew() -> bool:
        return True

    holder = asyncio.create_task(run_while_held(work, renew, every_s=0.01))
    await asyncio.sleep(0.05)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    assert work.cancelled() and stopped == ["work"]


async def test_a_renewal_that_cannot_reach_the_store_counts_as_held() -> None:
    async def unreachable() -> bool:
        raise StoreUnavailable("redis: connection refused")

    async def lost() -> bool:
        return False

    assert await renewed(unreachable(), "job x") is True
    assert await renewed(lost(), "job x") is False
