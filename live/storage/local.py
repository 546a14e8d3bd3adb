"""Storage on the local file system: one file per key under a root directory.

A put writes a temporary file ("." in front of its name, never listed), fsyncs it
and renames it into place, then fsyncs the directory: the object is there whole
or not at all, through a SIGKILL or a power cut. Every file operation runs in a
worker thread.

A put with `durable=False` (the recorder's: base.py) skips both fsyncs: it is still
whole or absent after a SIGKILL (the rename is atomic and the page cache outlives
the process), but after a power cut before the next `sync()` it may be missing,
or renamed into place with its data not yet written back: empty or short on ext4
and XFS, whose sizes grow only as data reaches the disk. The storage remembers
each such file and its directory, and `sync()` flushes those and nothing else
(files.sync_files), many files at once instead of two fsyncs per put.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import secrets
import shutil
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from live.storage.base import (
    STREAM_CHUNK,
    ObjectInfo,
    PartialWrite,
    SaveProgress,
    Storage,
    StorageError,
    check_key,
    check_prefix,
    clip_range,
)
from live.storage.files import sync_files

_SCRATCH = ".scratch"
_PARTIAL = "partial"  # under the scratch dir: one file per write in pieces
_PARTIAL_NAME = re.compile(r"[0-9a-f]{32}")
# Appended bytes reach the disk in batches of this size: one worker-thread hop per
# megabyte, not per network read.
WRITE_BATCH = 1024 * 1024


def _explain(error: OSError, action: str, key: str) -> StorageError:
    """An OSError as a sentence an operator can act on."""
    reason = error.strerror or str(error)
    if error.errno is not None:
        hints = {
            errno.ENOSPC: "the disk is full",
            errno.EDQUOT: "the disk quota is exhausted",
            errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted",
            errno.EROFS: "the file system is read-only",
            errno.EIO: "input/output error",
        }
        reason = hints.get(error.errno, reason)
    return StorageError(f"storage: cannot {action} {key}: {reason}")


class LocalStorage(Storage):
    """Files under `root`; a key maps to `root / key`."""

    def __init__(self, root: str | Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)
        # Written with durable=False since the last sync (by worker threads): the
        # files and the directories their names were put in. Dicts keep the order.
        self._unsynced_files: dict[Path, None] = {}
        self._unsynced_dirs: dict[Path, None] = {}
        self._unsynced_lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    # -- writing --------------------------------------------------------------------

    async def put(
        self, key: str, data: bytes, *, content_type: str | None = None, durable: bool = True
    ) -> None:
        path = self._path(key)
        await asyncio.to_thread(self._write_whole, key, path, (data,), durable)

    async def put_parts(
        self,
        key: str,
        parts: Sequence[bytes],
        *,
        content_type: str | None = None,
        durable: bool = True,
    ) -> int:
        """Each part goes to the file as it is: joining a recording segment's parts
        first would copy it once more, into fresh pages the kernel must fault in."""
        path = self._path(key)
        await asyncio.to_thread(self._write_whole, key, path, parts, durable)
        return sum(len(part) for part in parts)

    async def sync(self) -> None:
        """Flush the files written with durable=False since the last sync, and their
        directories, in a worker thread."""
        with self._unsynced_lock:
            files, self._unsynced_files = list(self._unsynced_files), {}
            directories, self._unsynced_dirs = list(self._unsynced_dirs), {}
        if not files and not directories:
            return
        try:
            await asyncio.to_thread(sync_files, files, directories)
        except OSError as error:
            raise _explain(error, "sync", str(self.root)) from error

    def _written_lazily(self, path: Path) -> None:
        """`path` was put in place without fsyncs: the next sync flushes it."""
        if not self.fsync:
            return
        with self._unsynced_lock:
            self._unsynced_files[path] = None
            self._unsynced_dirs[path.parent] = None

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> int:
        path = self._path(key)
        temporary = _temporary(path)
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            handle = await asyncio.to_thread(open, temporary, "wb")
        except OSError as error:
            raise _explain(error, "write", key) from error
        size = 0
        try:
            try:
                async for chunk in chunks:
                    await asyncio.to_thread(handle.write, chunk)
                    size += len(chunk)
                await asyncio.to_thread(self._close_durably, handle)
            finally:
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(self._rename_into_place, temporary, path)
        except OSError as error:
            await asyncio.to_thread(_discard, temporary)
            raise _explain(error, "write", key) from error
        except BaseException:
            await asyncio.to_thread(_discard, temporary)
            raise
        return size

    async def put_file(
        self, key: str, path: Path, *, content_type: str | None = None, durable: bool = True
    ) -> None:
        """A rename when `path` is on the same file system (the scratch directory is)."""
        target = self._path(key)
        await asyncio.to_thread(self._move_file, key, path, target, durable)

    def _write_whole(self, key: str, path: Path, parts: Sequence[bytes], durable: bool) -> None:
        temporary = _temporary(path)
        try:
            try:
                handle = open(temporary, "wb")  # noqa: SIM115 - closed below
            except FileNotFoundError:  # the first object of its directory
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = open(temporary, "wb")  # noqa: SIM115
            with handle:
                handle.writelines(parts)
                if durable:
                    self._close_durably(handle)
            if durable:
                self._rename_into_place(temporary, path)
            else:
                os.replace(temporary, path)
                self._written_lazily(path)
        except OSError as error:
            _discard(temporary)
            raise _explain(error, "write", key) from error

    def _close_durably(self, handle: BinaryIO) -> None:
        handle.flush()
        if self.fsync:
            os.fsync(handle.fileno())

    def _rename_into_place(self, temporary: Path, path: Path) -> None:
        os.replace(temporary, path)
        self._sync_dir(path.parent)

    def _move_file(self, key: str, source: Path, target: Path, durable: bool = True) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if self.fsync and durable:
                with open(source, "rb+") as handle:
                    os.fsync(handle.fileno())
            try:
                os.replace(source, target)
            except OSError:  # another file system: copy, then drop the source
                temporary = _temporary(target)
                shutil.copyfile(source, temporary)
                if durable:
                    with open(temporary, "rb+") as handle:
                        self._close_durably(handle)
                os.replace(temporary, target)
                source.unlink()
            if durable:
                self._sync_dir(target.parent)
            else:
                self._written_lazily(target)
        except OSError as error:
            raise _explain(error, "write", key) from error

    def _sync_dir(self, directory: Path) -> None:
        if not self.fsync:
            return
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading --------------------------------------------------------------------

    async def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        path = self._path(key)
        clip_range(0, start, end)  # refuses negative offsets before touching the disk
        return await asyncio.to_thread(self._read, key, path, start, end)

    def _read(self, key: str, path: Path, start: int, end: int | None) -> bytes:
        try:
            with open(path, "rb") as handle:
                handle.seek(start)
                return handle.read(-1 if end is None else max(0, end - start))
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as error:
            raise _explain(error, "read", key) from error

    async def stream(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self._path(key)
        clip_range(0, start, end)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as error:
            raise _explain(error, "read", key) from error
        try:
            size = await asyncio.to_thread(lambda: os.fstat(handle.fileno()).st_size)
            position, stop = clip_range(size, start, end)
            await asyncio.to_thread(handle.seek, position)
            while position < stop:
                chunk = await asyncio.to_thread(handle.read, min(STREAM_CHUNK, stop - position))
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        except OSError as error:
            raise _explain(error, "read", key) from error
        finally:
            await asyncio.to_thread(handle.close)

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        return await asyncio.to_thread(_size, path)

    async def list(self, prefix: str) -> list[ObjectInfo]:
        check_prefix(prefix)
        return await asyncio.to_thread(self._list, prefix)

    def _list(self, prefix: str) -> list[ObjectInfo]:
        # Walk only the directory the prefix points into.
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.root / directory if directory else self.root
        found: list[ObjectInfo] = []
        if not base.is_dir():
            return found
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d != _SCRATCH]
            for name in filenames:
                if name.startswith("."):
                    continue  # temporary files of a put in progress
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    size = _size(full)
                    if size is not None:
                        found.append(ObjectInfo(key, size))
        return sorted(found, key=lambda info: info.key)

    # -- deleting -------------------------------------------------------------------

    async def delete_many(self, keys: Iterable[str]) -> None:
        paths = [(key, self._path(key)) for key in keys]
        if paths:
            await asyncio.to_thread(self._delete, paths)

    def _delete(self, paths: list[tuple[str, Path]]) -> None:
        for key, path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise _explain(error, "delete", key) from error

    async def delete_prefix(self, prefix: str) -> int:
        count = await super().delete_prefix(prefix)
        # Remove the directories (and temporary files) left behind under a
        # directory prefix such as "assets/ast_x/".
        if prefix.endswith("/"):
            directory = self.root / check_key(prefix.rstrip("/"))
            await asyncio.to_thread(shutil.rmtree, directory, True)
        return count

    # -- writing in pieces -------------------------------------------------------------

    def _partial_path(self, write: PartialWrite) -> Path:
        """The scratch file of a write; its name comes from the stored state, so it
        is checked before it becomes a path."""
        name = write.state.get("file")
        if not isinstance(name, str) or not _PARTIAL_NAME.fullmatch(name):
            raise ValueError(f"not a partial write of this storage: {write.state!r}")
        return self.scratch_dir() / _PARTIAL / name

    async def begin_write(self, key: str) -> PartialWrite:
        check_key(key)
        write = PartialWrite(key, 0, {"file": secrets.token_hex(16)})
        path = self._partial_path(write)

        def create() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=False)

        try:
            await asyncio.to_thread(create)
        except OSError as error:
            raise _explain(error, "write", key) from error
        return write

    async def append(
        self, write: PartialWrite, chunks: AsyncIterable[bytes], save: SaveProgress
    ) -> PartialWrite:
        path = self._partial_path(write)

        def open_at_end() -> BinaryIO:
            handle = open(path, "r+b")  # noqa: SIM115 - closed by keep() below
            # bytes past the saved size were written but never recorded: drop them
            handle.truncate(write.size)
            handle.seek(write.size)
            return handle

        try:
            handle = await asyncio.to_thread(open_at_end)
        except FileNotFoundError:
            raise KeyError(write.key) from None
        except OSError as error:
            raise _explain(error, "write", write.key) from error
        size = write.size
        pending = bytearray()

        async def flush() -> None:
            nonlocal size
            if pending:
                await asyncio.to_thread(handle.write, pending)
                size += len(pending)
                pending.clear()

        async def keep() -> PartialWrite:
            try:
                await flush()
                await asyncio.to_thread(self._close_durably, handle)
            except OSError as error:
                raise _explain(error, "write", write.key) from error
            finally:
                await asyncio.to_thread(handle.close)
                await save(replace(write, size=size))
            return replace(write, size=size)

        try:
            async for chunk in chunks:
                pending += chunk
                if len(pending) >= WRITE_BATCH:
                    await flush()
        except BaseException:
            # what arrived before the failure is kept, even when we are cancelled
            await asyncio.shield(asyncio.ensure_future(keep()))
            raise
        return await keep()

    async def finish_write(self, write: PartialWrite, *, content_type: str | None = None) -> int:
        source = self._partial_path(write)
        if not await asyncio.to_thread(source.is_file):
            raise KeyError(write.key)
        await asyncio.to_thread(self._move_file, write.key, source, self._path(write.key))
        return write.size

    async def abort_write(self, write: PartialWrite) -> None:
        await asyncio.to_thread(_discard, self._partial_path(write))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def scratch_dir(self) -> Path:
        """Inside the root, so `put_file` is a rename on the same file system."""
        directory = self.root / _SCRATCH
        directory.mkdir(parents=True, exist_ok=True)
        return directory


def _temporary(path: Path) -> Path:
    """A hidden name of its own: two puts of one key never write the same file."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except FileNotFoundError:
        return None
