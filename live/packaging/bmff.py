"""Just enough ISO BMFF reading to check what the packager writes.

The writer needs the track timescales PyAV chose for the init section; tests and
tools read fragments back (tfdt, sample durations, sync flags) to check that
parts hold exactly the samples they should (ISO 14496-12 8.8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

_TFHD_BASE_DATA_OFFSET = 0x000001
_TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
_TFHD_DEFAULT_DURATION = 0x000008
_TFHD_DEFAULT_SIZE = 0x000010
_TFHD_DEFAULT_FLAGS = 0x000020
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_SAMPLE_FLAGS = 0x000004
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTO = 0x000800
_SAMPLE_IS_NON_SYNC = 0x00010000


class BoxError(ValueError):
    """Bytes that are not the ISO BMFF the muxer should have written."""


@dataclass(frozen=True, slots=True)
class TrackDefaults:
    """trex defaults from the init segment's mvex, per track id."""

    duration: int = 0
    size: int = 0
    flags: int = 0


@dataclass(slots=True)
class TrackRun:
    track_id: int
    base_decode_time: int
    durations: list[int] = field(default_factory=list)
    first_sample_sync: bool = False

    @property
    def duration(self) -> int:
        return sum(self.durations)


def iter_boxes(data: bytes, offset: int = 0, end: int | None = None):
    """Yield (type, start, payload_start, box_end) for each box in data[offset:end]."""
    end = len(data) if end is None else end
    while offset + 8 <= end:
        size, box_type = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise BoxError("truncated largesize box header")
            size = struct.unpack_from(">Q", data, offset + 8)[0]
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise BoxError(f"box {box_type!r} overruns its container")
        yield box_type, offset, offset + header, offset + size
        offset += size


def read_track_defaults(init: bytes) -> tuple[dict[int, TrackDefaults], dict[int, int]]:
    """trex defaults and media timescales (from mdhd) per track id of an init segment."""
    defaults: dict[int, TrackDefaults] = {}
    timescales: dict[int, int] = {}
    for box_type, _, payload, end in iter_boxes(init):
        if box_type != b"moov":
            continue
        for inner, _, inner_payload, inner_end in iter_boxes(init, payload, end):
            if inner == b"mvex":
                for leaf, _, leaf_payload, _ in iter_boxes(init, inner_payload, inner_end):
                    if leaf == b"trex":
                        track_id, _, duration, size, flags = struct.unpack_from(
                            ">IIIII", init, leaf_payload + 4
                        )
                        defaults[track_id] = TrackDefaults(duration, size, flags)
            elif inner == b"trak":
                track_id, timescale = _track_id_and_timescale(init, inner_payload, inner_end)
                timescales[track_id] = timescale
    return defaults, timescales


def _track_id_and_timescale(data: bytes, start: int, end: int) -> tuple[int, int]:
    track_id = timescale = 0
    for box_type, _, payload, box_end in iter_boxes(data, start, end):
        if box_type == b"tkhd":
            version = data[payload]
            track_id = struct.unpack_from(">I", data, payload + (20 if version else 12))[0]
        elif box_type == b"mdia":
            for inner, _, inner_payload, _ in iter_boxes(data, payload, box_end):
                if inner == b"mdhd":
                    version = data[inner_payload]
                    timescale = struct.unpack_from(
                        ">I", data, inner_payload + (20 if version else 12)
                    )[0]
    return track_id, timescale


def parse_moof(moof: bytes, defaults: dict[int, TrackDefaults]) -> dict[int, TrackRun]:
    runs: dict[int, TrackRun] = {}
    for box_type, _, payload, end in iter_boxes(moof):
        if box_type != b"moof":
            continue
        for inner, _, inner_payload, inner_end in iter_boxes(moof, payload, end):
            if inner == b"traf":
                run = _parse_traf(moof, inner_payload, inner_end, defaults)
                runs[run.track_id] = run
    return runs


def _parse_traf(data: bytes, start: int, end: int, defaults: dict[int, TrackDefaults]) -> TrackRun:
    run = TrackRun(track_id=0, base_decode_time=0)
    default_duration = default_flags = 0
    for box_type, _, payload, _ in iter_boxes(data, start, end):
        flags = int.from_bytes(data[payload + 1 : payload + 4], "big")
        if box_type == b"tfhd":
            run.track_id = struct.unpack_from(">I", data, payload + 4)[0]
            trex = defaults.get(run.track_id, TrackDefaults())
            default_duration, default_flags = trex.duration, trex.flags
            cursor = payload + 8
            if flags & _TFHD_BASE_DATA_OFFSET:
                cursor += 8
            if flags & _TFHD_SAMPLE_DESCRIPTION_INDEX:
                cursor += 4
            if flags & _TFHD_DEFAULT_DURATION:
                default_duration = struct.unpack_from(">I", data, cursor)[0]
                cursor += 4
            if flags & _TFHD_DEFAULT_SIZE:
                cursor += 4
            if flags & _TFHD_DEFAULT_FLAGS:
                default_flags = struct.unpack_from(">I", data, cursor)[0]
        elif box_type == b"tfdt":
            version = data[payload]
            fmt = ">Q" if version == 1 else ">I"
            run.base_decode_time = struct.unpack_from(fmt, data, payload + 4)[0]
        elif box_type == b"trun":
            _parse_trun(data, payload, flags, default_duration, default_flags, run)
    return run


def _parse_trun(
    data: bytes, payload: int, flags: int, default_duration: int, default_flags: int, run: TrackRun
) -> None:
    count = struct.unpack_from(">I", data, payload + 4)[0]
    cursor = payload + 8
    if flags & _TRUN_DATA_OFFSET:
        cursor += 4
    first_flags: int | None = None
    if flags & _TRUN_FIRST_SAMPLE_FLAGS:
        first_flags = struct.unpack_from(">I", data, cursor)[0]
        cursor += 4
    for index in range(count):
        duration = default_duration
        sample_flags = default_flags
        if flags & _TRUN_DURATION:
            duration = struct.unpack_from(">I", data, cursor)[0]
            cursor += 4
        if flags & _TRUN_SIZE:
            cursor += 4
        if flags & _TRUN_FLAGS:
            sample_flags = struct.unpack_from(">I", data, cursor)[0]
            cursor += 4
        if flags & _TRUN_CTO:
            cursor += 4
        if index == 0:
            if first_flags is not None:
                sample_flags = first_flags
            run.first_sample_sync = not sample_flags & _SAMPLE_IS_NON_SYNC
        run.durations.append(duration)
