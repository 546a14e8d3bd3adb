"""The webhook outbox writer: turns an event into pending deliveries, durably.

`emit` returns only after the deliveries are in the store, so an event cannot be
lost between the action that caused it and its delivery, not even across a crash
or restart; the dispatcher sends them later. It is the `StreamEvents` the stream
manager emits through, and the API's way to announce bans.

For other producers (recordings): `await outbox.emit_asset("asset.ready", asset_json)`
with the asset as API.md shows it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any

from live.api.serialize import livestream_json, session_json
from live.control import LiveControl, LiveSession, NoLiveControl
from live.store.base import Store
from live.store.ids import new_id
from live.store.models import WEBHOOK_EVENTS, Livestream, Session
from live.store.times import to_rfc3339, utcnow
from live.urls import PublicUrls

log = logging.getLogger(__name__)

# Fields that must never leave in a payload, whatever produced the object.
SECRET_FIELDS = frozenset({"stream_key", "srt_passphrase", "secret", "passphrase"})
# Events during which a publisher holds (or may come back to) the stream.
_LIVE_EVENTS = frozenset({"livestream.connected", "livestream.live", "livestream.disconnected"})


def scrub(value: Any) -> Any:
    """A copy of `value` with every secret field set to null, at any depth."""
    if isinstance(value, dict):
        return {k: None if k in SECRET_FIELDS else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


class _KnownSession(NoLiveControl):
    """Answers `current_session` with the one the event came with."""

    def __init__(self, live: LiveSession) -> None:
        self.live = live

    def current_session(self, livestream_id: str) -> LiveSession | None:
        return self.live if self.live.session.livestream_id == livestream_id else None


class WebhookOutbox:
    def __init__(
        self,
        store: Store,
        urls: PublicUrls,
        *,
        control: LiveControl | None = None,
        on_enqueued: Callable[[], None] | None = None,
        on_event: Callable[[str, Livestream], None] | None = None,
    ) -> None:
        self.store = store
        self.urls = urls
        self.control: LiveControl = control or NoLiveControl()
        self.on_enqueued = on_enqueued
        # Told of every livestream event, webhooks or not (a new ban wakes the sweeper
        # that lifts it when it runs out).
        self.on_event = on_event
        self.emitted = 0
        # Livestreams whose publisher was last reported gone: a second "disconnected"
        # without a "connected" between (the manager's kick and the connection's own
        # end racing) says nothing new and is dropped.
        self._disconnected: set[str] = set()

    async def emit(
        self,
        event: str,
        livestream: Livestream,
        session: Session | None,
        live: LiveSession | None = None,
    ) -> None:
        """A livestream event (StreamEvents): data is the livestream object as the API
        shows it to a read key (its `current_session` from `live`, which the stream
        manager passes), plus `session` (the publish session) when there is one."""
        if self.on_event is not None:
            self.on_event(event, livestream)
        if event == "livestream.disconnected":
            if livestream.id in self._disconnected:
                return
            self._disconnected.add(livestream.id)
        elif event in ("livestream.connected", "livestream.idle"):
            self._disconnected.discard(livestream.id)
        fresh = await self.store.get_livestream(livestream.id) or livestream
        if event in _LIVE_EVENTS:
            fresh = dataclasses.replace(fresh, live=True)
        elif event == "livestream.idle":
            fresh = dataclasses.replace(fresh, live=False)
        control = _KnownSession(live) if live is not None else self.control
        data = livestream_json(fresh, urls=self.urls, control=control, secrets=False)
        data["session"] = session_json(session) if session is not None else None
        await self.publish(event, data)

    async def emit_asset(self, event: str, asset: dict[str, Any]) -> str:
        """`asset.ready` / `asset.failed` with the asset object as data."""
        return await self.publish(event, asset)

    async def publish(self, event: str, data: dict[str, Any]) -> str:
        """Write one event to the outbox; returns its id. Unknown event names are a
        programming error, so they raise."""
        if event not in WEBHOOK_EVENTS:
            raise ValueError(f"unknown webhook event {event!r}")
        event_id = new_id("evt")
        now = utcnow()
        envelope = {
            "id": event_id,
            "event": event,
            "created_at": to_rfc3339(now),
            "data": scrub(data),
        }
        body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
        count = await self.store.enqueue_event(event_id, event, body, now)
        self.emitted += 1
        # Only events someone subscribed to are worth a line at INFO.
        log.log(
            logging.INFO if count else logging.DEBUG,
            "event %s %s: %d deliveries queued", event, event_id, count,
        )  # fmt: skip
        if count and self.on_enqueued is not None:
            self.on_enqueued()
        return event_id

    def wake(self) -> None:
        """Tell the dispatcher something is due now (a resend)."""
        if self.on_enqueued is not None:
            self.on_enqueued()
