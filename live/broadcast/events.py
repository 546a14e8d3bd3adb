"""What the life of a stream tells the rest of the system (webhooks, recordings).

The manager awaits `emit`, so an implementation that must not lose an event (the
webhook outbox) can write it durably before the manager goes on.
"""

from __future__ import annotations

from typing import Protocol

from live.control import LiveSession
from live.store.models import Livestream, Session

CONNECTED = "livestream.connected"  # a publisher was accepted
LIVE = "livestream.live"  # the first part of the session is playable
DISCONNECTED = "livestream.disconnected"  # the publisher's connection ended
IDLE = "livestream.idle"  # the session ended


class StreamEvents(Protocol):
    async def emit(
        self,
        event: str,
        livestream: Livestream,
        session: Session | None,
        live: LiveSession | None = None,
    ) -> None:
        """`live`: the session in progress as only its node knows it (health,
        warnings), when the event comes from a live stream."""


class NoStreamEvents:
    """Events go nowhere: for a server without webhooks, and for tests."""

    async def emit(
        self,
        event: str,
        livestream: Livestream,
        session: Session | None,
        live: LiveSession | None = None,
    ) -> None:
        return None
