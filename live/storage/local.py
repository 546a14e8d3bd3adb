"""Storage on the local file system: one file per key under a root directory.

Durability is what crash recovery relies on. Every write reaches the kernel before
it returns, so it survives the process (SIGKILL). With `sync=True` (the default)
`put` also fsyncs a temporary file before renaming it into place (then fsyncs the
directory) and `append` fsyncs after writing, so it survives a power cut; a
recorder appends its parts through an `appender` (no fsync) and calls `sync()`
(one syncfs) once a segment, bounding what a power cut can take.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
from pathlib import Path

from live.storage.base import Appender, ObjectInfo, Storage, StorageError, check_key

_SCRATCH = ".scratch"
_libc = None
with contextlib.suppress(OSError, AttributeError):
    _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    _libc.syncfs.argtypes = [ctypes.c_int]


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

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _sync_dir(self, directory: Path) -> None:
        if not self.fsync:
            return
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def put(self, key: str, data: bytes, *, sync: bool = True) -> None:
        path = self._path(key)
        temporary = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                if sync and self.fsync:
                    os.fsync(handle.fileno())
            os.replace(temporary, path)
            if sync:
                self._sync_dir(path.parent)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise _explain(error, "write", key) from error

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if self.fsync:
                with open(path, "rb+") as handle:
                    os.fsync(handle.fileno())
            try:
                os.replace(path, target)
            except OSError:  # another file system: copy, then drop the source
                shutil.copyfile(path, target)
                path.unlink()
            self._sync_dir(target.parent)
        except OSError as error:
            raise _explain(error, "write", key) from error

    def append(self, key: str, data: bytes, *, sync: bool = True) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists()
            with open(path, "ab") as handle:
                handle.write(data)
                handle.flush()
                if sync and self.fsync:
                    os.fsync(handle.fileno())
            if new and sync:
                self._sync_dir(path.parent)
        except OSError as error:
            raise _explain(error, "append to", key) from error

    def appender(self, key: str) -> Appender:
        """The file stays open: a write is one write(2), where `append` costs an
        open, a stat and a close as well (it shows at five parts a second)."""
        return _FileAppender(self, key)

    def sync(self) -> None:
        """One syncfs(2) of the file system under the root: far cheaper than an
        fsync per file when a recorder writes several small files a second."""
        if not self.fsync:
            return
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _libc is not None and _libc.syncfs(fd) == 0:
                return
            os.sync()
        finally:
            os.close(fd)

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                handle.seek(start)
                return handle.read(-1 if end is None else max(0, end - start))
        except FileNotFoundError:
            raise KeyError(key) from None
        except OSError as error:
            raise _explain(error, "read", key) from error

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[ObjectInfo]:
        # Walk only the directory the prefix points into.
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.root / check_key(directory) if directory else self.root
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
                    with contextlib.suppress(FileNotFoundError):
                        found.append(ObjectInfo(key, full.stat().st_size))
        return sorted(found, key=lambda info: info.key)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise _explain(error, "delete", key) from error

    def delete_prefix(self, prefix: str) -> int:
        count = super().delete_prefix(prefix)
        # Remove the directories (and temporary files) left behind under a
        # directory prefix such as "assets/ast_x/".
        if prefix.endswith("/"):
            directory = self.root / check_key(prefix.rstrip("/"))
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(directory)
        return count

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def scratch_dir(self) -> Path:
        """Inside the root, so `put_file` is a rename on the same file system."""
        directory = self.root / _SCRATCH
        directory.mkdir(parents=True, exist_ok=True)
        return directory


class _FileAppender(Appender):
    """A file opened once with O_APPEND; each write reaches the kernel before it returns."""

    def __init__(self, storage: LocalStorage, key: str) -> None:
        super().__init__(storage, key)
        path = storage._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
            self._fd: int | None = os.open(path, flags, 0o666)
        except OSError as error:
            raise _explain(error, "append to", key) from error

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise StorageError(f"storage: {self.key} is closed")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            raise _explain(error, "append to", self.key) from error

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
