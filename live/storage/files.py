"""Local file helpers shared by the storages: reading a file as an async stream of
chunks and removing it, each step in a worker thread (a stalled disk must not stall
the event loop)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

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
