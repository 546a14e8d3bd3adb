"""The recorder and finaliser on real encoded media, with the real hub and SQLite store."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path

import av
import m3u8
import pytest
from media_fixtures import make_clip
from recording_testing import (
    feed,
    new_broadcast,
    record,
    record_then_die,
    recover_after_restart,
    video_frames,
)
from waiting import eventually

from live.media.packet import MediaPacket
from live.recording import layout
from live.recording.finalize import finalise_recording
from live.recording.service import RecordingService
from live.storage import LocalStorage, Storage, StorageError
from live.store import SqliteStore


@pytest.fixture
async def store(tmp_path: Path):
    instance = await SqliteStore.open(tmp_path / "db")
    yield instance
    await instance.close()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "recordings")


def shifted(packets: list[MediaPacket], seconds: float) -> list[MediaPacket]:
    """The same packets later on the publisher's clock (a second clip in a row)."""
    out = []
    for packet in packets:
        offset = round(seconds / packet.time_base)
        out.append(dataclasses.replace(packet, dts=packet.dts + offset, pts=packet.pts + offset))
    return out


async def test_a_session_becomes_a_ready_asset_with_every_frame(store, storage, clip, tmp_path):
    service = RecordingService(store, storage)
    events = []

    async def listener(event, asset):
        events.append((event, asset.id))

    service.listeners.append(listener)
    broadcast = await new_broadcast(store)
    await record(service, broadcast, (clip.tracks, clip.packets))

    (asset,), total = await store.list_assets()
    assert total == 1 and asset.status == "ready", asset.error
    assert asset.session_id == broadcast.session.id
    assert (await store.get_session(broadcast.session.id)).asset_id == asset.id
    assert events == [("asset.ready", asset.id)]
    assert abs(asset.duration_s - 3.0) < 0.1
    prefix = f"assets/{asset.id}/"
    listing = await storage.list(prefix)
    names = {info.key[len(prefix) :] for info in listing}
    assert {"index.m3u8", "download.mp4", "poster.jpg", "init_1.mp4", "init_1.json"} <= names
    assert {"seg_00001.m4s", "seg_00001.json"} <= names and not any("/" in n for n in names)
    assert asset.size_bytes == sum(info.size for info in listing)

    mp4 = storage.local_path(prefix + "download.mp4")
    assert video_frames(mp4) == clip.frames
    assert mp4.read_bytes()[4:8] == b"ftyp"
    assert mp4.read_bytes().find(b"moov") < mp4.read_bytes().find(b"mdat")  # fast start

    playlist = m3u8.loads((await storage.get(prefix + "index.m3u8")).decode())
    assert playlist.playlist_type == "vod" and playlist.is_endlist
    assert abs(sum(s.duration for s in playlist.segments) - 3.0) < 0.1
    assert all(round(s.duration) <= playlist.target_duration for s in playlist.segments)
    # the segments play as HLS: init + segments hold every frame
    joined = tmp_path / "joined.mp4"
    joined.write_bytes(
        await storage.get(prefix + "init_1.mp4")
        + b"".join([await storage.get(prefix + s.uri) for s in playlist.segments])
    )
    assert video_frames(joined) == clip.frames

    with av.open(str(storage.local_path(prefix + "poster.jpg"))) as poster:
        frame = next(poster.decode(video=0))
        assert (frame.width, frame.height) == (clip.video.width, clip.video.height)


async def test_a_reconnect_is_one_asset_with_a_discontinuity(store, storage, media_dir):
    clip = make_clip(media_dir, seconds=2.0)
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)
    # OBS starts its clock at 0 again when it comes back
    await record(
        service, broadcast, (clip.tracks, clip.packets), "publisher", (clip.tracks, clip.packets)
    )
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    assert abs(asset.duration_s - 4.0) < 0.15
    prefix = f"assets/{asset.id}/"
    playlist = m3u8.loads((await storage.get(prefix + "index.m3u8")).decode())
    assert [s.discontinuity for s in playlist.segments].count(True) == 1
    assert video_frames(storage.local_path(prefix + "download.mp4")) == 2 * clip.frames


async def test_a_resolution_change_still_makes_one_playable_mp4(store, storage, media_dir):
    small = make_clip(media_dir, size="320x180", seconds=2.0)
    large = make_clip(media_dir, size="640x360", seconds=2.0)
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)
    await record(
        service,
        broadcast,
        (small.tracks, small.packets),
        (large.tracks, shifted(large.packets, 2.0)),
    )
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    prefix = f"assets/{asset.id}/"
    playlist = (await storage.get(prefix + "index.m3u8")).decode()
    assert 'URI="init_1.mp4"' in playlist and 'URI="init_2.mp4"' in playlist
    assert "#EXT-X-DISCONTINUITY" in playlist
    mp4 = storage.local_path(prefix + "download.mp4")
    with av.open(str(mp4)) as container:
        (video,) = container.streams.video
        assert (video.width, video.height) == (320, 180)  # the first configuration
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == small.frames + large.frames


