"""The part journal: the VOD segment under way, part by part, on local disk.

Storage is write-once (object stores have no append), so the recorder holds the
segment under way in memory and writes it whole when it is complete (recorder.py).
Without more, a killed process would lose that whole segment (up to
`segment_target` plus a keyframe interval). The journal closes that gap: every
part the recorder takes is also appended to local files, two per segment under
way, deleted once the segment object and its manifest are in storage. The next
start turns any journal left behind into the segment and manifest the recorder
would have written (same layout, each object once) before the recording is
finalised, so a SIGKILL loses at most the part being appended.

The part's bytes go to a segment file of their own, back to back, which is the
segment object byte for byte; the journal file beside it holds the rest (the
head, the init section, and per part its duration, size and checksum). On local
storage the complete segment file is then moved into storage as the object
(a rename on one file system), so every byte is written once, where a journal
that held the parts too made the segment object a second copy of them. On S3 the
object is uploaded from memory, as before, and the files are deleted.

Durability: each part is written with unbuffered `write()`s (its bytes, then its
record), so it reaches the OS's page cache before the recorder takes the next one,
and a killed *process* keeps it. There is no fsync per part (five a second per stream would load the
disk for little): a power cut or kernel crash may lose the parts the OS had not
written back yet. A torn tail (a record cut short, or with a bad checksum, or a
part whose bytes are missing from the segment file or do not match its checksum)
is detected on reading and dropped with everything after it.

Cluster mode: the journal lives on the disk of the node that recorded, even when
recordings go to S3. Only that node, when it starts again, can replay it; a peer
that finalises a dead node's recording uses what is in the bucket, and the
journal's parts are lost if the node never comes back (its disk is gone). A
journal whose asset another node already finalised is deleted unread.

File format (all integers big-endian), per segment: the segment file
`{journal_dir}/{asset_id}/seg_{number:05d}.m4s` (the parts' moof+mdat bytes, back
to back) and the journal `{journal_dir}/{asset_id}/seg_{number:05d}.journal`,
whose records are

    tag (4 bytes) | payload length (u32) | CRC-32 of tag + payload (u32) | payload

in this order: `HEAD` (JSON: the segment's manifest fields without parts, and the
init section's number and tracks), `INIT` (the init section's bytes: the segment
may be the first to use it, and then it is not stored yet), then one `SPAN` per
part (duration as f64, independent as u8, the part's size as u32 and the CRC-32 of
its bytes as u32), written after the part's bytes. The segment file may be gone
when the recorder was killed after moving it into storage and before storing the
manifest: the stored object is read in its place. (A `PART` record, duration as
f64, independent as u8, then the part's bytes, is what journals held before the
segment file; such journals are still read.)
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
SEGMENT_SUFFIX = ".m4s"
_RECORD = struct.Struct(">4sII")
_PART = struct.Struct(">dB")
_SPAN = struct.Struct(">dBII")
_HEAD, _INIT, _PART_TAG, _SPAN_TAG = b"HEAD", b"INIT", b"PART", b"SPAN"
_NAME = re.compile(r"seg_(\d{5,9})\.journal")
_ASSET_ID = re.compile(r"[A-Za-z0-9_\-]{1,100}")


def journal_path(directory: Path, asset_id: str, segment: int) -> Path:
    return directory / asset_id / f"seg_{segment:05d}{SUFFIX}"


def segment_file(journal: Path) -> Path:
    """The file that holds the parts' bytes of the journal at `journal`."""
    return journal.with_suffix(SEGMENT_SUFFIX)


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


def encode_span(data: bytes, duration: float, independent: bool) -> bytes:
    """The record of a part whose bytes are in the segment file."""
    return encode_record(_SPAN_TAG, _SPAN.pack(duration, independent, len(data), zlib.crc32(data)))


