"""The seam between the REST API and the running streams.

The API answers from the store, but a few things only the running process knows
(the live session's health) and a few actions must reach a publisher's connection
(disconnect on ban, delete, key reset). The API depends on this protocol, not on
the Broadcast machinery, so it can be tested with a fake and, in a cluster, be
backed by a remote node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from live.store.models import Session


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A session in progress: its record plus what only the running process knows."""

    session: Session
    reconnecting: bool = False
    ingest_health: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class LiveControl(Protocol):
    def current_session(self, livestream_id: str) -> LiveSession | None:
        """The session in progress, or None when the stream has no publisher here."""

    async def disconnect(self, livestream_id: str, end_reason: str) -> bool:
        """Close the live publisher of this stream, if any, ending its session with
        `end_reason` (banned, deleted, key_reset, kicked). True if one was closed."""


class NoLiveControl:
    """A LiveControl with nothing live: for tests of the API alone."""

    def current_session(self, livestream_id: str) -> LiveSession | None:
        return None

    async def disconnect(self, livestream_id: str, end_reason: str) -> bool:
        return False
