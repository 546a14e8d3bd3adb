"""The storage interface: named blobs, shaped like an object store.

Recordings go through this and nothing else, so local files (the embedded default)
and an S3-compatible bucket (cluster mode) are interchangeable. Keys are
"/"-separated relative paths ("assets/ast_x/seg_00001.m4s"); a key never
starts with "/", never contains "." or ".." parts, and uses only letters, digits,
"_", "-" and ".", so no key can escape a directory or mean two things.

Objects are written whole, once: there is no append, because an object store has
none (emulating it rewrites the object, O(n^2) over a recording). A reader sees
either the whole object or none. Writing a key again replaces the object whole;
the recorder only does that when it redoes a finalisation after a crash.

Durability: a write is durable when it returns (it survives a power cut), unless
the caller asks for less with `durable=False`: the object is then whole or absent
after a process crash (the OS keeps what was written), but a power cut or kernel
crash before the next `sync()` may lose it or leave it shorter than written, so
whoever writes that way records sizes and checks them on reading (the recorder's
manifests do). That is the price of not flushing each object to disk on its own;
`sync()` then makes everything written so far durable at once. Object stores are
durable when a put returns, whatever is asked.

Every method is a coroutine: S3 calls are asynchronous, local file I/O runs in
worker threads, so a slow or failing disk never stalls the event loop. Failures
raise `StorageError`, whose message is meant for people (it ends up in an asset's
`error`); a missing key is `KeyError` where an object is needed.

One object may also be written in pieces over many calls, by different processes
or nodes: a `PartialWrite` (begin, append, finish or abort), for resumable
uploads. Its bytes stay invisible under the key until `finish_write`; its state is
plain JSON that the caller keeps (in the store) between calls.
"""

from __future__ import annotations

import abc
import re
import tempfile
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from live.storage.files import read_file_chunks, remove_file

_KEY = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")
MAX_KEY_LENGTH = 900  # S3 allows 1024 bytes, and a bucket prefix comes in front

# S3 DeleteObjects takes at most this many keys per call.
DELETE_BATCH = 1000
# Reads of a stream go out in pieces of this size (HTTP proxying, copies).
STREAM_CHUNK = 256 * 1024


class StorageError(Exception):
    """A storage operation failed (disk full, permission denied, network...)."""