class SegmentJournal:
    """The open journal of one segment under way, and its segment file. Its
    methods do file I/O: the recorder creates and discards journals in a worker
    thread (directory and metadata operations, which can wait on the disk) and
    appends on the event loop (a write() into the page cache, cheaper than the
    hand-off to a thread; the periodic sync keeps the dirty pages that could make
    it wait few)."""

    def __init__(self, path: Path, handle: BinaryIO, segment: BinaryIO) -> None:
        self.path = path
        self.size = 0  # bytes in the segment file
        self._handle = handle
        self._segment = segment

    @property
    def segment_path(self) -> Path:
        return segment_file(self.path)

    @classmethod
    def create(
        cls, path: Path, entry: SegmentEntry, init: bytes, tracks: tuple[TrackInfo, ...]
    ) -> SegmentJournal:
        """Start the journal of `entry` (no parts yet), replacing any old files."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # both kept open part after part, unbuffered: each write goes to the OS
        segment = open(segment_file(path), "wb", buffering=0)  # noqa: SIM115
        try:
            handle = open(path, "wb", buffering=0)  # noqa: SIM115
        except BaseException:
            segment.close()
            raise
        try:
            handle.write(encode_head(entry, tracks) + encode_record(_INIT, init))
        except BaseException:
            handle.close()
            segment.close()
            raise
        return cls(path, handle, segment)

    def append(self, data: bytes, duration: float, independent: bool) -> None:
        """One part: its bytes to the segment file, then its record, which vouches
        for them (a record is never read without the bytes it describes)."""
        _write_all(self._segment.fileno(), data)
        self.size += len(data)
        self._handle.write(encode_span(data, duration, independent))

    def close(self) -> None:
        """Stop writing; the files stay for recovery (or for the segment file to be
        moved into storage)."""
        self._segment.close()
        self._handle.close()

    def discard(self) -> None:
        """The segment is in storage (or will never be): remove the files, and the
        asset's directory once it is empty."""
        self.close()
        remove_journal(self.path)


def _write_all(fd: int, data: bytes) -> None:
    """write() until all of `data` is written (a signal or a full disk may cut a
    write short, a full disk then raising on the next)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def remove_journal(path: Path) -> None:
    for name in (path, segment_file(path)):
        with contextlib.suppress(FileNotFoundError):
            name.unlink()
    with contextlib.suppress(OSError):  # not empty: another segment's journal
        path.parent.rmdir()


def read_journal_files(path: Path) -> tuple[bytes, bytes | None]:
    """A journal's bytes and its segment file's (None when it is gone). Blocks."""
    data = path.read_bytes()
    try:
        return data, segment_file(path).read_bytes()
    except FileNotFoundError:
        return data, None


@dataclass(slots=True)
class JournalContents:
    """A journal read back: the segment as far as its intact records go."""

    entry: SegmentEntry
    tracks: tuple[TrackInfo, ...]
    init: bytes
    chunks: list[bytes] = field(default_factory=list)
    torn: bool = False  # something after the last intact record was dropped
    # Its parts are in a segment file that was not given: read without them.
    segment_missing: bool = False

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def read_journal(data: bytes, segment: bytes | None = None) -> JournalContents | None:
    """The segment a journal (`data`, with its segment file's bytes `segment`)
    holds, up to its first torn or unreadable record or the first part whose bytes
    are not in `segment`; None when not even its head and init section are
    intact."""
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
    position = 0  # in the segment file
    for tag, payload in records[2:]:
        if tag == _SPAN_TAG and len(payload) == _SPAN.size:
            duration, independent, size, checksum = _SPAN.unpack(payload)
            if segment is None:
                contents.segment_missing = True
                break
            chunk = segment[position : position + size]
            if len(chunk) < size or zlib.crc32(chunk) != checksum:
                contents.torn = True
                break
            position += size
        elif tag == _PART_TAG and len(payload) >= _PART.size:
            duration, independent = _PART.unpack_from(payload)
            chunk = payload[_PART.size :]
        else:
            contents.torn = True
            break
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


async def replay_journal(
    storage: Storage, prefix: str, data: bytes, segment: bytes | None = None
) -> int:
    """Store the segment a journal (`data`, with its segment file's bytes
    `segment`, None when that file is gone) holds under `prefix`, as the recorder
    would have, unless it is already stored whole with its manifest (the process
    died between storing it and deleting the journal). How many parts were stored.

    Without its segment file, the journal's parts are read from the stored segment
    object, which the file became (killed between the two, before the manifest).
    After a power cut the manifest may be there and the objects it names not, or
    short (the recorder's writes are durable only at the next sync): the sizes
    are checked, and the journal's copy replaces what does not match."""
    contents = read_journal(data, segment)
    if contents is not None and contents.segment_missing:
        key = prefix + layout.segment_key(contents.entry.number)
        with contextlib.suppress(KeyError):  # neither: nothing to store
            contents = read_journal(data, await storage.get(key))
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
