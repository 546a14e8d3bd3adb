"""The ban sweeper sleeps until the earliest `until`, and a new ban wakes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from waiting import eventually

from live.events.ban_expiry import MIN_SLEEP_S, BanExpiry
from live.events.outbox import WebhookOutbox
from live.store import SqliteStore
from live.store.models import Livestream, Session
from live.store.times import utcnow
from live.urls import PublicUrls


class Announced:
    """StreamEvents that records what was emitted."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def emit(self, event: str, livestream: Livestream, session: Session | None) -> None:
        self.events.append((event, livestream.id))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    instance = await SqliteStore.open(tmp_path)
    yield instance
    await instance.close()


async def test_next_ban_expiry_is_the_earliest_until(store: SqliteStore) -> None:
    assert await store.next_ban_expiry() is None
    now = utcnow()
    forever = await store.create_livestream(name="forever")
    await store.ban(forever.id, "spam")
    assert await store.next_ban_expiry() is None  # a ban for good never runs out
    late = await store.create_livestream(name="late")
    soon = await store.create_livestream(name="soon")
    await store.ban(late.id, None, now + timedelta(hours=2))
    await store.ban(soon.id, None, now + timedelta(minutes=5))
    assert await store.next_ban_expiry() == now + timedelta(minutes=5)
    await store.unban(soon.id)
    assert await store.next_ban_expiry() == now + timedelta(hours=2)


async def test_sleep_time_runs_to_the_earliest_until_within_the_rescan(
    store: SqliteStore,
) -> None:
    now = utcnow()
    expiry = BanExpiry(store, Announced(), rescan_s=15.0, clock=lambda: now)
    assert await expiry.sleep_time() == 15.0  # nothing to wait for: the slow rescan
    ls = await store.create_livestream(name="x")
    await store.ban(ls.id, None, now + timedelta(hours=1))
    assert await expiry.sleep_time() == 15.0
    await store.ban(ls.id, None, now + timedelta(seconds=2.5))
    assert await expiry.sleep_time() == pytest.approx(2.5)
    await store.ban(ls.id, None, now - timedelta(seconds=1))  # passed, not yet lifted
    assert await expiry.sleep_time() == MIN_SLEEP_S


async def test_a_new_ban_wakes_the_sweeper_which_lifts_it_at_its_until(
    store: SqliteStore,
) -> None:
    announced = Announced()
    # A rescan far beyond the test: only the wake and the timer can lift the ban.
    expiry = BanExpiry(store, announced, rescan_s=600.0)
    expiry.start()
    try:
        await asyncio.sleep(0.1)  # the sweeper now sleeps for the whole rescan
        ls = await store.create_livestream(name="x")
        until: datetime = utcnow() + timedelta(seconds=0.5)
        banned = await store.ban(ls.id, "cool down", until)
        assert banned is not None
        expiry.notice("livestream.banned", banned)

        # The announcement comes after the store's lift: wait for it, not for the
        # lift (a look between the two would see the lift and no event yet).
        await eventually(lambda: announced.events, 5.0)
        assert utcnow() >= until  # not before its time
        assert announced.events == [("livestream.unbanned", ls.id)]
        shown = await store.get_livestream(ls.id)
        assert shown is not None and shown.banned_at is None
    finally:
        await expiry.stop()


async def test_other_events_and_bans_for_good_do_not_wake_it(store: SqliteStore) -> None:
    expiry = BanExpiry(store, Announced())
    ls = await store.create_livestream(name="x")
    for_good = await store.ban(ls.id, "spam")
    assert for_good is not None
    expiry.notice("livestream.banned", for_good)
    expiry.notice("livestream.live", ls)
    assert not expiry._wake.is_set()


async def test_the_outbox_tells_of_every_livestream_event(store: SqliteStore) -> None:
    seen: list[tuple[str, str]] = []
    outbox = WebhookOutbox(
        store,
        PublicUrls("http://live.test", "rtmp://live.test/live", "srt://live.test:9000"),
        on_event=lambda event, livestream: seen.append((event, livestream.id)),
    )
    ls = await store.create_livestream(name="x")  # no webhook: told all the same
    await outbox.emit("livestream.banned", ls, None)
    await outbox.emit("livestream.unbanned", ls, None)
    assert seen == [("livestream.banned", ls.id), ("livestream.unbanned", ls.id)]
