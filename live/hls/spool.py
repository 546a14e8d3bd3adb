"""The node's spool of segments that have left their playlist, on local disk.

`HlsWindow` hands these segments over (`live.hls.spill`) so that the media only a
player far behind may still ask for does not sit in the Python heap. Each segment is
one file, `<data_dir>/hls-spool/<window>/<msn>.m4s`, written with one `writev` of its
parts on the event loop thread: about 60 us for 400 KB into the page cache, measured
against about 220 us of CPU to hand the same write to a thread, and the file is
usually deleted (about 8 s later) before the kernel writes it back. A file per
segment costs 10-20 us more per segment than appending to one file per rendition,
nothing measurable, and needs no offsets or rotation: dropping a segment is one
unlink.

Reading one back is a synchronous read from the page cache (about 90 us for 400 KB),
acceptable for requests this rare. A write that fails (disk full, EIO) is logged once
per run of failures and the window keeps that segment in memory.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from pathlib import Path

from live.hls.spill import Chunks

log = logging.getLogger(__name__)

SPOOL_DIR = "hls-spool"
_IOV_MAX = 1024  # Linux's limit on buffers per writev


class HlsSpool:
    """The spool directory of this node; one `FileSpill` per window under it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ids = itertools.count()
        self._failing = False

    @classmethod
    def open(cls, data_dir: Path) -> HlsSpool:
        """The spool under `data_dir`, emptied: what an earlier process spilled is
        served by no one now (the data directory belongs to one node)."""
        root = data_dir / SPOOL_DIR
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    def spill(self) -> FileSpill:
        """A spill for one window, in a directory of its own (made on first use)."""
        return FileSpill(self, self.root / str(next(self._ids)))

    def clear(self) -> None:
        """Remove everything spilled (at shut-down)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def write_failed(self, path: Path, error: OSError) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "HLS spool: cannot write %s (%s); segments that left their playlist "
                "stay in memory until writes work again",
                path,
                error,
            )

    def write_worked(self) -> None:
        if self._failing:
            self._failing = False
            log.info("HLS spool: writes work again")


class FileSpill:
    """One window's spilled segments, a file each; the handle is (path, size)."""

    def __init__(self, spool: HlsSpool, directory: Path) -> None:
        self._spool = spool
        self._dir = directory
        self._made = False

    @property
    def directory(self) -> Path:
        return self._dir

    def keep(self, key: int, chunks: Chunks) -> object | None:
        path = self._dir / f"{key}.m4s"
        try:
            if not self._made:
                self._dir.mkdir(parents=True, exist_ok=True)
                self._made = True
            size = _write_file(path, chunks)
        except OSError as error:
            self._spool.write_failed(path, error)
            _unlink(path)
            return None
        self._spool.write_worked()
        return (str(path), size)

    def read(self, handle: object) -> Chunks | None:
        path, size = _unpack(handle)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                data = os.read(fd, size) if size else b""
            finally:
                os.close(fd)
        except OSError as error:
            log.warning("HLS spool: cannot read %s: %s", path, error)
            return None
        if len(data) != size:
            log.warning("HLS spool: %s has %d bytes, not %d", path, len(data), size)
            return None
        return (data,)

    def drop(self, handle: object) -> None:
        path, _ = _unpack(handle)
        _unlink(path)

    def close(self) -> None:
        if self._made:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._made = False


def _write_file(path: Path, chunks: Chunks) -> int:
    """Write `chunks` to a new file at `path`; its size. Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        views = [memoryview(c) for c in chunks if c]
        size = sum(len(v) for v in views)
        while views:
            written = os.writev(fd, views[:_IOV_MAX])
            if written <= 0:
                raise OSError(28, "no progress writing the spool file")  # ENOSPC-like
            while written:
                if written >= len(views[0]):
                    written -= len(views.pop(0))
                else:
                    views[0] = views[0][written:]
                    written = 0
    finally:
        os.close(fd)
    return size


def _unpack(handle: object) -> tuple[str, int]:
    assert isinstance(handle, tuple) and len(handle) == 2
    return handle[0], handle[1]


def _unlink(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("HLS spool: cannot remove %s: %s", path, error)
