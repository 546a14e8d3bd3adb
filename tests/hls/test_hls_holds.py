"""Held requests (`live/hls/holds.py`): woken by their gate, their deadline or a gone client."""

from __future__ import annotations

import asyncio

from live.hls.holds import Holds, Outcome


async def test_one_gate_wakes_every_holder_in_one_iteration() -> None:
    holds = Holds()
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    tasks = [asyncio.create_task(holds.wait(gate, 5, lambda: True)) for _ in range(100)]
    await asyncio.sleep(0)
    assert holds.count == 100
    gate.set_result(None)
    await asyncio.sleep(0)  # the gate's callbacks run
    await asyncio.sleep(0)  # the holders' tasks resume
    assert all(t.done() for t in tasks)
    assert {t.result() for t in tasks} == {Outcome.READY}
    assert holds.count == 0


async def test_a_resolved_gate_returns_at_once() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    gate.set_result(None)
    assert await Holds().wait(gate, 5, lambda: True) is Outcome.READY


async def test_deadline_answers_timeout() -> None:
    loop = asyncio.get_running_loop()
    holds = Holds(tick_s=0.02, disconnect_poll_s=10)
    gate: asyncio.Future[None] = loop.create_future()
    started = loop.time()
    assert await holds.wait(gate, 0.1, lambda: True) is Outcome.TIMEOUT
    waited = loop.time() - started
    assert 0.1 - 1e-3 <= waited < 1  # not early; long before the 10 s poll
    assert not gate.done()  # the shared gate is left alone for the others
    assert holds.count == 0


async def test_a_shorter_hold_after_a_longer_one_keeps_its_own_deadline() -> None:
    loop = asyncio.get_running_loop()
    holds = Holds(tick_s=0.02, disconnect_poll_s=10)
    gate: asyncio.Future[None] = loop.create_future()
    long = asyncio.create_task(holds.wait(gate, 5, lambda: True))
    await asyncio.sleep(0)
    started = loop.time()
    assert await holds.wait(gate, 0.1, lambda: True) is Outcome.TIMEOUT
    assert loop.time() - started < 1  # not the 5 s of the hold before it
    assert not long.done()
    gate.set_result(None)
    assert await long is Outcome.READY


async def test_a_gone_client_is_released_at_the_next_poll() -> None:
    loop = asyncio.get_running_loop()
    holds = Holds(tick_s=0.02, disconnect_poll_s=0.05)
    gate: asyncio.Future[None] = loop.create_future()
    connected = {"yes": True}
    gone = asyncio.create_task(holds.wait(gate, 5, lambda: connected["yes"]))
    staying = asyncio.create_task(holds.wait(gate, 5, lambda: True))
    await asyncio.sleep(0.01)
    connected["yes"] = False
    assert await asyncio.wait_for(gone, 1) is Outcome.GONE
    assert not staying.done() and holds.count == 1
    gate.set_result(None)
    assert await staying is Outcome.READY


async def test_a_cancelled_holder_leaves_the_gate_and_the_others_alone() -> None:
    loop = asyncio.get_running_loop()
    holds = Holds()
    gate: asyncio.Future[None] = loop.create_future()
    cancelled = asyncio.create_task(holds.wait(gate, 5, lambda: True))
    other = asyncio.create_task(holds.wait(gate, 5, lambda: True))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert not gate.cancelled() and holds.count == 1
    gate.set_result(None)
    assert await other is Outcome.READY
    assert holds.count == 0


async def test_the_timer_stops_when_nothing_is_held() -> None:
    loop = asyncio.get_running_loop()
    holds = Holds(tick_s=0.02, disconnect_poll_s=0.05)
    gate: asyncio.Future[None] = loop.create_future()
    task = asyncio.create_task(holds.wait(gate, 5, lambda: True))
    await asyncio.sleep(0)
    gate.set_result(None)
    await task
    await asyncio.sleep(0.12)  # one poll finds nothing held and schedules nothing more
    assert holds._timer is None
