"""Storage in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2...), with aiobotocore.

`s3://BUCKET/PREFIX`: every key is stored as PREFIX/KEY. The endpoint is AWS's
unless one is given (`LIVE_S3_ENDPOINT`, e.g. http://minio:9000, addressed
path-style); credentials and region come the standard way (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, or a profile or instance role).

One client (one connection pool) serves the whole process; it is made at the
first call, on the running loop, and `close` ends it. Objects are written whole
with PutObject, or with a multipart upload once a stream passes `part_size`
(aborted if anything fails, so no half object is ever visible).

A write in pieces (`begin_write`/`append`, a resumable upload) is a multipart
upload too, whose parts S3 wants at least 5 MiB but the last: pieces shorter than
a part wait in the bucket as small staging objects (`KEY.staged/OFFSET`), written
once each, until enough has come to make a part from them. The bucket rather than
a local disk, so that any node can take the next piece.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from live.storage.base import (
    STREAM_CHUNK,
    ObjectInfo,
    PartialWrite,
    SaveProgress,
    Storage,
    StorageError,
    batches,
    check_key,
    check_prefix,
    clip_range,
)

# S3 parts are at least 5 MiB, except the last; 8 MiB keeps a 10 000-part upload
# above 78 GiB.
PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024
# A presigned PUT is one PutObject, which S3 takes up to this size.
MAX_PUT_BYTES = 5 * 1024**3
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Storage(Storage):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = PART_SIZE,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.region = region or None
        self.part_size = part_size
        self._client: Any = None
        self._exit = contextlib.AsyncExitStack()
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:
        return f"S3Storage(s3://{self.bucket}/{self.prefix})"

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    config = AioConfig(
                        signature_version="s3v4",
                        s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                        retries={"mode": "standard", "max_attempts": 3},
                        connect_timeout=10,
                        read_timeout=60,
                    )
                    self._client = await self._exit.enter_async_context(
                        get_session().create_client(
                            "s3",
                            endpoint_url=self.endpoint_url,
                            region_name=self.region,
                            config=config,
                        )
                    )
        return self._client

    async def close(self) -> None:
        await self._exit.aclose()
        self._client = None

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def _error(self, error: Exception, action: str, key: str) -> StorageError:
        if isinstance(error, ClientError):
            detail = error.response.get("Error", {})
            reason = f"{detail.get('Code', 'error')}: {detail.get('Message', '')}".rstrip(": ")
        else:
            reason = str(error)
        return StorageError(f"storage: cannot {action} s3://{self.bucket}/{key}: {reason}")

    # -- writing --------------------------------------------------------------------

    async def put(
        self, key: str, data: bytes, *, content_type: str | None = None, durable: bool = True
    ) -> None:
        """A PutObject is durable when it is answered: `durable` asks nothing more."""
        name = self._name(key)
        extra = {"ContentType": content_type} if content_type else {}
        try:
            s3 = await self._s3()
            await s3.put_object(Bucket=self.bucket, Key=name, Body=data, **extra)
        except (ClientError, BotoCoreError) as error:
            raise self._error(error, "write", key) from error

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> int:
        """PutObject for what fits in one part; a multipart upload beyond."""
        name = self._name(key)
        buffer = bytearray()
        upload: _MultipartUpload | None = None
        size = 0
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= self.part_size:
                    if upload is None:
                        upload = await _MultipartUpload.start(
                            await self._s3(), self.bucket, name, content_type
                        )
                    await upload.add(bytes(buffer[: self.part_size]))
                    del buffer[: self.part_size]
            if upload is None:
                await self.put(key, bytes(buffer), content_type=content_type)
                return size
            if buffer:
                await upload.add(bytes(buffer))
            await upload.complete()
            return size
        except (ClientError, BotoCoreError) as error:
            if upload is not None:
                await upload.abort()
            raise self._error(error, "write", key) from error
        except BaseException:
            if upload is not None:
                await upload.abort()
            raise

    # -- reading --------------------------------------------------------------------

    async def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        return b"".join([chunk async for chunk in self.stream(key, start, end)])

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        name = self._name(key)
        clip_range(0, start, end)
        if end is not None and end <= start:
            if not await self.exists(key):
                raise KeyError(key)
            return
        ranged = {}
        if start > 0 or end is not None:
            ranged["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            s3 = await self._s3()
            try:
                response = await s3.get_object(Bucket=self.bucket, Key=name, **ranged)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code in _MISSING:
                    raise KeyError(key) from None
                if code == "InvalidRange":  # starts at or past the end
                    return
                raise
            async with response["Body"] as body:
                async for chunk in body.iter_chunks(STREAM_CHUNK):
                    yield chunk
        except (ClientError, BotoCoreError) as error:
            raise self._error(error, "read", key) from error

    async def size(self, key: str) -> int | None:
        name = self._name(key)
        try:
            s3 = await self._s3()
            head = await s3.head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise self._error(error, "read", key) from error
        except BotoCoreError as error:
            raise self._error(error, "read", key) from error
        return int(head["ContentLength"])

    async def list(self, prefix: str) -> list[ObjectInfo]:
        check_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        found: list[ObjectInfo] = []
        try:
            s3 = await self._s3()
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            async for page in pages:
                for item in page.get("Contents", ()):
                    found.append(ObjectInfo(self._key(item["Key"]), int(item["Size"])))
        except (ClientError, BotoCoreError) as error:
            raise self._error(error, "list", prefix or "/") from error
        return sorted(found, key=lambda info: info.key)

    # -- deleting -------------------------------------------------------------------

    async def delete_many(self, keys: Iterable[str]) -> None:
        names = [self._name(key) for key in keys]
        for batch in batches(names):
            try:
                s3 = await self._s3()
                answer = await s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as error:
                raise self._error(error, "delete", self._key(batch[0])) from error
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                raise StorageError(
                    f"storage: cannot delete s3://{self.bucket}/{self._key(first['Key'])}: "
                    f"{first.get('Code')}: {first.get('Message')} "
                    f"({len(errors)} object(s) not deleted)"
                )

    # -- writing in pieces ------------------------------------------------------------

    async def begin_write(self, key: str) -> PartialWrite:
        self._name(key)
        # the multipart upload starts with the first full part
        return PartialWrite(key, 0, {"upload_id": None, "parts": [], "staged": []})

    async def append(
        self, write: PartialWrite, chunks: AsyncIterable[bytes], save: SaveProgress
    ) -> PartialWrite:
        """Full parts go up as soon as they are complete (and are saved); the rest
        is staged when `chunks` ends or fails."""
        state = _copy_state(write.state)
        size = write.size
        staged_size = sum(piece[1] for piece in state["staged"])
        buffer = bytearray()

        def current() -> PartialWrite:
            return replace(write, size=size, state=_copy_state(state))

        async def keep() -> PartialWrite:
            nonlocal size
            if buffer:
                piece = f"{write.key}.staged/{size:015d}"
                await self.put(piece, bytes(buffer))
                state["staged"].append([piece, len(buffer)])
                size += len(buffer)
                buffer.clear()
            await save(current())
            return current()

        try:
            async for chunk in chunks:
                buffer += chunk
                while staged_size + len(buffer) >= self.part_size:
                    take = self.part_size - staged_size
                    await self._upload_part(write.key, state, bytes(buffer[:take]))
                    del buffer[:take]
                    consumed, state["staged"], staged_size = state["staged"], [], 0
                    size += take
                    await save(current())
                    await self.delete_many(piece[0] for piece in consumed)
        except BaseException:
            await asyncio.shield(asyncio.ensure_future(keep()))
            raise
        return await keep()

    async def _upload_part(self, key: str, state: dict[str, Any], tail: bytes) -> None:
        """One part: the staged pieces, then `tail`."""
        name = self._name(key)
        body = b"".join([await self.get(piece[0]) for piece in state["staged"]]) + tail
        try:
            s3 = await self._s3()
            if state["upload_id"] is None:
                answer = await s3.create_multipart_upload(Bucket=self.bucket, Key=name)
                state["upload_id"] = answer["UploadId"]
            number = len(state["parts"]) + 1
            answer = await s3.upload_part(
                Bucket=self.bucket, Key=name, UploadId=state["upload_id"],
                PartNumber=number, Body=body,
            )  # fmt: skip
        except (ClientError, BotoCoreError) as error:
            raise self._error(error, "write", key) from error
        state["parts"].append([number, answer["ETag"], len(body)])

    async def finish_write(self, write: PartialWrite, *, content_type: str | None = None) -> int:
        state = _copy_state(write.state)
        staged = [piece[0] for piece in state["staged"]]
        if state["upload_id"] is None:  # less than a part: one PutObject
            body = b"".join([await self.get(piece) for piece in staged])
            await self.put(write.key, body, content_type=content_type)
        else:
            if staged:
                await self._upload_part(write.key, state, b"")
            try:
                s3 = await self._s3()
                await s3.complete_multipart_upload(
                    Bucket=self.bucket, Key=self._name(write.key), UploadId=state["upload_id"],
                    MultipartUpload={
                        "Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in state["parts"]]
                    },
                )  # fmt: skip
            except (ClientError, BotoCoreError) as error:
                raise self._error(error, "write", write.key) from error
        await self.delete_many(staged)
        return write.size

    async def abort_write(self, write: PartialWrite) -> None:
        state = write.state
        if state.get("upload_id"):
            try:
                s3 = await self._s3()
                await s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._name(write.key), UploadId=state["upload_id"]
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise self._error(error, "delete", write.key) from error
            except BotoCoreError as error:
                raise self._error(error, "delete", write.key) from error
        await self.delete_many(piece[0] for piece in state.get("staged", ()))

    # -- delivery -------------------------------------------------------------------

    async def presigned_put(self, key: str, size: int, expires_s: int) -> str | None:
        """Content-Length is part of the signature: S3 refuses any other size."""
        if not 0 <= size <= MAX_PUT_BYTES:
            return None
        s3 = await self._s3()
        return await s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": self._name(key), "ContentLength": size},
            ExpiresIn=expires_s,
        )

    async def presigned_get(
        self,
        key: str,
        expires_s: int,
        *,
        content_type: str | None = None,
        download_name: str | None = None,
    ) -> str | None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._name(key)}
        if content_type:
            params["ResponseContentType"] = content_type
        if download_name:
            params["ResponseContentDisposition"] = (
                f"attachment; filename*=UTF-8''{quote(download_name)}"
            )
        s3 = await self._s3()
        return await s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A partial write's state, copied deep enough that a saved one never changes."""
    return {
        "upload_id": state.get("upload_id"),
        "parts": [list(part) for part in state.get("parts", ())],
        "staged": [list(piece) for piece in state.get("staged", ())],
    }


