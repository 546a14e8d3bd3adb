"""An event nobody subscribed to makes no INFO line; one with subscribers does."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from live.events.outbox import WebhookOutbox
from live.store import SqliteStore
from live.urls import PublicUrls


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    instance = await SqliteStore.open(tmp_path)
    try:
        yield instance
    finally:
        await instance.close()


async def test_unsubscribed_events_are_logged_at_debug_only(store, caplog):
    outbox = WebhookOutbox(
        store, PublicUrls("http://live.test", "rtmp://live.test/live", "srt://live.test:9000")
    )
    ls = await store.create_livestream(name="x")
    with caplog.at_level(logging.INFO, logger="live.events.outbox"):
        await outbox.emit("livestream.banned", ls, None)
    assert [r for r in caplog.records if "deliveries queued" in r.getMessage()] == []
    await store.create_webhook("http://hook.test/", ["livestream.unbanned"], "whsec_test")
    with caplog.at_level(logging.INFO, logger="live.events.outbox"):
        await outbox.emit("livestream.unbanned", ls, None)
    (line,) = [r for r in caplog.records if "deliveries queued" in r.getMessage()]
    assert line.levelno == logging.INFO and "1 deliveries queued" in line.getMessage()
