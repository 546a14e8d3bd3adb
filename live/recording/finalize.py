"""Finalising a recording: from stored parts to a VOD asset. Blocking: run in a thread.

Steps, each safe to redo after a crash (start-up finalises again whatever was left
`recording` or `processing`):
1. read the index (a torn last line is skipped) and keep the parts that are stored;
2. cut each segment object to the parts its index names (after a crash, the last
   one may end with the part that was in flight);
3. write the VOD playlist, the fast-start MP4 and the poster.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from live.recording import index as idx
from live.recording.mp4 import build_mp4, make_poster
from live.recording.playlist import render_vod_playlist
from live.storage.base import Storage
from live.thumbnails.sprite import make_sprite

log = logging.getLogger(__name__)

PLAYLIST = "index.m3u8"
MP4 = "download.mp4"
POSTER = "poster.jpg"
SPRITE = "sprite.jpg"
SPRITE_VTT = "sprite.vtt"
POSTER_POSITION = 0.1  # of the duration


class FinaliseError(Exception):
    """The recording cannot become an asset; the message is the asset's `error`."""


@dataclass(frozen=True, slots=True)
class FinalResult:
    duration_s: float
    size_bytes: int
    has_poster: bool
    segments: int


def load_index(storage: Storage, prefix: str) -> idx.RecordingIndex:
    """The index, keeping only the parts whose bytes are stored."""
    try:
        raw = storage.get(prefix + idx.INDEX)
    except KeyError:
        raise FinaliseError("nothing was recorded (no index)") from None
    index = idx.parse_index(raw)
    sizes = {info.key[len(prefix) :]: info.size for info in storage.list(prefix)}
    kept = []
    for segment in index.segments:
        # Parts are stored before they are indexed, so a segment shorter than its
        # index means the files were tampered with: keep what comes before.
        stored = sizes.get(idx.segment_key(segment.number), 0)
        parts, size = [], 0
        for part in segment.parts:
            if size + part.size > stored:
                log.warning(
                    "%s: part %d is missing; segment %d cut short", prefix, part.seq, segment.number
                )
                break
            parts.append(part)
            size += part.size
        if parts:
            segment.parts = parts
            kept.append(segment)
    index.segments = [s for s in kept if sizes.get(idx.init_key(s.init))]
    return index


def finalise_recording(storage: Storage, prefix: str) -> FinalResult:
    index = load_index(storage, prefix)
    if not index.segments or index.duration <= 0:
        raise FinaliseError("nothing was recorded (no complete part)")
    for segment in index.segments:
        key = prefix + idx.segment_key(segment.number)
        if storage.size(key) != segment.size:  # the part in flight when it crashed
            storage.put(key, storage.get(key, 0, segment.size))
    storage.put(prefix + PLAYLIST, render_vod_playlist(index).encode())

    scratch = Path(tempfile.mkdtemp(prefix="finalise-", dir=storage.scratch_dir()))
    try:
        mp4_path = scratch / MP4
        build_mp4(storage, prefix, index, mp4_path)
        poster = make_poster(mp4_path, POSTER_POSITION)
        sprite = make_sprite(mp4_path, image_name=SPRITE) if poster is not None else None
        storage.put_file(prefix + MP4, mp4_path)
        if poster is not None:
            storage.put(prefix + POSTER, poster)
        if sprite is not None:
            storage.put(prefix + SPRITE, sprite.jpeg)
            storage.put(prefix + SPRITE_VTT, sprite.vtt.encode())
    finally:
        for leftover in scratch.glob("*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        with contextlib.suppress(OSError):
            scratch.rmdir()

    size = sum(info.size for info in storage.list(prefix))
    return FinalResult(index.duration, size, poster is not None, len(index.segments))
