"""Uploads: files on their way into assets, with who is writing each one."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from live.store.models import Upload


class UploadStore(abc.ABC):
    """At most one upload per asset; at most one writer per upload at a time, on
    any node (a claim that lapses, so a crashed writer does not block it forever)."""

    @abc.abstractmethod
    async def create_upload(self, upload: Upload) -> Upload | None:
        """Store a new upload. An asset has one upload at a time: a previous one of
        the same asset is removed in the same write and answered (its bytes are
        the caller's to drop); None if there was none. ValueError if the id is taken."""

    @abc.abstractmethod
    async def get_upload(self, upload_id: str) -> Upload | None: ...

    @abc.abstractmethod
    async def claim_upload(
        self, upload_id: str, holder: str, until: datetime, now: datetime
    ) -> Upload | None:
        """Become its writer until `until`, if nobody else is (or their claim
        lapsed before `now`). Answers the upload, whose `holder` says who won, or
        None for an unknown upload."""

    @abc.abstractmethod
    async def save_upload(
        self, upload_id: str, holder: str, *, offset: int, write: dict[str, Any], until: datetime
    ) -> Upload | None:
        """Record progress and extend the claim, if `holder` still holds it; None
        otherwise (the upload is gone, or another writer took it over)."""

    @abc.abstractmethod
    async def release_upload(self, upload_id: str, holder: str) -> None:
        """Give up the claim, if `holder` holds it."""

    @abc.abstractmethod
    async def delete_upload(self, upload_id: str) -> Upload | None:
        """Remove it (finished, terminated or expired); the removed upload, or None."""

    @abc.abstractmethod
    async def list_expired_uploads(self, now: datetime, limit: int = 100) -> list[Upload]:
        """Uploads whose `expires_at` is before `now`, soonest-expired first."""
