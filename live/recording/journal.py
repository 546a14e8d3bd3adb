"""The part journal: the VOD segment under way, part by part, on local disk.

Storage is write-once (object stores have no append), so the recorder holds the
segment under way in memory and writes it whole when it is complete (recorder.py).
Without more, a killed process would lose that whole segment (up to
`segment_target` plus a keyframe interval). The journal closes that gap: every
part the recorder takes is also appended to a local file, one per segment under
way, and the file is deleted once the segment object and its manifest are in
storage. The next start turns any journal left behind into the segment and
manifest the recorder would have written (same layout, each object once) before
the recording is finalised, so a SIGKILL loses at most the part being appended.

Durability: each part is one `write()` of an unbuffered file, so it reaches the
OS's page cache before the recorder takes the next one, and a killed *process*
keeps it. There is no fsync per part (five a second per stream would load the
disk for little): a power cut or kernel crash may lose the parts the OS had not
written back yet. A torn tail (a record cut short, or with a bad checksum) is
detected on reading and dropped with everything after it.

Cluster mode: the journal lives on the disk of the node that recorded, even when
recordings go to S3. Only that node, when it starts again, can replay it; a peer
that finalises a dead node's recording uses what is in the bucket, and the
journal's parts are lost if the node never comes back (its disk is gone). A
journal whose asset another node already finalised is deleted unread.

File format (all integers big-endian), one file per segment, named
`{journal_dir}/{asset_id}/seg_{number:05d}.journal`; each record is

    tag (4 bytes) | payload length (u32) | CRC-32 of tag + payload (u32) | payload

in this order: `HEAD` (JSON: the segment's manifest fields without parts, and the
init section's number and tracks), `INIT` (the init section's bytes: the segment
may be the first to use it, and then it is not stored yet), then one `PART` per
part (duration as f64, independent as u8, then the part's moof+mdat bytes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from live.media.packet import TrackInfo
from live.recording import layout
from live.recording.manifest import (
    PartEntry,
    SegmentEntry,
    decode_segment,
    store_segment,
    track_from_json,
    track_to_json,
)
from live.storage.base import Storage
from live.store.times import to_rfc3339, utcnow

log = logging.getLogger(__name__)

SUFFIX = ".journal"
_RECORD = struct.Struct(">4sII")
_PART = struct.Struct(">dB")
_HEAD, _INIT, _PART_TAG = b"HEAD", b"INIT", b"PART"
_NAME = re.compile(r"seg_(\d{5,9})\.journal")
_ASSET_ID = re.compile(r"[A-Za-z0-9_\-]{1,100}")


def journal_path(directory: Path, asset_id: str, segment: int) -> Path:
    return directory / asset_id / f"seg_{segment:05d}{SUFFIX}"


def encode_record(tag: bytes, payload: bytes) -> bytes:
    return _RECORD.pack(tag, len(payload), zlib.crc32(tag + payload)) + payload


def encode_head(entry: SegmentEntry, tracks: tuple[TrackInfo, ...]) -> bytes:
    head = {
        "segment": entry.number,
        "init": entry.init,
        "discontinuity": entry.discontinuity,
        "first_part": entry.first_part,
        "media_start_s": entry.media_start_s,
        "started_at": entry.started_at,
        "tracks": [track_to_json(track) for track in tracks],
    }
    return encode_record(_HEAD, json.dumps(head, separators=(",", ":")).encode())


def part_header(data: bytes, duration: float, independent: bool) -> bytes:
    """The bytes of a PART record that come before the part's own: the record
    header, checksum included, and the part's fields. The part is never copied to
    make its record (parts are 40-120 KB, each copy a fresh mapping to fault in)."""
    fields = _PART.pack(duration, independent)
    checksum = zlib.crc32(data, zlib.crc32(_PART_TAG + fields))
    return _RECORD.pack(_PART_TAG, len(fields) + len(data), checksum) + fields


def encode_part(data: bytes, duration: float, independent: bool) -> bytes:
    return part_header(data, duration, independent) + data


class SegmentJournal:
    """The open journal of one segment under way. Its methods block (file I/O):
    the recorder calls them in a worker thread."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self._handle = handle

    @classmethod
    def create(
        cls, path: Path, entry: SegmentEntry, init: bytes, tracks: tuple[TrackInfo, ...]
    ) -> SegmentJournal:
        """Start the journal of `entry` (no parts yet), replacing any old file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "wb", buffering=0)  # noqa: SIM115 - kept open part after part
        try:
            handle.write(encode_head(entry, tracks) + encode_record(_INIT, init))
        except BaseException:
            handle.close()
            raise
        return cls(path, handle)

    def append(self, data: bytes, duration: float, independent: bool) -> None:
        """One part, in one writev() straight to the OS (no user-space buffer, and
        no copy of the part)."""
        header = part_header(data, duration, independent)
        fd = self._handle.fileno()
        written = os.writev(fd, (header, data))
        if written < len(header) + len(data):  # cut short (a signal, a full disk)
            rest = memoryview(header + data)[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]

    def close(self) -> None:
        """Stop writing; the file stays for recovery."""
        self._handle.close()

    def discard(self) -> None:
        """The segment is in storage (or will never be): remove the file, and the
        asset's directory once it is empty."""
        self._handle.close()
        remove_journal(self.path)


