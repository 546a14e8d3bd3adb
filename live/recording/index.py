"""A recording's index: one JSON line per event, appended (and fsynced) as it records.

The index is the recording's source of truth after a crash. Each part is appended
to its segment's object (`seg_00001.m4s`), and its line is appended only after
that, so every part the index names is complete; bytes past the last indexed part
of a segment, or a line torn by a crash (the last one, ignored), are the part in
flight, which is all a crash loses.

    {"type": "init", "init": 1, "tracks": [...]}              before the parts using it
    {"type": "part", "seq": 7, "segment": 2, "init": 1,
     "duration": 0.2, "size": 51234, "discontinuity": false}  "discontinuity" on a
                                                              segment's first part
    {"type": "end", "reason": "publisher_disconnected"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from live.media.packet import TrackInfo

INDEX = "index.jsonl"


def init_key(number: int) -> str:
    return f"init_{number}.mp4"


def segment_key(number: int) -> str:
    return f"seg_{number:05d}.m4s"


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


def init_line(number: int, tracks: tuple[TrackInfo, ...]) -> bytes:
    return _line({"type": "init", "init": number, "tracks": [track_to_json(t) for t in tracks]})


def part_line(
    seq: int, segment: int, init: int, duration: float, size: int, discontinuity: bool
) -> bytes:
    return _line(
        {
            "type": "part",
            "seq": seq,
            "segment": segment,
            "init": init,
            "duration": round(duration, 6),
            "size": size,
            "discontinuity": discontinuity,
        }
    )


def end_line(reason: str) -> bytes:
    return _line({"type": "end", "reason": reason})


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


@dataclass(slots=True)
class PartEntry:
    seq: int
    duration: float
    size: int


@dataclass(slots=True)
class SegmentEntry:
    number: int
    init: int
    discontinuity: bool
    parts: list[PartEntry] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return sum(part.duration for part in self.parts)

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)


@dataclass(slots=True)
class RecordingIndex:
    """What a recording holds, read back from its index."""

    inits: dict[int, tuple[TrackInfo, ...]] = field(default_factory=dict)
    segments: list[SegmentEntry] = field(default_factory=list)
    end_reason: str | None = None
    torn_lines: int = 0

    @property
    def duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


def parse_index(data: bytes) -> RecordingIndex:
    """Read an index, skipping lines a crash tore (or that are otherwise unreadable)."""
    index = RecordingIndex()
    by_number: dict[int, SegmentEntry] = {}
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            kind = record["type"]
            if kind == "init":
                index.inits[int(record["init"])] = tuple(
                    track_from_json(t) for t in record["tracks"]
                )
            elif kind == "part":
                number = int(record["segment"])
                segment = by_number.get(number)
                if segment is None:
                    segment = SegmentEntry(
                        number, int(record["init"]), bool(record.get("discontinuity"))
                    )
                    by_number[number] = segment
                    index.segments.append(segment)
                segment.parts.append(
                    PartEntry(int(record["seq"]), float(record["duration"]), int(record["size"]))
                )
            elif kind == "end":
                index.end_reason = str(record.get("reason"))
        except (ValueError, KeyError, TypeError):
            index.torn_lines += 1
    # Parts of an init section whose line was lost cannot be read.
    index.segments = [s for s in index.segments if s.init in index.inits and s.parts]
    return index
