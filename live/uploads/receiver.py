"""Receiving an asset's file: the uploads in progress over the store and storage.

One `Upload` record per file on its way in (tus or PUT) holds the offset and the
storage's partial write, so a restarted process, or any node of a cluster, takes
the next piece. One writer at a time: a PATCH claims the upload for a while and
keeps renewing the claim while bytes come; a second PATCH meanwhile is refused
(423) rather than interleaved. When the last byte is in, the storage makes the
object `assets/{id}/source` and `on_received` hands the asset on.

Refusals are `UploadRefused` with the HTTP status and API error code the routes
answer with; nothing here knows HTTP otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from live.recording.layout import SOURCE, asset_prefix
from live.storage.base import PartialWrite, Storage
from live.storage.files import read_file_chunks, remove_file
from live.store.base import Store
from live.store.ids import new_id
from live.store.models import Asset, Upload, UploadKind
from live.store.times import utcnow
from live.uploads.refusal import UploadRefused
from live.uploads.tus import Checksum

log = logging.getLogger(__name__)

# A writer's claim lasts this long and is renewed at a third of it while bytes come.
CLAIM_S = 60.0

OnReceived = Callable[[Asset, int], Awaitable[object]]


class _Gone(Exception):
    """The upload was removed (terminated, expired, replaced) or taken over while
    this writer was at it."""


def source_key(asset_id: str) -> str:
    return asset_prefix(asset_id) + SOURCE


def too_large(limit: int, what: str = "The file") -> UploadRefused:
    return UploadRefused(413, "payload_too_large", f"{what} is over the limit of {limit} bytes")


async def _at_most(chunks: AsyncIterable[bytes], limit: int, what: str) -> AsyncIterator[bytes]:
    """`chunks`, cut with 413 as soon as they pass `limit` bytes (the bytes before
    the limit are passed on and kept)."""
    size = 0
    async for chunk in chunks:
        if size + len(chunk) > limit:
            if limit > size:
                yield chunk[: limit - size]
            raise too_large(limit, what)
        size += len(chunk)
        yield chunk


class UploadReceiver:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        *,
        max_upload_bytes: int,
        on_received: OnReceived,
        claim_s: float = CLAIM_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.storage = storage
        self.max_upload_bytes = max_upload_bytes
        self.on_received = on_received
        self.claim = timedelta(seconds=claim_s)
        self.clock = clock

    # -- creating -------------------------------------------------------------------

    async def writable_asset(self, asset_id: str) -> Asset:
        """The asset a file may be sent to: an upload asset still `empty`."""
        asset = await self.store.get_asset(asset_id)
        if asset is None:
            raise UploadRefused(404, "asset_not_found", f"No asset with id {asset_id}")
        if asset.source != "upload":
            kind = "a recording" if asset.source == "recording" else "an import by URL"
            raise UploadRefused(
                409, "asset_not_uploadable", f"{asset_id} is {kind}: it takes no upload"
            )
        if asset.status != "empty":
            raise UploadRefused(409, "asset_has_file", f"{asset_id} already has its file")
        if asset.upload_expires_at is not None and asset.upload_expires_at <= self.clock():
            raise UploadRefused(
                410, "upload_expired", f"The upload window of {asset_id} has closed"
            )
        return asset

    async def create(
        self,
        asset_id: str,
        length: int | None,
        metadata: Mapping[str, str] | None = None,
        *,
        kind: UploadKind = "tus",
    ) -> Upload:
        """A new upload for the asset (replacing an unfinished one, whose bytes go)."""
        if length is not None and length > self.max_upload_bytes:
            raise too_large(self.max_upload_bytes)
        asset = await self.writable_asset(asset_id)
        write = await self.storage.begin_write(source_key(asset_id))
        upload = Upload(
            asset_id=asset_id,
            expires_at=asset.upload_expires_at or self.clock() + timedelta(days=1),
            kind=kind,
            length=length,
            metadata=dict(metadata or {}),
            write=dataclasses.asdict(write),
        )
        replaced = await self.store.create_upload(upload)
        if replaced is not None:
            await self._drop_bytes(replaced)
        return upload

    async def get(self, upload_id: str) -> Upload:
        """An upload in progress: 404 unknown (or finished, or terminated), 410 expired."""
        upload = await self.store.get_upload(upload_id)
        if upload is None:
            raise UploadRefused(404, "upload_not_found", f"No upload with id {upload_id}")
        if upload.expires_at <= self.clock():
            raise UploadRefused(410, "upload_expired", f"Upload {upload_id} has expired")
        return upload

    # -- receiving ------------------------------------------------------------------

    async def receive(
        self,
        upload_id: str,
        offset: int,
        chunks: AsyncIterable[bytes],
        *,
        checksum: Checksum | None = None,
        complete_at_end: bool = False,
    ) -> Upload:
        """Add `chunks` at `offset` (409 unless it is where the upload stands). What
        arrives is kept even if the connection drops. The upload completes when it
        reaches its length, or, with `complete_at_end` (a PUT), when `chunks` ends."""
        holder = new_id("writer")
        now = self.clock()
        upload = await self.store.claim_upload(upload_id, holder, now + self.claim, now)
        if upload is None:
            raise UploadRefused(404, "upload_not_found", f"No upload with id {upload_id}")
        if upload.holder != holder:
            raise UploadRefused(423, "upload_locked", "Another request is writing this upload")
        renewing = asyncio.ensure_future(self._keep_claim(upload_id, holder))
        try:
            if upload.expires_at <= now:
                raise UploadRefused(410, "upload_expired", f"Upload {upload_id} has expired")
            await self.writable_asset(upload.asset_id)
            if offset != upload.offset:
                raise UploadRefused(
                    409,
                    "upload_offset_mismatch",
                    f"Upload-Offset {offset} is not the upload's offset {upload.offset}",
                    {"Upload-Offset": str(upload.offset)},
                )
            if upload.length is not None:
                body = _at_most(chunks, upload.length - upload.offset, "The chunk")
            else:
                body = _at_most(chunks, self.max_upload_bytes - upload.offset, "The file")
            try:
                upload = await self._append(upload, holder, body, checksum)
            except BaseException:
                # the last byte may have come before the failure (a chunk running
                # past the end, a client hanging up once done): then it is complete
                if not complete_at_end:
                    await asyncio.shield(self._complete_if_whole(upload_id))
                raise
            if upload.offset == upload.length or complete_at_end:
                await self._complete(upload)  # still holding it: it completes once
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await asyncio.shield(self.store.release_upload(upload_id, holder))
        return upload

    async def _keep_claim(self, upload_id: str, holder: str) -> None:
        while True:
            await asyncio.sleep(self.claim.total_seconds() / 3)
            now = self.clock()
            await self.store.claim_upload(upload_id, holder, now + self.claim, now)

    async def _append(
        self, upload: Upload, holder: str, body: AsyncIterable[bytes], checksum: Checksum | None
    ) -> Upload:
        latest = PartialWrite(**upload.write)

        async def save(write: PartialWrite) -> None:
            nonlocal latest
            latest = write
            saved = await self.store.save_upload(
                upload.id, holder, offset=write.size, write=dataclasses.asdict(write),
                until=self.clock() + self.claim,
            )  # fmt: skip
            if saved is None:
                raise _Gone(upload.id)

        spooled: Path | None = None
        try:
            if checksum is not None:  # verified whole before a byte is kept
                spooled = await self._spool_and_verify(body, checksum)
                body = read_file_chunks(spooled)
            written = await self.storage.append(latest, body, save)
        except _Gone:
            # terminated, expired or replaced meanwhile: what we wrote is nobody's
            with contextlib.suppress(Exception):
                await self.storage.abort_write(latest)
            raise UploadRefused(
                404, "upload_not_found", f"Upload {upload.id} was removed while it was written"
            ) from None
        finally:
            if spooled is not None:
                await remove_file(spooled)
        return dataclasses.replace(
            upload, offset=written.size, write=dataclasses.asdict(written), holder=None
        )

    async def _spool_and_verify(self, body: AsyncIterable[bytes], checksum: Checksum) -> Path:
        """The chunk to a scratch file, hashed on the way; 460 if the digest differs."""
        path = self.storage.scratch_dir() / f"chunk-{new_id('c')}"
        digest = checksum.verifier()
        handle = await asyncio.to_thread(open, path, "wb")
        try:
            try:
                async for piece in body:
                    digest.update(piece)
                    await asyncio.to_thread(handle.write, piece)
            finally:
                await asyncio.to_thread(handle.close)
        except BaseException:
            await remove_file(path)
            raise
        if digest.digest() != checksum.digest:
            await remove_file(path)
            raise UploadRefused(
                460, "checksum_mismatch", "Upload-Checksum does not match: the chunk is dropped"
            )
        return path

    async def _complete_if_whole(self, upload_id: str) -> None:
        upload = await self.store.get_upload(upload_id)
        if upload is not None and upload.offset == upload.length:
            await self._complete(upload)

    async def _complete(self, upload: Upload) -> None:
        """Every byte is in: the object is made, the upload forgotten, the asset handed on."""
        size = await self.storage.finish_write(PartialWrite(**upload.write))
        await self.store.delete_upload(upload.id)
        asset = await self.store.get_asset(upload.asset_id)
        if asset is None:  # deleted while its file came
            await self.storage.delete_many([source_key(upload.asset_id)])
            return
        await self.on_received(asset, size)

    # -- ending ---------------------------------------------------------------------

    async def terminate(self, upload_id: str) -> None:
        """tus termination: the upload and its bytes go; 404 if unknown."""
        upload = await self.store.delete_upload(upload_id)
        if upload is None:
            raise UploadRefused(404, "upload_not_found", f"No upload with id {upload_id}")
        await self._drop_bytes(upload)

    async def drop(self, upload: Upload) -> None:
        """Forget an upload that will not complete (a PUT cut short)."""
        if await self.store.delete_upload(upload.id) is not None:
            await self._drop_bytes(upload)

    async def expire_due(self) -> int:
        """Drop the uploads whose time is up, with their bytes; how many."""
        count = 0
        for upload in await self.store.list_expired_uploads(self.clock()):
            if await self.store.delete_upload(upload.id) is not None:
                await self._drop_bytes(upload)
                count += 1
        return count

    async def _drop_bytes(self, upload: Upload) -> None:
        try:
            await self.storage.abort_write(PartialWrite(**upload.write))
        except Exception:  # the sweeper or a bucket lifecycle rule gets another chance
            log.warning("could not drop the bytes of upload %s", upload.id, exc_info=True)