async def test_record_false_records_nothing(store, storage, clip):
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store, record=False)
    assert service.consumer(broadcast) is None
    assert (await store.list_assets())[1] == 0


async def test_a_crash_loses_only_the_segment_under_way(store, storage, clip):
    """1 s recording segments of a 3 s clip: the first two are stored whole with
    their manifests, the third (and the part the packager holds) was in memory."""
    service = RecordingService(store, storage, segment_target=1.0)
    broadcast = await new_broadcast(store)
    await record_then_die(service, broadcast, clip, segments=2)
    (asset,), _ = await store.list_assets()
    assert asset.status == "recording"
    prefix = f"assets/{asset.id}/"
    names = [info.key[len(prefix) :] for info in await storage.list(prefix)]
    assert names == ["init_1.json", "init_1.mp4", "seg_00001.json", "seg_00001.m4s",
                     "seg_00002.json", "seg_00002.m4s"]  # fmt: skip
    result = await finalise_recording(storage, prefix)
    assert result.segments == 2 and abs(result.duration_s - 2.0) < 0.01
    assert video_frames(storage.local_path(prefix + "download.mp4")) == 2 * 30


async def test_recover_finalises_what_a_crash_left(store, storage, clip):
    service = RecordingService(store, storage, segment_target=1.0)
    broadcast = await new_broadcast(store)
    await record_then_die(service, broadcast, clip, segments=2)
    (asset,), _ = await store.list_assets()
    assert asset.status == "recording"
    # killed between the second segment and its manifest
    prefix = f"assets/{asset.id}/"
    await storage.delete_many([prefix + layout.segment_manifest_key(2)])
    asset = await recover_after_restart(store, storage, asset.id)
    assert asset.status == "ready", asset.error
    assert abs(asset.duration_s - 1.0) < 0.01
    assert not await storage.exists(prefix + layout.segment_key(2))  # the orphan went
    assert video_frames(storage.local_path(prefix + "download.mp4")) == 30


@pytest.mark.parametrize("damage", ["short", "missing"])
async def test_a_power_cut_that_left_a_segment_short_ends_the_asset_before_it(
    store, storage, media_dir, damage
):
    """The recorder's writes are durable only at the next sync: after a power cut a
    manifest may name a segment cut short or gone while the next one is whole. The
    asset ends before the hole instead of jumping over it."""
    clip = make_clip(media_dir, seconds=4.0)
    service = RecordingService(store, storage, segment_target=1.0)
    broadcast = await new_broadcast(store)
    await record_then_die(service, broadcast, clip, segments=3)
    (asset,), _ = await store.list_assets()
    prefix = f"assets/{asset.id}/"
    second = storage.local_path(prefix + layout.segment_key(2))
    if damage == "short":
        with open(second, "r+b") as handle:
            handle.truncate(second.stat().st_size // 2)
    else:
        second.unlink()
    asset = await recover_after_restart(store, storage, asset.id)
    assert asset.status == "ready", asset.error
    assert abs(asset.duration_s - 1.0) < 0.01
    names = {info.key[len(prefix) :] for info in await storage.list(prefix)}
    assert not {layout.segment_key(3), layout.segment_manifest_key(3)} & names
    playlist = m3u8.loads((await storage.get(prefix + layout.PLAYLIST)).decode())
    assert [segment.uri for segment in playlist.segments] == [layout.segment_key(1)]
    assert video_frames(storage.local_path(prefix + "download.mp4")) == 30


class FullDisk(LocalStorage):
    """Storage that runs out of space after `budget` bytes."""

    def __init__(self, root, budget: int) -> None:
        super().__init__(root)
        self.budget = budget

    async def put(self, key: str, data: bytes, **options) -> None:
        self.budget -= len(data)
        if self.budget < 0:
            raise StorageError(f"storage: cannot write {key}: the disk is full")
        await super().put(key, data, **options)

    put_parts = Storage.put_parts  # joins, then `put` above: every write is counted


async def test_storage_failure_fails_the_asset_and_spares_the_others(store, tmp_path, clip):
    broken = RecordingService(store, FullDisk(tmp_path / "full", budget=40_000), segment_target=1.0)
    healthy = RecordingService(store, LocalStorage(tmp_path / "ok"))
    failing_broadcast = await new_broadcast(store)
    fine_broadcast = await new_broadcast(store)
    events = []

    async def listener(event, asset):
        events.append(event)

    broken.listeners.append(listener)
    running = [failing_broadcast.start(broken), fine_broadcast.start(healthy)]
    for step_broadcast in (failing_broadcast, fine_broadcast):
        step_broadcast.hub.set_tracks(clip.tracks)
    for packet in clip.packets:
        failing_broadcast.hub.push(packet)
        fine_broadcast.hub.push(packet)
        await asyncio.sleep(0)
    failing_broadcast.hub.end("publisher_disconnected")
    fine_broadcast.hub.end("publisher_disconnected")
    await asyncio.wait_for(asyncio.gather(*running), 20)
    await healthy.close(60)
    failed = (await store.list_assets(livestream_id=failing_broadcast.livestream.id))[0][0]
    assert failed.status == "failed"
    assert failed.error["code"] == "processing_failed"
    assert "disk is full" in failed.error["message"]
    assert events == ["asset.failed"]
    assert not broken.recorders and not failing_broadcast.packager.taps  # it let go
    # the live window of the failing recording lost nothing
    assert failing_broadcast.packager.parts_produced == fine_broadcast.packager.parts_produced
    fine = (await store.list_assets(livestream_id=fine_broadcast.livestream.id))[0][0]
    assert fine.status == "ready", fine.error


async def test_delete_removes_files_and_record(store, storage, clip):
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)
    await record(service, broadcast, (clip.tracks, clip.packets))
    (asset,), _ = await store.list_assets()
    await service.delete(asset)
    assert await store.get_asset(asset.id) is None
    assert await storage.list(f"assets/{asset.id}/") == []