def remove_journal(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):  # not empty: another segment's journal
        path.parent.rmdir()


@dataclass(slots=True)
class JournalContents:
    """A journal read back: the segment as far as its intact records go."""

    entry: SegmentEntry
    tracks: tuple[TrackInfo, ...]
    init: bytes
    chunks: list[bytes] = field(default_factory=list)
    torn: bool = False  # something after the last intact record was dropped

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def read_journal(data: bytes) -> JournalContents | None:
    """The segment a journal holds, up to its first torn or unreadable record;
    None when not even its head and init section are intact."""
    records: list[tuple[bytes, bytes]] = []
    offset = 0
    while offset + _RECORD.size <= len(data):
        tag, length, checksum = _RECORD.unpack_from(data, offset)
        payload = data[offset + _RECORD.size : offset + _RECORD.size + length]
        if len(payload) < length or zlib.crc32(tag + payload) != checksum:
            break
        records.append((tag, payload))
        offset += _RECORD.size + length
    torn = offset < len(data)
    if len(records) < 2 or records[0][0] != _HEAD or records[1][0] != _INIT:
        return None
    try:
        head = json.loads(records[0][1])
        entry = SegmentEntry(
            number=int(head["segment"]),
            init=int(head["init"]),
            discontinuity=bool(head["discontinuity"]),
            first_part=int(head["first_part"]),
            media_start_s=float(head["media_start_s"]),
            started_at=str(head["started_at"]),
        )
        tracks = tuple(track_from_json(track) for track in head["tracks"])
    except (ValueError, KeyError, TypeError):
        return None
    contents = JournalContents(entry, tracks, records[1][1], torn=torn)
    for tag, payload in records[2:]:
        if tag != _PART_TAG or len(payload) < _PART.size:
            contents.torn = True
            break
        duration, independent = _PART.unpack_from(payload)
        chunk = payload[_PART.size :]
        entry.parts.append(PartEntry(duration, len(chunk), bool(independent)))
        contents.chunks.append(chunk)
    return contents


def list_journals(directory: Path) -> dict[str, list[Path]]:
    """The journals under `directory` by asset id, each asset's in segment order."""
    found: dict[str, list[Path]] = {}
    if not directory.is_dir():
        return found
    for asset_dir in sorted(directory.iterdir()):
        if not asset_dir.is_dir() or not _ASSET_ID.fullmatch(asset_dir.name):
            continue
        paths = sorted(p for p in asset_dir.iterdir() if _NAME.fullmatch(p.name))
        if paths:
            found[asset_dir.name] = paths
    return found


async def replay_journal(storage: Storage, prefix: str, data: bytes) -> int:
    """Store the segment a journal (`data`) holds under `prefix`, as the recorder
    would have, unless it is already stored whole with its manifest (the process
    died between storing it and deleting the journal). How many parts were stored.

    After a power cut the manifest may be there and the objects it names not, or
    short (the recorder's writes are durable only at the next sync): the sizes
    are checked, and the journal's copy replaces what does not match."""
    contents = read_journal(data)
    if contents is None or not contents.chunks:
        return 0
    entry = contents.entry
    if await _stored_whole(storage, prefix, entry.number):
        return 0
    if contents.torn:
        log.warning("%s: segment %d's journal had a torn tail, dropped", prefix, entry.number)
    entry.ended_at = to_rfc3339(utcnow())
    # The init section's manifest is written after it: there, both are stored.
    init_stored = await storage.exists(prefix + layout.init_manifest_key(entry.init))
    init_size = await storage.size(prefix + layout.init_key(entry.init))
    init = None if init_stored and init_size else (contents.init, contents.tracks)
    await store_segment(storage, prefix, entry, contents.chunks, init)
    return len(entry.parts)


async def _stored_whole(storage: Storage, prefix: str, number: int) -> bool:
    """Whether segment `number` has its manifest and an object of the size it says."""
    try:
        manifest = decode_segment(await storage.get(prefix + layout.segment_manifest_key(number)))
    except KeyError:
        return False
    except (ValueError, TypeError):
        return False  # torn by a power cut: the journal's copy replaces it
    return await storage.size(prefix + layout.segment_key(number)) == manifest.size
