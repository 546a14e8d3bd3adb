"""Assets: the recordings of sessions."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from live.store.models import Asset, AssetStatus


class AssetStore(abc.ABC):
    """Recordings, from `recording` to `ready` or `failed`."""

    @abc.abstractmethod
    async def create_asset(self, asset: Asset) -> Asset:
        """Store a new asset; ValueError if the id is taken."""

    @abc.abstractmethod
    async def get_asset(self, asset_id: str) -> Asset | None: ...

    @abc.abstractmethod
    async def list_assets(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        livestream_id: str | None = None,
        statuses: tuple[AssetStatus, ...] | None = None,
        created_before: datetime | None = None,
    ) -> tuple[list[Asset], int]:
        """Newest first, filtered by livestream, by status (start-up finds the
        unfinished ones) and by age (retention)."""

    @abc.abstractmethod
    async def update_asset(self, asset_id: str, **changes: Any) -> Asset | None:
        """Change `models.ASSET_MUTABLE` fields (status, error, duration, size)."""

    @abc.abstractmethod
    async def delete_asset(self, asset_id: str) -> bool:
        """Delete the asset; a session that named it no longer does, in the same write."""
