"""Publish sessions: written by the node that holds the publisher, read as history."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from live.store.models import Session


class SessionStore(abc.ABC):
    """A livestream's publish sessions."""

    @abc.abstractmethod
    async def create_session(self, session: Session) -> Session: ...

    @abc.abstractmethod
    async def update_session(self, session_id: str, **changes: Any) -> Session | None:
        """Change `models.SESSION_MUTABLE` fields (codecs, counters, asset id)."""

    @abc.abstractmethod
    async def end_session(
        self, session_id: str, ended_at: datetime, end_reason: str, **final_fields: Any
    ) -> Session | None:
        """Close the session, with its final counters in the same write."""

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