async def test_retention_deletes_old_finished_assets_and_their_files(store, storage):
    from datetime import timedelta

    from live.store.models import Asset
    from live.store.times import utcnow

    old = utcnow() - timedelta(days=8)
    kinds = [("old", "ready", old), ("old_failed", "failed", old),
             ("old_live", "recording", old), ("new", "ready", utcnow())]  # fmt: skip
    assets = {}
    for name, status, created in kinds:
        asset = Asset(livestream_id="ls", session_id=name, status=status, created_at=created)
        assets[name] = await store.create_asset(asset)
    for asset in assets.values():
        await storage.put(f"assets/{asset.id}/download.mp4", b"x")
    assert await RecordingService(store, storage, retention_days=0).apply_retention() == 0
    assert await RecordingService(store, storage, retention_days=7).apply_retention() == 2
    for name, asset in assets.items():
        kept = name in ("old_live", "new")
        assert (await store.get_asset(asset.id) is not None) == kept
        assert bool(await storage.list(f"assets/{asset.id}/")) == kept


@pytest.mark.parametrize(
    ("latency_mode", "audio", "video"),
    [("standard", True, True), ("low", True, False), ("low", False, True)],
)
async def test_standard_windows_and_single_track_streams_record_everything(
    store, storage, media_dir, latency_mode, audio, video
):
    """The recorder stores the packager's parts whatever the window's mode and tracks."""
    clip = make_clip(media_dir, seconds=3.0, audio=audio, video=video)
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store, latency_mode=latency_mode)
    await record(service, broadcast, (clip.tracks, clip.packets))
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    assert abs(asset.duration_s - 3.0) < 0.15
    mp4 = storage.local_path(f"assets/{asset.id}/download.mp4")
    with av.open(str(mp4)) as container:
        assert [s.type for s in container.streams] == (["video"] if video else []) + (
            ["audio"] if audio else []
        )
    if video:
        assert video_frames(mp4) == clip.frames


async def test_segments_are_longer_than_the_live_windows(store, storage, media_dir):
    clip = make_clip(media_dir, seconds=9.0)
    service = RecordingService(store, storage, segment_target=4.0)
    broadcast = await new_broadcast(store)
    await record(service, broadcast, (clip.tracks, clip.packets))
    (asset,), _ = await store.list_assets()
    playlist = m3u8.loads((await storage.get(f"assets/{asset.id}/index.m3u8")).decode())
    # 1 s live segments grouped into 4 s ones, each starting on a keyframe
    assert [round(s.duration, 1) for s in playlist.segments] == [4.0, 4.0, 1.0]


async def test_a_takeover_without_a_window_starts_the_next_asset(store, storage, media_dir):
    from live.store.models import Session

    clip = make_clip(media_dir, seconds=2.0)
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)
    first_session = broadcast.session
    running = broadcast.start(service)
    await feed(broadcast, (clip.tracks, clip.packets), end=None)
    # what the manager does: close the session, tell the hub, open the next one
    second_session = await store.create_session(
        Session(livestream_id=broadcast.livestream.id, protocol="rtmp")
    )
    broadcast.session = second_session
    await feed(broadcast, "publisher", (clip.tracks, clip.packets))
    await asyncio.wait_for(running, 20)
    await service.close(60)
    assets, total = await store.list_assets()
    assert total == 2 and all(a.status == "ready" for a in assets), assets
    by_session = {a.session_id: a for a in assets}
    assert set(by_session) == {first_session.id, second_session.id}
    for asset in assets:
        mp4 = storage.local_path(f"assets/{asset.id}/download.mp4")
        assert video_frames(mp4) == clip.frames
        playlist = (await storage.get(f"assets/{asset.id}/index.m3u8")).decode()
        assert "#EXT-X-DISCONTINUITY" not in playlist


