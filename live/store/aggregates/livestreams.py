"""Livestreams with their stream keys, playback ids and bans."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from live.store.ids import new_id, new_playback_id, new_stream_key
from live.store.models import Livestream, Status
from live.store.times import utcnow


class LivestreamStore(abc.ABC):
    """A livestream is found by id, by stream key (ingest) and by playback id (viewers)."""

    async def create_livestream(
        self,
        *,
        name: str,
        record: bool = True,
        latency_mode: str = "low",
        transcode: str = "auto",
        reconnect_window_s: int = 10,
        max_duration_s: int = 43200,
        srt_passphrase: str | None = None,
    ) -> Livestream:
        """Create a livestream with a fresh id, stream key and playback id."""
        now = utcnow()
        livestream = Livestream(
            id=new_id("ls"),
            name=name,
            stream_key=new_stream_key(),
            playback_id=new_playback_id(),
            record=record,
            latency_mode=latency_mode,  # type: ignore[arg-type]
            transcode=transcode,  # type: ignore[arg-type]
            reconnect_window_s=reconnect_window_s,
            max_duration_s=max_duration_s,
            srt_passphrase=srt_passphrase,
            created_at=now,
            updated_at=now,
        )
        await self._insert_livestream(livestream)
        return livestream

    @abc.abstractmethod
    async def _insert_livestream(self, livestream: Livestream) -> None:
        """Store a new livestream, findable by its stream key and playback id."""

    @abc.abstractmethod
    async def get_livestream(self, livestream_id: str) -> Livestream | None: ...

    @abc.abstractmethod
    async def get_livestream_by_stream_key(self, stream_key: str) -> Livestream | None:
        """The ingest's authorisation lookup."""

    @abc.abstractmethod
    async def get_livestream_by_playback_id(self, playback_id: str) -> Livestream | None:
        """The playback side's lookup."""

    @abc.abstractmethod
    async def list_livestreams(
        self,
        page: int = 1,
        page_size: int = 20,
        status: Status | None = None,
        *,
        now: datetime | None = None,
    ) -> tuple[list[Livestream], int]:
        """Newest first. `status` filters as `Livestream.status(now)` would."""

    @abc.abstractmethod
    async def update_livestream(self, livestream_id: str, **changes: Any) -> Livestream | None:
        """Change settings (`models.LIVESTREAM_SETTINGS`); bumps `updated_at`."""

    @abc.abstractmethod
    async def delete_livestream(self, livestream_id: str) -> bool:
        """Delete the livestream and its lookups. Its sessions stay: assets refer to them."""

    @abc.abstractmethod
    async def set_live(self, livestream_id: str, live: bool) -> bool:
        """Runtime flag "a publisher is on". Not a settings change: `updated_at`
        is left alone. False if the id is unknown."""

    @abc.abstractmethod
    async def reset_stream_key(self, livestream_id: str) -> str | None:
        """Replace the stream key; the old one stops matching at the instant the new
        one starts (there is no moment when both, or neither, match)."""

    @abc.abstractmethod
    async def ban(
        self, livestream_id: str, reason: str | None = None, until: datetime | None = None
    ) -> Livestream | None:
        """Ban now (again, if already banned), until `until` or, if None, for good."""

    @abc.abstractmethod
    async def unban(self, livestream_id: str) -> Livestream | None: ...

    @abc.abstractmethod
    async def lift_expired_bans(self, now: datetime | None = None) -> list[Livestream]:
        """Clear every ban whose `until` has passed; return the livestreams this call
        cleared (each exactly once, even with several callers racing)."""

    @abc.abstractmethod
    async def next_ban_expiry(self) -> datetime | None:
        """The earliest `until` of the bans that have one (passed or not), or None."""