class _MultipartUpload:
    """One multipart upload, its parts numbered from 1."""

    def __init__(self, s3: Any, bucket: str, name: str, upload_id: str) -> None:
        self.s3, self.bucket, self.name, self.upload_id = s3, bucket, name, upload_id
        self.parts: list[dict[str, Any]] = []

    @classmethod
    async def start(
        cls, s3: Any, bucket: str, name: str, content_type: str | None
    ) -> _MultipartUpload:
        extra = {"ContentType": content_type} if content_type else {}
        answer = await s3.create_multipart_upload(Bucket=bucket, Key=name, **extra)
        return cls(s3, bucket, name, answer["UploadId"])

    async def add(self, data: bytes) -> None:
        number = len(self.parts) + 1
        answer = await self.s3.upload_part(
            Bucket=self.bucket, Key=self.name, UploadId=self.upload_id,
            PartNumber=number, Body=data,
        )  # fmt: skip
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    async def complete(self) -> None:
        await self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.name, UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )  # fmt: skip

    async def abort(self) -> None:
        """Best effort: a bucket lifecycle rule cleans up what this cannot."""
        with contextlib.suppress(ClientError, BotoCoreError, asyncio.CancelledError):
            await asyncio.shield(
                self.s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.name, UploadId=self.upload_id
                )
            )
