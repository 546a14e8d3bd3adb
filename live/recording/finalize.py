"""Finalising a recording: from stored segments to a VOD asset.

The same steps after a clean end and after a crash (start-up finalises again
whatever was left `recording` or `processing`), each safe to redo:
1. read the recording back from its manifests (`manifest.load_index`): the
   segments that are stored whole with their manifest, in order, up to the first
   that is not (after a power cut);
2. drop segment objects without a manifest (a crash between the two writes), and
   every object after the first hole;
3. write the VOD playlist, then the fast-start MP4 (remuxed in a worker thread
   from the stored segments; remote ones copied to a scratch directory first), the
   poster and the sprite, each object once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from live.recording import layout
from live.recording.manifest import RecordingIndex, load_index
from live.recording.mp4 import ReadObject, build_mp4, make_poster
from live.recording.playlist import render_vod_playlist
from live.storage.base import Storage
from live.thumbnails.sprite import make_sprite

log = logging.getLogger(__name__)

POSTER_POSITION = 0.1  # of the duration
_COPY_CONCURRENCY = 4  # remote objects fetched at once


class FinaliseError(Exception):
    """The recording cannot become an asset; the message is the asset's `error`."""


@dataclass(frozen=True, slots=True)
class FinalResult:
    duration_s: float
    size_bytes: int
    has_poster: bool
    segments: int


async def finalise_recording(storage: Storage, prefix: str) -> FinalResult:
    # The recorder's writes are durable only at a sync (durability.py): sync before
    # an asset made of them can be called ready.
    await storage.sync()
    index = await load_index(storage, prefix)
    if index.orphans:
        log.warning("%s: %d segment(s) without a manifest dropped", prefix, len(index.orphans))
        await storage.delete_many(index.orphans)
    if index.dropped:
        log.warning("%s: %d object(s) after a hole dropped", prefix, len(index.dropped))
        await storage.delete_many(index.dropped)
    if not index.segments or index.duration <= 0:
        raise FinaliseError("nothing was recorded (no complete segment)")
    await layout.put(storage, prefix, layout.PLAYLIST, render_vod_playlist(index).encode())

    scratch = Path(
        await asyncio.to_thread(
            lambda: tempfile.mkdtemp(prefix="finalise-", dir=storage.scratch_dir())
        )
    )
    try:
        mp4_path = scratch / layout.MP4
        read = await local_reader(storage, prefix, index, scratch)
        await asyncio.to_thread(build_mp4, read, prefix, index, mp4_path)
        poster = await asyncio.to_thread(make_poster, mp4_path, POSTER_POSITION)
        sprite = None
        if poster is not None:
            sprite = await asyncio.to_thread(make_sprite, mp4_path, image_name=layout.SPRITE)
        await storage.put_file(
            prefix + layout.MP4, mp4_path, content_type=layout.content_type(layout.MP4)
        )
        if poster is not None:
            await layout.put(storage, prefix, layout.POSTER, poster)
        if sprite is not None:
            await layout.put(storage, prefix, layout.SPRITE, sprite.jpeg)
            await layout.put(storage, prefix, layout.SPRITE_VTT, sprite.vtt.encode())
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)

    size = sum(info.size for info in await storage.list(prefix))
    return FinalResult(index.duration, size, poster is not None, len(index.segments))


async def local_reader(
    storage: Storage, prefix: str, index: RecordingIndex, scratch: Path
) -> ReadObject:
    """A blocking reader of the recording's init sections and segments for the
    remux thread. PyAV's MP4 demuxer reads a fragmented file twice (its header scan
    visits every fragment), so remote objects are first copied into `scratch`,
    each fetched once, a few at a time; local files are read where they are."""
    names = [layout.init_key(number) for number in sorted(index.inits)]
    names += [layout.segment_key(segment.number) for segment in index.segments]
    if storage.local_path(prefix + names[0]) is not None:
        return lambda key: _read_path(storage.local_path(key))
    copies = scratch / "objects"
    await asyncio.to_thread(copies.mkdir)
    slots = asyncio.Semaphore(_COPY_CONCURRENCY)

    async def copy(name: str) -> None:
        async with slots:
            handle = await asyncio.to_thread(open, copies / name, "wb")
            try:
                async with contextlib.aclosing(storage.stream(prefix + name)) as chunks:
                    async for chunk in chunks:
                        await asyncio.to_thread(handle.write, chunk)
            finally:
                await asyncio.to_thread(handle.close)

    await asyncio.gather(*(copy(name) for name in names))
    return lambda key: (copies / key[len(prefix) :]).read_bytes()


def _read_path(path: Path | None) -> bytes:
    assert path is not None
    return path.read_bytes()
