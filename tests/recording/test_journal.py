"""The part journal: its records byte for byte, torn and empty files, replay into
storage (write-once, same layout as the recorder), and a recorder killed mid-segment
whose journal the next start stores."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from pathlib import Path

import pytest
from recording_testing import feed, new_broadcast, recover_after_restart, video_frames
from recording_testing import record as record_to_end
from waiting import eventually

from live.media.packet import TrackInfo
from live.recording import layout
from live.recording.journal import (
    SegmentJournal,
    journal_path,
    list_journals,
    read_journal,
    read_journal_files,
    replay_journal,
    segment_file,
)
from live.recording.manifest import (
    PartEntry,
    SegmentEntry,
    decode_segment,
    encode_init,
    encode_segment,
)
from live.recording.service import RecordingService
from live.storage import LocalStorage
from live.store import SqliteStore
from live.store.models import Asset

PREFIX = "assets/ast_test/"
TRACKS = (TrackInfo(kind="video", codec="h264", extradata=b"\x01\x64", width=320, height=180),)
INIT = b"\x00\x00\x00\x10ftypiso6init"
PARTS = [(b"moof-one" * 10, 0.2, True), (b"moof-two" * 7, 0.2, False), (b"moof-3", 0.1, False)]


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "recordings")


@pytest.fixture
async def store(tmp_path: Path):
    instance = await SqliteStore.open(tmp_path / "db")
    yield instance
    await instance.close()


def entry(number: int = 3, init: int = 1) -> SegmentEntry:
    return SegmentEntry(
        number=number,
        init=init,
        discontinuity=True,
        first_part=11,
        media_start_s=2.0,
        started_at="2026-12-02T03:04:05.123Z",
    )


def write_journal(tmp_path: Path, parts=PARTS, number: int = 3) -> Path:
    journal = SegmentJournal.create(
        journal_path(tmp_path / "journal", "ast_test", number), entry(number), INIT, TRACKS
    )
    for data, duration, independent in parts:
        journal.append(data, duration, independent)
    journal.close()
    return journal.path


def record(tag: bytes, payload: bytes) -> bytes:
    """A record as the format documents it, built independently of the module."""
    return tag + struct.pack(">II", len(payload), zlib.crc32(tag + payload)) + payload


def read_back(path: Path):
    return read_journal(*read_journal_files(path))


def span(data: bytes, duration: float, independent: bool) -> bytes:
    """A SPAN record as the format documents it."""
    return record(b"SPAN", struct.pack(">dBII", duration, independent, len(data), zlib.crc32(data)))


def test_the_journal_is_its_records_and_the_segment_file_its_parts_byte_for_byte(tmp_path):
    path = write_journal(tmp_path)
    assert path == tmp_path / "journal" / "ast_test" / "seg_00003.journal"
    data = path.read_bytes()
    head_length = struct.unpack(">I", data[4:8])[0]
    head = data[12 : 12 + head_length]
    assert head.startswith(b'{"segment":3,"init":1,"discontinuity":true,"first_part":11,')
    expected = record(b"HEAD", head) + record(b"INIT", INIT)
    for part, duration, independent in PARTS:
        expected += span(part, duration, independent)
    assert data == expected
    # the segment object to be, byte for byte
    assert segment_file(path).read_bytes() == b"".join(part for part, _, _ in PARTS)


def test_a_journal_with_its_parts_inside_still_reads(tmp_path):
    """Journals written before the segment file held each part in a PART record."""
    data = write_journal(tmp_path, parts=[]).read_bytes()
    for part, duration, independent in PARTS:
        data += record(b"PART", struct.pack(">dB", duration, independent) + part)
    contents = read_journal(data)
    assert contents is not None and not contents.torn
    assert contents.chunks == [part for part, _, _ in PARTS]


def test_a_part_cut_short_by_write_is_written_to_its_end(tmp_path, monkeypatch):
    import os

    real = os.write
    monkeypatch.setattr("live.recording.journal.os.write", lambda fd, data: real(fd, data[:5]))
    contents = read_back(write_journal(tmp_path))
    assert contents is not None and not contents.torn
    assert contents.chunks == [data for data, _, _ in PARTS]


def test_several_parts_read_back_as_the_segment(tmp_path):
    contents = read_back(write_journal(tmp_path))
    assert contents is not None and not contents.torn
    assert contents.init == INIT and contents.tracks == TRACKS
    assert contents.data == b"".join(part for part, _, _ in PARTS)
    assert contents.entry.parts == [
        PartEntry(0.2, 80, True), PartEntry(0.2, 56, False), PartEntry(0.1, 6, False)
    ]  # fmt: skip
    assert (contents.entry.number, contents.entry.first_part) == (3, 11)
    assert contents.entry.discontinuity and contents.entry.media_start_s == 2.0


def test_a_torn_tail_is_dropped_at_every_cut(tmp_path):
    """A kill mid-write leaves any prefix of the last record, or of the last part's
    bytes: each reads as the parts before it, flagged torn; the intact files not."""
    path = write_journal(tmp_path)
    data, segment = read_journal_files(path)
    assert segment is not None
    last = len(span(b"moof-3", 0.1, False))
    whole = data[: len(data) - last]
    for cut in range(len(whole) + 1, len(data)):
        contents = read_journal(data[:cut], segment)
        assert contents is not None and contents.torn, cut
        assert contents.data == PARTS[0][0] + PARTS[1][0], cut
    contents = read_journal(whole, segment)
    assert contents is not None and not contents.torn and len(contents.chunks) == 2
    for cut in range(len(segment) - len(b"moof-3"), len(segment)):  # the bytes cut short
        contents = read_journal(data, segment[:cut])
        assert contents is not None and contents.torn and len(contents.chunks) == 2, cut


def test_a_corrupt_record_or_part_ends_the_journal_there(tmp_path):
    path = write_journal(tmp_path)
    data, segment = read_journal_files(path)
    assert segment is not None
    for damaged_data, damaged_segment in (
        (data.replace(span(*PARTS[1]), b"X" + span(*PARTS[1])[1:]), segment),  # the record
        (data, segment.replace(b"moof-two", b"moof-tw0", 1)),  # the part's bytes
    ):
        contents = read_journal(damaged_data, damaged_segment)
        assert contents is not None and contents.torn
        assert contents.data == PARTS[0][0] and len(contents.entry.parts) == 1


def test_without_its_segment_file_a_journal_says_so(tmp_path):
    contents = read_journal(write_journal(tmp_path).read_bytes())
    assert contents is not None and contents.segment_missing and contents.chunks == []


def test_an_empty_or_headless_journal_holds_nothing(tmp_path):
    assert read_journal(b"") is None
    data = write_journal(tmp_path, parts=[]).read_bytes()
    for cut in range(len(data)):  # head or init section torn
        assert read_journal(data[:cut]) is None, cut
    contents = read_journal(data)
    assert contents is not None and contents.chunks == [] and not contents.torn


async def test_replay_stores_segment_init_and_manifests_as_the_recorder_would(tmp_path, storage):
    data, segment = read_journal_files(write_journal(tmp_path))
    assert await replay_journal(storage, PREFIX, data, segment) == 3
    names = [info.key[len(PREFIX) :] for info in await storage.list(PREFIX)]
    assert names == ["init_1.json", "init_1.mp4", "seg_00003.json", "seg_00003.m4s"]
    assert await storage.get(PREFIX + "init_1.mp4") == INIT
    assert await storage.get(PREFIX + "init_1.json") == encode_init(1, TRACKS)
    assert await storage.get(PREFIX + "seg_00003.m4s") == b"".join(p for p, _, _ in PARTS)
    manifest = decode_segment(await storage.get(PREFIX + "seg_00003.json"))
    assert manifest.parts == read_journal(data, segment).entry.parts  # type: ignore[union-attr]
    assert (manifest.number, manifest.init, manifest.first_part) == (3, 1, 11)
    assert manifest.started_at == "2026-12-02T03:04:05.123Z" and manifest.ended_at


async def test_replay_keeps_an_init_section_already_stored(tmp_path, storage):
    await layout.put(storage, PREFIX, layout.init_key(1), b"the stored one")
    await layout.put(storage, PREFIX, layout.init_manifest_key(1), encode_init(1, TRACKS))
    assert await replay_journal(storage, PREFIX, *read_journal_files(write_journal(tmp_path))) == 3
    assert await storage.get(PREFIX + "init_1.mp4") == b"the stored one"


def stored_entry(size: int) -> bytes:
    stored = entry()
    stored.parts.append(PartEntry(0.5, size, True))
    return encode_segment(stored)


async def test_a_journal_whose_segment_was_stored_writes_nothing(tmp_path, storage):
    """Killed after the manifest was stored but before the journal was deleted."""
    await layout.put(storage, PREFIX, layout.segment_key(3), b"stored segment")
    await layout.put(storage, PREFIX, layout.segment_manifest_key(3), stored_entry(14))
    assert await replay_journal(storage, PREFIX, *read_journal_files(write_journal(tmp_path))) == 0
    names = [info.key[len(PREFIX) :] for info in await storage.list(PREFIX)]
    assert names == ["seg_00003.json", "seg_00003.m4s"]
    assert await storage.get(PREFIX + "seg_00003.m4s") == b"stored segment"


@pytest.mark.parametrize("stored", [None, b"", b"stored seg"])
async def test_a_segment_a_power_cut_left_short_is_stored_again_from_its_journal(
    tmp_path, storage, stored
):
    """Its manifest reached the disk, its bytes (written without an fsync) did not,
    or not all: missing, empty or short against the manifest's 14 bytes."""
    if stored is not None:
        await layout.put(storage, PREFIX, layout.segment_key(3), stored)
    await layout.put(storage, PREFIX, layout.segment_manifest_key(3), stored_entry(14))
    await layout.put(storage, PREFIX, layout.init_key(1), b"")  # the init section too
    await layout.put(storage, PREFIX, layout.init_manifest_key(1), encode_init(1, TRACKS))
    assert await replay_journal(storage, PREFIX, *read_journal_files(write_journal(tmp_path))) == 3
    assert await storage.get(PREFIX + "seg_00003.m4s") == b"".join(p for p, _, _ in PARTS)
    manifest = decode_segment(await storage.get(PREFIX + "seg_00003.json"))
    assert manifest.size == sum(len(p) for p, _, _ in PARTS)
    assert await storage.get(PREFIX + "init_1.mp4") == INIT


