"""Publish sessions: written by the node that holds the publisher, read as history.

Fencing: in a cluster the node that owns a stream holds a lease whose token (the
fence) grows with every new owner. Session writes may carry it; the store keeps,
per livestream, the highest fence seen on a session write and refuses a write with
a lower one (`StaleFence`, nothing changed), so a node that lost the lease without
knowing it cannot overwrite the new owner's session. `fence=None` is unchecked:
a single node has no lease.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from live.store.models import Session


class SessionStore(abc.ABC):
    """A livestream's publish sessions."""

    @abc.abstractmethod
    async def create_session(self, session: Session, *, fence: int | None = None) -> Session:
        """Store a new session. Raises `StaleFence` if `fence` is older than the
        stream's newest, ValueError if the id is taken."""

    @abc.abstractmethod
    async def update_session(
        self, session_id: str, *, fence: int | None = None, **changes: Any
    ) -> Session | None:
        """Change `models.SESSION_MUTABLE` fields (codecs, counters, asset id).
        Raises `StaleFence` as `create_session` does."""

    async def end_session(
        self,
        session_id: str,
        ended_at: datetime,
        end_reason: str,
        *,
        fence: int | None = None,
        **final_fields: Any,
    ) -> Session | None:
        """Close the session, with its final counters in the same write."""
        return await self.update_session(
            session_id, fence=fence, ended_at=ended_at, end_reason=end_reason, **final_fields
        )

    @abc.abstractmethod
    async def get_session(self, session_id: str) -> Session | None: ...

    @abc.abstractmethod
    async def list_sessions(
        self, livestream_id: str, page: int = 1, page_size: int = 20
    ) -> tuple[list[Session], int]:
        """A livestream's sessions, newest first."""

    @abc.abstractmethod
    async def list_open_sessions(self) -> list[Session]:
        """Sessions without `ended_at`: after a crash, start-up closes these."""
