"""Bans with an `until` end by themselves; this makes that end visible.

A ban's `until` already stops counting the moment it passes (publishing is checked
against the clock), but nothing would otherwise clear it or tell anyone: the
livestream would keep showing the stale ban and no `livestream.unbanned` webhook
would go out. This lifts every ban whose time has passed and emits the event for
each, at the earliest `until` the store holds: it sleeps until then, and a new ban
on this node wakes it to look again. An idle server does not ask the database every
second (that was a tenth of its idle CPU); a slow rescan still catches bans that
another process wrote. The store clears each ban in one conditional statement, so
two nodes sweeping the same database announce each expiry once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from live.broadcast.events import StreamEvents
from live.events.wake import sleep_unless_woken
from live.store.base import Store
from live.store.models import Livestream
from live.store.times import utcnow

log = logging.getLogger(__name__)

# The longest sleep: bans written by another process sharing the database are seen
# this late at worst (their `until` is enforced on publish by the clock regardless).
RESCAN_S = 15.0
# After a failed sweep (the database busy, say): try again this soon.
RETRY_S = 1.0
# A timer that fires a hair early would find nothing to lift and sleep ~0 again.
MIN_SLEEP_S = 0.01


def ban_waker(wake: asyncio.Event) -> Callable[[str, Livestream], None]:
    """An event listener that sets `wake` when a ban with an `until` is made: give
    it to the outbox, and the same `wake` to the BanExpiry."""

    def notice(event: str, livestream: Livestream) -> None:
        if event == "livestream.banned" and livestream.ban_until is not None:
            wake.set()

    return notice


class BanExpiry:
    def __init__(
        self,
        store: Store,
        events: StreamEvents,
        *,
        wake: asyncio.Event | None = None,
        rescan_s: float = RESCAN_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.events = events
        self.rescan_s = rescan_s
        self.clock = clock
        # Set by `notice` (or by `ban_waker`, for an outbox built before the sweeper).
        self._wake = wake or asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notice(self, event: str, livestream: Livestream) -> None:
        """A livestream event happened on this node: a ban with an `until` may end
        sooner than anything the sweeper is waiting for."""
        ban_waker(self._wake)(event, livestream)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ban-expiry")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def sweep(self) -> int:
        """Lift the bans that have run out and announce each; how many."""
        lifted = await self.store.lift_expired_bans(self.clock())
        for livestream in lifted:
            log.info("stream %s: ban ran out", livestream.id)
            try:
                await self.events.emit("livestream.unbanned", livestream, None)
            except Exception:
                log.exception("could not record livestream.unbanned for %s", livestream.id)
        return len(lifted)

    async def sleep_time(self) -> float:
        """Seconds until the earliest ban runs out, at most `rescan_s`."""
        until = await self.store.next_ban_expiry()
        if until is None:
            return self.rescan_s
        left = (until - self.clock()).total_seconds()
        return min(self.rescan_s, max(MIN_SLEEP_S, left))

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.sweep()
                sleep = await self.sleep_time()
            except Exception:
                log.exception("ban expiry sweep failed")
                sleep = min(self.rescan_s, RETRY_S)
            await sleep_unless_woken(self._wake, sleep)
