"""Holding a job of one of the store's leased queues (VOD jobs, imports) while its
work runs: the lease is renewed every few seconds, and the work is stopped as soon
as a renewal says another node holds the job now.

A renewal that cannot reach the store counts as held: the work goes on, and if the
lease lapses meanwhile, the next renewal that gets through says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from live.store.errors import StoreUnavailable

log = logging.getLogger(__name__)


async def run_while_held(
    work: asyncio.Task[Any], renew: Callable[[], Awaitable[bool]], every_s: float
) -> bool:
    """Wait for `work`, calling `renew` every `every_s` seconds until it is done.
    True once it is done (its outcome is in the task); False when a renewal said
    the lease was lost, the work then cancelled and waited for. Cancelled, it
    cancels the work too."""
    try:
        while True:
            done, _ = await asyncio.wait({work}, timeout=every_s)
            if done:
                return True
            if not await renew():
                await cancel_and_wait(work)
                return False
    except asyncio.CancelledError:
        await cancel_and_wait(work)
        raise


async def renewed(renewal: Awaitable[bool], what: str) -> bool:
    """The outcome of a lease renewal; True when the store could not be reached."""
    try:
        return await renewal
    except StoreUnavailable as error:
        log.warning("%s: lease renewal failed (%s)", what, error)
        return True


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended, whatever it ends with.

    A cancellation of the caller while it waits still cancels the caller. (Awaiting
    `task` itself under `suppress(CancelledError)` would swallow it, being the same
    exception as `task`'s own: a VOD worker told to stop while it stopped a job went
    on taking jobs, and the node's shutdown waited for it for ever.)"""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: what the task ended with is not the caller's
