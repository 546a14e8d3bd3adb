"""The storage interface: named blobs, shaped like an object store.

Recordings go through this and nothing else, so local files (the embedded default)
and an S3-compatible bucket (cluster mode) are interchangeable. Keys are
"/"-separated relative paths ("assets/ast_x/seg_00001.m4s"); a key never
starts with "/" and never contains "..".

Every method blocks: callers run them in a worker thread (the recorder has its own
writer thread, VOD handlers use `asyncio.to_thread`), so a slow or failing disk
never stalls the event loop. Failures raise `StorageError`, whose message is meant
for people (it ends up in an asset's `error`).
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from pathlib import Path

_KEY = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")


class StorageError(Exception):
    """A storage operation failed (disk full, permission denied, network...)."""


def check_key(key: str) -> str:
    """`key` if it is a well-formed relative key, else ValueError."""
    if not _KEY.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"invalid storage key {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


class Appender:
    """Appends to one object, piece by piece (see `Storage.appender`). This one
    calls `append` for each piece; local files keep the file open instead."""

    def __init__(self, storage: Storage, key: str) -> None:
        self.storage = storage
        self.key = key

    def write(self, data: bytes) -> None:
        self.storage.append(self.key, data, sync=False)

    def close(self) -> None:
        """Nothing more will be written (a second close does nothing)."""


class Storage(abc.ABC):
    """Blobs by key: put, get (whole or a byte range), list, delete."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes, *, sync: bool = True) -> None:
        """Store `data` under `key` atomically: a crash leaves either the whole
        object or the previous one, never a torn one. Once `put` returns the object
        survives the process; with `sync` (or after `sync()`) also a power cut."""

    @abc.abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store the local file `path` under `key` (large outputs such as an MP4
        made in a scratch directory); `path` is consumed (moved or deleted)."""

    @abc.abstractmethod
    def append(self, key: str, data: bytes, *, sync: bool = True) -> None:
        """Add `data` at the end of `key` (creating it); durable as `put` is. Only
        for small append-only logs (a recording's index): an object store without
        append emulates it by rewriting the object. An object written piece by
        piece goes through `appender`."""

    def appender(self, key: str) -> Appender:
        """`key` held open for appends, for an object that grows piece by piece
        while it is written (a recording's segment, its index): each `write` is
        durable as `append(sync=False)` is, without reopening the object. Close it
        when the object is complete."""
        return Appender(self, key)

    def sync(self) -> None:  # noqa: B027 - object stores are durable on every put
        """Make everything written with `sync=False` survive a power cut."""

    @abc.abstractmethod
    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """The bytes [start, end) of `key` (to its end when `end` is None).
        A missing key raises KeyError."""

    @abc.abstractmethod
    def size(self, key: str) -> int | None:
        """The object's size, or None when it does not exist."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with `prefix`, sorted by key."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix`; how many there were."""
        objects = self.list(prefix)
        for info in objects:
            self.delete(info.key)
        return len(objects)

    def local_path(self, key: str) -> Path | None:
        """A local file holding the object, when the storage has one (lets HTTP
        serve it with sendfile and ranges); None for remote storage."""
        return None

    def scratch_dir(self) -> Path:
        """A local directory for temporary files that end up in `put_file`."""
        import tempfile

        return Path(tempfile.gettempdir())
