"""A recording's manifests, and the recording read back from them.

Each complete VOD segment gets a small JSON object of its own, written once right
after the segment, so no object ever grows (object stores have no append). The
manifests that exist are the recording: a segment whose manifest is missing is the
one a crash interrupted between its two writes, and it is left out.

On local disk the recorder's writes are durable only at the next file-system sync
(recorder.py), so after a power cut a manifest may name a segment that is missing
or shorter than it says, and any later segment may be whole again (the disk need
not keep the order of the writes). The recording then ends at its first segment
that is not stored whole with its manifest and init section: everything after it
is left out too, instead of a VOD that jumps over the hole as if no time passed.
Segments are numbered 1, 2, 3... in each asset, so a missing number is a hole.

    init_1.json     {"init": 1, "tracks": [{"kind": "video", "codec": "h264", ...}]}
    seg_00007.json  {"segment": 7, "init": 1, "discontinuity": false,
                     "duration": 4.0, "size": 1503231,
                     "parts": [{"duration": 0.2, "size": 75321, "independent": true}, ...],
                     "first_part": 121, "media_start_s": 24.0,
                     "started_at": "2026-12-02T03:04:05.123Z", "ended_at": "..."}

`discontinuity` marks a segment after a gap (a reconnect, or parts the recorder had
to drop); `media_start_s` is where it starts in the recording's own time line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from live.media.packet import TrackInfo
from live.recording import layout
from live.storage.base import ObjectInfo, Storage

log = logging.getLogger(__name__)

# Manifests read at once when a recording is loaded.
_READ_CONCURRENCY = 16


def track_to_json(track: TrackInfo) -> dict[str, Any]:
    return {
        "kind": track.kind,
        "codec": track.codec,
        "extradata": track.extradata.hex(),
        "width": track.width,
        "height": track.height,
        "sample_rate": track.sample_rate,
        "channels": track.channels,
        "codec_string": track.codec_string,
    }


def track_from_json(data: dict[str, Any]) -> TrackInfo:
    return TrackInfo(
        kind=data["kind"],
        codec=data["codec"],
        extradata=bytes.fromhex(data.get("extradata", "")),
        width=int(data.get("width", 0)),
        height=int(data.get("height", 0)),
        sample_rate=int(data.get("sample_rate", 0)),
        channels=int(data.get("channels", 0)),
        codec_string=data.get("codec_string", ""),
    )


@dataclass(slots=True)
class PartEntry:
    duration: float
    size: int
    independent: bool = True


@dataclass(slots=True)
class SegmentEntry:
    number: int
    init: int
    discontinuity: bool
    parts: list[PartEntry] = field(default_factory=list)
    first_part: int = 1
    media_start_s: float = 0.0
    started_at: str = ""
    ended_at: str = ""

    @property
    def duration(self) -> float:
        return sum(part.duration for part in self.parts)

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)


@dataclass(slots=True)
class RecordingIndex:
    """What a recording holds: its init sections' tracks and its segments, in order."""

    inits: dict[int, tuple[TrackInfo, ...]] = field(default_factory=dict)
    segments: list[SegmentEntry] = field(default_factory=list)
    # Segment objects without a manifest (interrupted by a crash): left out.
    orphans: list[str] = field(default_factory=list)
    # Objects of the segments after the first hole (a power cut): left out too.
    dropped: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


def encode_init(number: int, tracks: tuple[TrackInfo, ...]) -> bytes:
    return _json({"init": number, "tracks": [track_to_json(t) for t in tracks]})


def decode_init(data: bytes) -> tuple[int, tuple[TrackInfo, ...]]:
    record = json.loads(data)
    return int(record["init"]), tuple(track_from_json(t) for t in record["tracks"])


def encode_segment(segment: SegmentEntry) -> bytes:
    return _json(
        {
            "segment": segment.number,
            "init": segment.init,
            "discontinuity": segment.discontinuity,
            "duration": round(segment.duration, 6),
            "size": segment.size,
            "parts": [
                {"duration": round(p.duration, 6), "size": p.size, "independent": p.independent}
                for p in segment.parts
            ],
            "first_part": segment.first_part,
            "media_start_s": round(segment.media_start_s, 6),
            "started_at": segment.started_at,
            "ended_at": segment.ended_at,
        }
    )