class StalledDisk(LocalStorage):
    """Storage whose segment writes hang until `release` is set (a stalled disk)."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.release = threading.Event()
        self.stalled = threading.Event()

    async def put(self, key: str, data: bytes, **options) -> None:
        if key.endswith(".m4s") and not self.release.is_set():
            self.stalled.set()
            await asyncio.to_thread(self.release.wait, 30)
        await super().put(key, data, **options)

    put_parts = Storage.put_parts  # joins, then `put` above: segments stall too


async def test_a_stalled_disk_drops_for_the_recorder_alone_and_records_a_gap(
    store, tmp_path, media_dir
):
    clip = make_clip(media_dir, seconds=6.0)
    storage = StalledDisk(tmp_path / "stalled")
    service = RecordingService(store, storage, queue_parts=4, segment_target=1.0)
    broadcast = await new_broadcast(store)
    running = broadcast.start(service)
    half = len(clip.packets) // 2
    first = (clip.tracks, clip.packets[:half])
    await feed(broadcast, first, end=None)
    recorder = next(iter(service.recorders))
    assert await asyncio.to_thread(storage.stalled.wait, 10)
    await eventually(lambda: broadcast.packager.parts_produced >= 14, 5)
    # the packager carried on while the recorder was stuck
    assert recorder.dropped_parts > 0 and recorder.pending_parts <= 4
    storage.release.set()
    for packet in clip.packets[half:]:  # now at a pace the disk keeps up with
        broadcast.hub.push(packet)
        await asyncio.sleep(0)
        while recorder.pending_parts > 1:
            await asyncio.sleep(0.005)
    broadcast.hub.end("publisher_disconnected")
    await asyncio.wait_for(running, 20)
    await service.close(60)
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    assert broadcast.packager.parts_produced == 30  # the live window lost nothing
    prefix = f"assets/{asset.id}/"
    playlist = m3u8.loads((await storage.get(prefix + "index.m3u8")).decode())
    # each time the queue overflowed: parts dropped up to the next segment, which
    # follows a discontinuity
    assert [s.discontinuity for s in playlist.segments].count(True) == recorder.gaps
    frames = video_frames(storage.local_path(prefix + "download.mp4"))
    assert frames == clip.frames - 6 * recorder.dropped_parts


async def test_a_ladder_stream_records_the_source_rendition(store, storage, media_dir):
    from live.hls import HlsRegistry
    from live.ladder.ladder import Ladder
    from live.ladder.plan import parse_rungs, plan_ladder
    from live.packaging.packager import HlsPackager, PackagingSettings

    clip = make_clip(media_dir, size="640x360", seconds=3.0)
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)

    def ladder(packager: HlsPackager) -> Ladder:
        return Ladder(
            plan_ladder(640, 360, parse_rungs("180:200")),
            source_window=packager.window,
            stream=lambda: packager.stream,
            frame_rate=lambda: 30.0,
            on_warning=lambda message: None,
        )

    broadcast.hub = type(broadcast.hub)()
    broadcast.packager = HlsPackager(
        broadcast.hub.subscribe("hls"), HlsRegistry(), "pb", PackagingSettings(), ladder=ladder
    )
    await record(service, broadcast, (clip.tracks, clip.packets))
    assert broadcast.packager.ladder is not None
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    mp4 = storage.local_path(f"assets/{asset.id}/download.mp4")
    with av.open(str(mp4)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (640, 360)
    assert video_frames(mp4) == clip.frames


async def test_deleting_a_recording_asset_stops_it_and_leaves_no_object(store, storage, media_dir):
    clip = make_clip(media_dir, seconds=4.0)
    service = RecordingService(store, storage, segment_target=1.0)
    broadcast = await new_broadcast(store)
    running = broadcast.start(service)
    half = len(clip.packets) // 2
    await feed(broadcast, (clip.tracks, clip.packets[:half]), end=None)
    recorder = next(iter(service.recorders))
    await eventually(lambda: recorder.segments_written >= 1, 10)
    (asset,), _ = await store.list_assets()
    prefix = f"assets/{asset.id}/"
    assert await storage.list(prefix)
    await service.delete(asset)
    assert await storage.list(prefix) == [] and not broadcast.packager.taps
    await feed(broadcast, (clip.tracks, clip.packets[half:]))  # the stream goes on
    await asyncio.wait_for(running, 20)
    await service.close(60)
    assert await storage.list("") == []  # nothing written after the delete
    assert await store.list_assets() == ([], 0)
