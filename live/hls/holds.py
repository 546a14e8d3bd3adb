"""Held requests: each waits for its gate, its deadline or its client going away.

A blocking playlist reload or a preload-hinted part is held until the window has
what it asks for. Every LL-HLS viewer makes five such requests a second, so what a
hold costs is paid thousands of times a second. `asyncio.wait(..., timeout=...)` per
request builds sets, a timer and two callbacks each time; here a held request costs
one future, one callback on the shared gate and a place in a time slot:

- the gate (one future per awaited thing, `window.Gate`) wakes every holder of it when
  it resolves, in the same loop iteration;
- deadlines are kept in slots of `tick_s`, and one timer per `Holds` (running only
  while something is held) answers the expired slots: a hold ends at most `tick_s`
  after its deadline;
- clients that went away are noticed by a scan every `disconnect_poll_s` (the front
  of the port, or aiohttp's handler cancellation when a runner has it, ends such a
  hold at once instead).
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Callable
from typing import Any


class Outcome(enum.Enum):
    READY = "ready"  # the gate resolved: what was asked for exists (or the window ended)
    TIMEOUT = "timeout"  # the deadline passed first
    GONE = "gone"  # the client disconnected


class _Held:
    __slots__ = ("alive", "slot", "waiter")

    def __init__(self, waiter: asyncio.Future[Outcome], alive: Callable[[], bool], slot: int):
        self.waiter = waiter
        self.alive = alive
        self.slot = slot

    def wake(self, _gate: Any = None) -> None:
        if not self.waiter.done():
            self.waiter.set_result(Outcome.READY)

    def end(self, outcome: Outcome) -> None:
        if not self.waiter.done():
            self.waiter.set_result(outcome)


class Holds:
    """Every request held on one event loop, with one timer for all of them."""

    def __init__(self, *, tick_s: float = 0.05, disconnect_poll_s: float = 1.0) -> None:
        self._tick = tick_s
        self._poll = disconnect_poll_s
        self._slots: dict[int, set[_Held]] = {}
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._next_poll = 0.0

    @property
    def count(self) -> int:
        return self._count

    async def wait(
        self, gate: asyncio.Future[None], timeout: float, alive: Callable[[], bool]
    ) -> Outcome:
        """Hold until `gate` resolves, `timeout` seconds pass, or `alive()` turns false."""
        if gate.done():
            return Outcome.READY
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = math.ceil((now + timeout) / self._tick)
        held = _Held(loop.create_future(), alive, slot)
        members = self._slots.get(slot)
        if members is None:
            members = self._slots[slot] = set()
        members.add(held)
        self._count += 1
        if self._timer is None:
            self._next_poll = now + self._poll
            self._schedule(loop, min(slot * self._tick, self._next_poll))
        elif slot * self._tick < self._timer_at:  # a shorter hold than any before it
            self._timer.cancel()
            self._schedule(loop, slot * self._tick)
        gate.add_done_callback(held.wake)
        try:
            return await held.waiter
        finally:
            if not gate.done():
                gate.remove_done_callback(held.wake)
            members = self._slots.get(held.slot)
            if members is not None:
                members.discard(held)
                if not members:
                    del self._slots[held.slot]
            self._count -= 1

    def _on_tick(self) -> None:
        self._timer = None
        if not self._slots:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        current = math.floor(now / self._tick + 1e-9)
        for slot in [s for s in self._slots if s <= current]:
            for held in self._slots.pop(slot):
                held.end(Outcome.TIMEOUT)
        if now >= self._next_poll:
            self._next_poll = now + self._poll
            for members in self._slots.values():
                for held in members:
                    if not held.alive():
                        held.end(Outcome.GONE)
        if self._slots:
            soonest = min(min(self._slots) * self._tick, self._next_poll)
            self._schedule(loop, max(soonest, now + self._tick))

    def _schedule(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._timer_at = when
        self._timer = loop.call_at(when, self._on_tick)