def decode_segment(data: bytes) -> SegmentEntry:
    record = json.loads(data)
    return SegmentEntry(
        number=int(record["segment"]),
        init=int(record["init"]),
        discontinuity=bool(record.get("discontinuity")),
        parts=[
            PartEntry(float(p["duration"]), int(p["size"]), bool(p.get("independent", True)))
            for p in record["parts"]
        ],
        first_part=int(record.get("first_part", 1)),
        media_start_s=float(record.get("media_start_s", 0.0)),
        started_at=str(record.get("started_at", "")),
        ended_at=str(record.get("ended_at", "")),
    )


async def store_segment(
    storage: Storage,
    prefix: str,
    entry: SegmentEntry,
    parts: Sequence[bytes],
    init: tuple[bytes, tuple[TrackInfo, ...]] | None,
    *,
    durable: bool = True,
    segment_file: Path | None = None,
) -> int:
    """Write a complete segment: its init section and that one's manifest first
    when `init` is given (the segment is the first to use it), then the segment
    (its parts, written as they are), then its manifest, so a manifest only ever
    names what is stored (on disk too when `durable`; else only until a power
    cut before the next sync, which `load_index` tolerates). The segment's size.

    `segment_file`, a local file that holds `parts` back to back (the journal's),
    becomes the segment object instead: moved, not written again."""
    if init is not None:
        init_data, tracks = init
        init_manifest = encode_init(entry.init, tracks)
        await layout.put(storage, prefix, layout.init_key(entry.init), init_data, durable=durable)
        await layout.put(
            storage, prefix, layout.init_manifest_key(entry.init), init_manifest, durable=durable
        )
    name = layout.segment_key(entry.number)
    if segment_file is not None:
        await layout.put_file(storage, prefix, name, segment_file, durable=durable)
        size = sum(len(part) for part in parts)
    else:
        size = await layout.put_parts(storage, prefix, name, parts, durable=durable)
    manifest = encode_segment(entry)
    await layout.put(
        storage, prefix, layout.segment_manifest_key(entry.number), manifest, durable=durable
    )
    return size


def _json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


async def load_index(storage: Storage, prefix: str) -> RecordingIndex:
    """The recording under `prefix`, from the manifests that exist. A segment is
    kept when its manifest reads, its object has the manifest's size, its init
    section (with its tracks) is stored and every segment before it is kept;
    anything else is logged and left out."""
    objects = {info.key[len(prefix) :]: info for info in await storage.list(prefix)}
    slots = asyncio.Semaphore(_READ_CONCURRENCY)

    async def read(name: str) -> bytes | None:
        async with slots:
            try:
                return await storage.get(prefix + name)
            except KeyError:  # deleted since the listing
                return None

    segment_names = sorted(n for n in objects if layout.segment_manifest_number(n) is not None)
    init_names = sorted(n for n in objects if n.startswith("init_") and n.endswith(".json"))
    raw = await asyncio.gather(*(read(name) for name in init_names + segment_names))
    index = RecordingIndex()
    for name, data in zip(init_names, raw[: len(init_names)], strict=True):
        try:
            number, tracks = decode_init(data or b"")
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable init manifest %s", prefix, name)
            continue
        if _stored(objects, layout.init_key(number)):
            index.inits[number] = tracks
    whole: dict[int, SegmentEntry] = {}  # by the number in the manifest's name
    for name, data in zip(segment_names, raw[len(init_names) :], strict=True):
        number = layout.segment_manifest_number(name)
        assert number is not None
        try:
            segment = decode_segment(data or b"")
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable segment manifest %s", prefix, name)
            continue
        stored = objects.get(layout.segment_key(number))
        if segment.number != number:
            log.warning("%s: %s describes segment %d", prefix, name, segment.number)
        elif stored is None or stored.size != segment.size or not segment.parts:
            log.warning("%s: segment %d does not match its manifest", prefix, number)
        elif segment.init not in index.inits:
            log.warning("%s: segment %d has no init section", prefix, number)
        else:
            whole[number] = segment
    described = {layout.segment_manifest_number(name) for name in segment_names}
    number = 1
    while number in whole:
        index.segments.append(whole[number])
        number += 1
    if any(later >= number for later in described):
        log.warning(
            "%s: segment %d is not stored whole: the recording ends before it", prefix, number
        )
    for name in sorted(objects):
        manifest_of = layout.segment_manifest_number(name)
        object_of = layout.segment_number(name)
        if object_of is not None and object_of not in described:
            index.orphans.append(prefix + name)
        elif (manifest_of or object_of or 0) >= number:
            index.dropped.append(prefix + name)
    return index


def _stored(objects: dict[str, ObjectInfo], name: str) -> bool:
    info = objects.get(name)
    return info is not None and info.size > 0
