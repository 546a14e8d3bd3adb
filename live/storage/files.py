"""Local file helpers shared by the storages: reading a file as an async stream of
chunks and removing it, each step in a worker thread (a stalled disk must not stall
the event loop), and making files durable."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

FILE_CHUNK = 8 * 1024 * 1024  # one S3 multipart part
# Files held open at once by sync_files: well under the process's descriptor limit,
# which the server's sockets share.
SYNC_BATCH = 64
_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h


async def read_file_chunks(path: Path, chunk_size: int = FILE_CHUNK) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, chunk_size):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


async def remove_file(path: Path) -> None:
    def remove() -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    await asyncio.to_thread(remove)


def sync_files(files: Sequence[Path], directories: Iterable[Path]) -> None:
    """Make `files`' data and `directories`' entries durable (fdatasync and fsync),
    skipping any that were deleted since. Blocks: call it in a worker thread.

    Only these, where syncfs(2) would write back every dirty page of the file
    system: the LL-HLS spool's files among them, which are deleted seconds after
    they are written and otherwise never reach the disk, and whose unlink on the
    event loop then waits for that writeback. Each batch starts the writeback of
    all its files first (sync_file_range), so the disk takes them together and one
    journal commit covers the batch, instead of one write and commit after another."""
    for start in range(0, len(files), SYNC_BATCH):
        opened: list[int] = []
        try:
            for path in files[start : start + SYNC_BATCH]:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    continue  # deleted since: nothing to keep
                opened.append(fd)
                _start_writeback(fd)
            for fd in opened:
                os.fdatasync(fd)
        finally:
            for fd in opened:
                os.close(fd)
    for directory in directories:
        try:
            fd = os.open(directory, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages back, without waiting
    (Linux; elsewhere the fdatasync that follows does it all)."""
    start = _sync_file_range()
    if start is not None and start(fd, 0, 0, _SYNC_FILE_RANGE_WRITE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@cache
def _sync_file_range() -> Any:
    """libc's sync_file_range, or None where there is none (not Linux)."""
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function
