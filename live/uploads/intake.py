"""The uploads room's face to the API (`live.api.assets.AssetIntake`) and to the
rest of the server: what happens to an upload or import asset until its file is
complete in storage, and the hand-over then.

- `accept`: a new asset's poster is kept (`assets/{id}/poster_source`); an import
  starts fetching.
- `put_url`: on S3, a presigned PUT straight to the bucket when the asset declared
  a size the bucket takes in one PutObject, so big files never pass through a node.
- `arrived`: such a PUT does not tell the server it finished; the server looks for
  the object (a HEAD in the bucket, its size the one declared) when the asset is
  read (`GET /v1/assets/{id}`) and on the sweeper's rounds.
- Complete: the asset goes `pending` and `on_source_ready` gets it (the job queue);
  an import that fails goes `failed` with its error, announced as `asset.failed`.
- `start`: the import queue is taken up (`importer.py`: one node fetches an import
  at a time, another takes over from a dead one), and `resume` hands on what a
  previous process left.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from live.recording.layout import POSTER_SOURCE, asset_prefix
from live.storage.base import Storage
from live.store.base import Store
from live.store.models import Asset
from live.store.times import utcnow
from live.uploads.importer import Importer, ImportLeases
from live.uploads.imports import ImportSettings, OriginFetcher
from live.uploads.receiver import source_key

log = logging.getLogger(__name__)

MAX_PRESIGNED_PUT = 5 * 1024**3  # one PutObject
PRESIGN_MIN_S = 60
_PAGE = 200

SourceReady = Callable[[Asset], Awaitable[None]]
Announce = Callable[[str, Asset], Awaitable[None]]


class PosterImage(Protocol):
    """The poster an uploader sent (`live.api.asset_requests.Poster`)."""

    data: bytes
    kind: str  # "jpeg" or "png"


class UploadIntake:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        *,
        max_upload_bytes: int,
        imports: ImportSettings,
        on_source_ready: SourceReady,
        announce: Announce,
        node_id: str = "single",
        leases: ImportLeases | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.max_upload_bytes = max_upload_bytes
        self.on_source_ready = on_source_ready
        self.announce = announce
        self.importer = Importer(
            store,
            OriginFetcher(storage, imports),
            node_id=node_id,
            leases=leases or ImportLeases(poll_s=None),
            on_fetched=self.source_received,
            on_failed=self.failed,
        )
        self._arriving: set[str] = set()

    # -- AssetIntake ------------------------------------------------------------------

    async def accept(self, asset: Asset, poster: PosterImage | None) -> None:
        if poster is not None:
            await self.storage.put(
                asset_prefix(asset.id) + POSTER_SOURCE,
                poster.data,
                content_type=f"image/{poster.kind}",
            )
        if asset.source == "url":
            await self.importer.submit(asset)

    def _presignable(self, asset: Asset) -> bool:
        size = asset.declared_size_bytes
        return (
            asset.source == "upload"
            and asset.status == "empty"
            and size is not None
            and size <= min(self.max_upload_bytes, MAX_PRESIGNED_PUT)
        )

    async def put_url(self, asset: Asset) -> str | None:
        if not self._presignable(asset) or asset.declared_size_bytes is None:
            return None
        expires = asset.upload_expires_at
        seconds = int((expires - utcnow()).total_seconds()) if expires else 3600
        return await self.storage.presigned_put(
            source_key(asset.id), asset.declared_size_bytes, max(PRESIGN_MIN_S, seconds)
        )

    async def arrived(self, asset: Asset) -> Asset:
        """An `empty` asset whose file may have been PUT to the bucket directly:
        the asset as it now stands (`pending` once the object of the declared size
        is there)."""
        if not self._presignable(asset) or asset.id in self._arriving:
            return asset
        self._arriving.add(asset.id)
        try:
            size = await self.storage.size(source_key(asset.id))
            if size is None or size != asset.declared_size_bytes:
                return asset
            current = await self.store.get_asset(asset.id)
            if current is None or current.status != "empty":  # another request saw it first
                return current or asset
            return await self.source_received(current, size)
        finally:
            self._arriving.discard(asset.id)

    # -- the hand-over ----------------------------------------------------------------

    async def source_received(self, asset: Asset, size: int) -> Asset:
        """The file is complete in storage: `pending`, and on to processing."""
        updated = await self.store.update_asset(asset.id, status="pending", upload_expires_at=None)
        if updated is None:  # deleted meanwhile
            await self.storage.delete_prefix(asset_prefix(asset.id))
            return asset
        log.info("asset %s: source received (%d bytes)", asset.id, size)
        await self.on_source_ready(updated)
        return updated

    async def failed(self, asset: Asset, error: dict[str, str]) -> None:
        updated = await self.store.update_asset(asset.id, status="failed", error=error)
        if updated is not None:
            await self.announce("asset.failed", updated)

    # -- rounds ---------------------------------------------------------------------

    async def _all(self, status: str) -> list[Asset]:
        found: list[Asset] = []
        page = 1
        while True:
            items, total = await self.store.list_assets(page, _PAGE, statuses=(status,))  # type: ignore[arg-type]
            found += items
            if page * _PAGE >= total or not items:
                return found
            page += 1

    async def start(self) -> None:
        """Take up the import queue, then hand on what a previous process left."""
        await self.importer.start()
        await self.resume()

    async def resume(self) -> None:
        """At start-up: an upload or import whose file made it to storage is handed on
        again (a crash may have come between the two; handing on twice queues one
        job), and an import without its file is queued, which leaves one that a
        live node holds as it is."""
        for asset in await self._all("pending"):
            if asset.source == "recording":
                continue
            size = await self.storage.size(source_key(asset.id))
            if size is not None:
                await self.on_source_ready(asset)
            elif asset.source == "url":
                await self.importer.submit(asset)

    async def check_arrivals(self) -> None:
        """The sweeper's round: presigned PUTs that landed since."""
        for asset in await self._all("empty"):
            try:
                await self.arrived(asset)
            except Exception:
                log.warning("could not check the upload of %s", asset.id, exc_info=True)

    async def close(self) -> None:
        await self.importer.close()
