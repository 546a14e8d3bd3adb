"""Bans with an `until` end by themselves; this makes that end visible.

A ban's `until` already stops counting the moment it passes (publishing is checked
against the clock), but nothing would otherwise clear it or tell anyone: the
livestream would keep showing the stale ban and no `livestream.unbanned` webhook
would go out. Once a second this lifts every ban whose time has passed and emits
the event for each. The store clears each ban in one conditional statement, so two
nodes sweeping the same database announce each expiry once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from live.broadcast.events import StreamEvents
from live.store.base import Store

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0


class BanExpiry:
    def __init__(
        self, store: Store, events: StreamEvents, *, interval_s: float = SWEEP_INTERVAL_S
    ) -> None:
        self.store = store
        self.events = events
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

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
        lifted = await self.store.lift_expired_bans()
        for livestream in lifted:
            log.info("stream %s: ban ran out", livestream.id)
            try:
                await self.events.emit("livestream.unbanned", livestream, None)
            except Exception:
                log.exception("could not record livestream.unbanned for %s", livestream.id)
        return len(lifted)

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("ban expiry sweep failed")
            await asyncio.sleep(self.interval_s)
