"""Local file helpers shared by the storages: reading a file as an async stream of
chunks and removing it, each step in a worker thread (a stalled disk must not stall
the event loop), and flushing a whole file system."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

FILE_CHUNK = 8 * 1024 * 1024  # one S3 multipart part


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


def sync_file_system(path: Path) -> None:
    """Write back everything written to the file system that holds `path` (Linux
    syncfs(2); elsewhere sync(2), every file system). Blocks: call it in a worker
    thread. The kernel's flusher threads do the writing, as they would have anyway
    a few seconds later; the caller only waits, where an fsync per file would do
    the writeback itself."""
    syncfs = _syncfs()
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(path))
    finally:
        os.close(fd)


@cache
def _syncfs() -> Any:
    """libc's syncfs, or None where there is none (not Linux)."""
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function