def check_key(key: str) -> str:
    """`key` if it is a well-formed relative key, else ValueError."""
    if (
        len(key) > MAX_KEY_LENGTH
        or not _KEY.fullmatch(key)
        or any(part in (".", "..") for part in key.split("/"))
    ):
        raise ValueError(f"invalid storage key {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A prefix is a key, a key followed by "/", or "" (everything)."""
    if prefix:
        check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def clip_range(size: int, start: int, end: int | None) -> tuple[int, int]:
    """[start, end) within an object of `size` bytes (empty past its end)."""
    if start < 0 or (end is not None and end < 0):
        raise ValueError("byte ranges start at 0")
    stop = size if end is None else min(end, size)
    return min(start, size), max(min(start, size), stop)


def batches(keys: Iterable[str], size: int = DELETE_BATCH) -> Iterator[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


@dataclass(frozen=True, slots=True)
class PartialWrite:
    """An object being written piece by piece (`Storage.begin_write`). `size` bytes
    are kept so far, durably; `state` is the storage's own bookkeeping (a scratch
    file, or an S3 multipart upload and its parts), JSON-serialisable, so that a
    restarted process or another node can carry on."""

    key: str
    size: int = 0
    state: dict[str, Any] = field(default_factory=dict)


# Called by `Storage.append` each time more bytes are durable, with the write as it
# now stands: the caller stores it, so that what was kept is never lost.
SaveProgress = Callable[[PartialWrite], Awaitable[None]]


class Storage(abc.ABC):
    """Blobs by key: put whole, get (whole or a byte range), list, delete in batches."""

    @abc.abstractmethod
    async def put(
        self, key: str, data: bytes, *, content_type: str | None = None, durable: bool = True
    ) -> None:
        """Store `data` under `key` whole: a crash leaves either the whole object or
        none (or the previous one), never a torn one. Once `put` returns the object
        survives the process and, on local disk, a power cut; with `durable=False`,
        a power cut only after the next `sync()` (see the module's docstring)."""

    async def put_parts(
        self,
        key: str,
        parts: Sequence[bytes],
        *,
        content_type: str | None = None,
        durable: bool = True,
    ) -> int:
        """`put` of the concatenation of `parts`; its size. A storage that can write
        the pieces as they are (local files) does, instead of joining them into one
        more copy of the object first."""
        data = b"".join(parts)
        await self.put(key, data, content_type=content_type, durable=durable)
        return len(data)

    async def sync(self) -> None:  # noqa: B027 - object stores are durable at each put
        """Make every object written so far durable, those of `durable=False` puts
        included (local disk: the files of those puts flushed together, instead of
        two fsyncs per put). Nothing to do where a put is durable when it returns."""

    @abc.abstractmethod
    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> int:
        """Store the concatenation of `chunks` under `key`, as `put` does, without
        holding it in memory (S3: a multipart upload once it is big). Its size."""

    async def put_file(
        self, key: str, path: Path, *, content_type: str | None = None, durable: bool = True
    ) -> None:
        """Store the local file `path` under `key` (an MP4 made in `scratch_dir`, a
        recording's segment file); `path` is consumed (moved or deleted). Durable
        as `put` is (here always: a streamed upload)."""
        await self.put_stream(key, read_file_chunks(path), content_type=content_type)
        await remove_file(path)

    @abc.abstractmethod
    async def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """The bytes [start, end) of `key` (to its end when `end` is None; a range
        past the end is cut to it). A missing key raises KeyError."""

    @abc.abstractmethod
    def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) of `key` in pieces, for sending on without holding
        a whole object in memory. A missing key raises KeyError at the first piece."""

    @abc.abstractmethod
    async def size(self, key: str) -> int | None:
        """The object's size, or None when it does not exist."""

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    @abc.abstractmethod
    async def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with `prefix`, sorted by key."""

    @abc.abstractmethod
    async def delete_many(self, keys: Iterable[str]) -> None:
        """Remove these objects (in batches of DELETE_BATCH on S3); missing keys
        are not an error."""

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix`; how many there were."""
        objects = await self.list(prefix)
        await self.delete_many(info.key for info in objects)
        return len(objects)

    # -- writing in pieces (resumable uploads) ---------------------------------------

    @abc.abstractmethod
    async def begin_write(self, key: str) -> PartialWrite:
        """Start writing `key` in pieces; nothing is visible under `key` yet."""

    @abc.abstractmethod
    async def append(
        self, write: PartialWrite, chunks: AsyncIterable[bytes], save: SaveProgress
    ) -> PartialWrite:
        """Add the concatenation of `chunks` at `write.size`. Every byte taken from
        `chunks` is kept even when `chunks` fails half-way (a dropped connection):
        the write is saved through `save` as bytes become durable and once more at
        the end, then the failure is raised again. Answers the write as it stands.
        Memory stays bounded (at most one S3 part) whatever the size."""

    @abc.abstractmethod
    async def finish_write(self, write: PartialWrite, *, content_type: str | None = None) -> int:
        """Make the written bytes the object under `write.key`, whole; its size."""

    @abc.abstractmethod
    async def abort_write(self, write: PartialWrite) -> None:
        """Drop what was written (an abandoned upload); the key is left as it was."""

    async def presigned_put(self, key: str, size: int, expires_s: int) -> str | None:
        """A URL that lets anyone PUT exactly `size` bytes to `key` for `expires_s`
        seconds (Content-Length signed); None when the storage cannot (local files)."""
        return None

    def local_path(self, key: str) -> Path | None:
        """A local file holding the object, when the storage has one (lets HTTP
        serve it with sendfile); None for remote storage."""
        return None

    async def presigned_get(
        self,
        key: str,
        expires_s: int,
        *,
        content_type: str | None = None,
        download_name: str | None = None,
    ) -> str | None:
        """A URL that lets anyone GET the object for `expires_s` seconds, answered
        with `content_type` and, with `download_name`, as an attachment of that
        name; None when the storage cannot hand one out (local files)."""
        return None

    def scratch_dir(self) -> Path:
        """A local directory for temporary files that end up in `put_file`."""
        return Path(tempfile.gettempdir())

    async def close(self) -> None:  # noqa: B027 - most storages hold nothing open
        """Release connections; the storage is not used afterwards."""