async def test_killed_after_its_segment_file_became_the_object_the_manifest_follows(
    tmp_path, storage
):
    """On local storage the segment file is moved into storage; killed before the
    manifest, the journal's parts are read back from the stored object."""
    path = write_journal(tmp_path)
    await layout.put_file(storage, PREFIX, layout.segment_key(3), segment_file(path))
    data, segment = read_journal_files(path)
    assert segment is None
    assert await replay_journal(storage, PREFIX, data, segment) == 3
    manifest = decode_segment(await storage.get(PREFIX + "seg_00003.json"))
    assert (
        manifest.size
        == sum(len(p) for p, _, _ in PARTS)
        == await storage.size(PREFIX + "seg_00003.m4s")
    )
    # neither the file nor the object: nothing to store
    other = write_journal(tmp_path, number=4)
    segment_file(other).unlink()
    assert await replay_journal(storage, PREFIX, *read_journal_files(other)) == 0


async def test_replaying_an_empty_journal_writes_nothing(tmp_path, storage):
    for data in (b"", write_journal(tmp_path, parts=[]).read_bytes()):
        assert await replay_journal(storage, PREFIX, data) == 0
    assert await storage.list(PREFIX) == []


def test_journals_are_listed_by_asset_in_segment_order(tmp_path):
    write_journal(tmp_path, number=12)
    write_journal(tmp_path, number=9)
    (tmp_path / "journal" / "ast_test" / "notes.txt").write_text("not a journal")
    (tmp_path / "journal" / "bad name!").mkdir()
    found = list_journals(tmp_path / "journal")
    assert list(found) == ["ast_test"]
    assert [p.name for p in found["ast_test"]] == ["seg_00009.journal", "seg_00012.journal"]
    assert list_journals(tmp_path / "missing") == {}


class PartLog:
    """A second tap on the packager: every part it handed the recorder."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def on_init(self, data, tracks) -> None: ...

    def on_segment(self, discontinuity) -> None: ...

    def on_part(self, data: bytes, duration: float, independent: bool) -> None:
        self.parts.append(data)

    def on_end(self, reason) -> None: ...


async def test_a_killed_recorder_loses_no_part_it_took(tmp_path, store, storage, clip):
    """1 s segments of a 3 s clip, killed (cancelled) in the third: the restart
    stores the third from its journal, so the recording is every part the
    packager handed over, byte for byte, and every frame in them."""
    journals = tmp_path / "journal"
    service = RecordingService(store, storage, segment_target=1.0, journal_dir=journals)
    broadcast = await new_broadcast(store)
    running = broadcast.start(service)
    parts = PartLog()
    broadcast.packager.taps.append(parts)
    await feed(broadcast, (clip.tracks, clip.packets), end=None)
    recorder = next(iter(service.recorders))

    def journalled() -> int:
        total = 0
        for paths in list_journals(journals).values():
            for path in paths:
                contents = read_back(path)
                total += len(contents.chunks) if contents else 0
        return total

    await eventually(
        lambda: (
            recorder.segments_written == 2
            and recorder.parts_written + journalled() == len(parts.parts)
        ),
        10,
    )
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    (asset,), _ = await store.list_assets()
    prefix = layout.asset_prefix(asset.id)
    assert [p.name for p in list_journals(journals)[asset.id]] == ["seg_00003.journal"]

    asset = await recover_after_restart(store, storage, asset.id, journal_dir=journals)
    assert list_journals(journals) == {} and not (journals / asset.id).exists()
    assert asset.status == "ready", asset.error
    segments = [layout.segment_key(n) for n in (1, 2, 3)]
    stored = b"".join([await storage.get(prefix + name) for name in segments])
    assert stored == b"".join(parts.parts)
    frames = video_frames(storage.local_path(prefix + "download.mp4"))
    assert 2 * 30 < frames < clip.frames  # only the part the packager was making is missing
    assert abs(asset.duration_s - frames / 30) < 0.05


async def test_a_finished_recording_leaves_no_journal(tmp_path, store, storage, clip):
    journals = tmp_path / "journal"
    service = RecordingService(store, storage, segment_target=1.0, journal_dir=journals)
    broadcast = await new_broadcast(store)
    await record_to_end(service, broadcast, (clip.tracks, clip.packets))
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready"
    assert video_frames(storage.local_path(f"assets/{asset.id}/download.mp4")) == clip.frames
    assert list(journals.iterdir()) == []


async def test_journals_of_a_finished_or_deleted_asset_are_deleted_unread(tmp_path, store, storage):
    journals = tmp_path / "journal"
    gone = write_journal(tmp_path)  # asset "ast_test" is not in the store
    broadcast = await new_broadcast(store)
    asset = await store.create_asset(
        Asset(livestream_id=broadcast.livestream.id, session_id=broadcast.session.id)
    )
    await store.update_asset(asset.id, status="ready")  # a peer finalised it already
    finished = SegmentJournal.create(journal_path(journals, asset.id, 4), entry(4), INIT, TRACKS)
    finished.append(b"moof", 0.2, True)
    finished.close()
    service = RecordingService(store, storage, journal_dir=journals)
    assert await service.replay_journals() == 0
    assert not gone.exists() and not finished.path.exists()
    assert await storage.list("") == [] and list(journals.iterdir()) == []


class CountingWrites(LocalStorage):
    """Which way each segment object arrived: written from memory, or moved."""

    def __init__(self, root: Path, *, local: bool = True) -> None:
        super().__init__(root)
        self.local = local
        self.written: list[str] = []
        self.moved: list[str] = []

    async def put_parts(self, key, parts, **options) -> int:
        self.written.append(key)
        return await super().put_parts(key, parts, **options)

    async def put_file(self, key, path, **options) -> None:
        self.moved.append(key)
        await super().put_file(key, path, **options)

    def local_path(self, key: str) -> Path | None:
        return super().local_path(key) if self.local else None


@pytest.mark.parametrize("local", [True, False])
async def test_on_local_storage_the_journal_s_segment_file_becomes_the_object(
    tmp_path, store, clip, local
):
    """Each part is written once: the journal's segment file is moved into place.
    Storage without local files (S3) gets the segment from memory instead."""
    storage = CountingWrites(tmp_path / "recordings", local=local)
    journals = tmp_path / "journal"
    service = RecordingService(store, storage, segment_target=1.0, journal_dir=journals)
    broadcast = await new_broadcast(store)
    await record_to_end(service, broadcast, (clip.tracks, clip.packets))
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    moved = [key for key in storage.moved if key.endswith(".m4s")]
    written = [key for key in storage.written if key.endswith(".m4s")]
    assert (len(moved), len(written)) == ((3, 0) if local else (0, 3))
    assert list(journals.iterdir()) == []
    assert video_frames(storage.root / f"assets/{asset.id}/download.mp4") == clip.frames
