"""The recorder and finaliser on real encoded media, with the real hub and SQLite store."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import av
import m3u8
import pytest
from media_fixtures import make_clip
from recording_testing import feed, new_broadcast, record, video_frames

from live.media.packet import MediaPacket
from live.recording import index as idx
from live.recording.finalize import finalise_recording
from live.recording.service import RecordingService
from live.storage import LocalStorage, StorageError
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
    names = {info.key[len(prefix):] for info in storage.list(prefix)}
    assert {"index.m3u8", "download.mp4", "poster.jpg", "init_1.mp4", "index.jsonl"} <= names
    assert not any(name.startswith("parts/") for name in names)  # joined into segments
    assert asset.size_bytes == sum(info.size for info in storage.list(prefix))

    mp4 = storage.local_path(prefix + "download.mp4")
    assert video_frames(mp4) == clip.frames
    assert mp4.read_bytes()[4:8] == b"ftyp"
    assert mp4.read_bytes().find(b"moov") < mp4.read_bytes().find(b"mdat")  # fast start

    playlist = m3u8.loads(storage.get(prefix + "index.m3u8").decode())
    assert playlist.playlist_type == "vod" and playlist.is_endlist
    assert abs(sum(s.duration for s in playlist.segments) - 3.0) < 0.1
    assert all(round(s.duration) <= playlist.target_duration for s in playlist.segments)
    # the segments play as HLS: init + segments hold every frame
    joined = tmp_path / "joined.mp4"
    joined.write_bytes(storage.get(prefix + "init_1.mp4") + b"".join(
        storage.get(prefix + s.uri) for s in playlist.segments))
    assert video_frames(joined) == clip.frames

    with av.open(str(storage.local_path(prefix + "poster.jpg"))) as poster:
        frame = next(poster.decode(video=0))
        assert (frame.width, frame.height) == (clip.video.width, clip.video.height)


async def test_a_reconnect_is_one_asset_with_a_discontinuity(store, storage, media_dir):
    clip = make_clip(media_dir, seconds=2.0)
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)
    # OBS starts its clock at 0 again when it comes back
    await record(service, broadcast, (clip.tracks, clip.packets), "publisher",
                 (clip.tracks, clip.packets))
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    assert abs(asset.duration_s - 4.0) < 0.15
    prefix = f"assets/{asset.id}/"
    playlist = m3u8.loads(storage.get(prefix + "index.m3u8").decode())
    assert [s.discontinuity for s in playlist.segments].count(True) == 1
    assert video_frames(storage.local_path(prefix + "download.mp4")) == 2 * clip.frames


async def test_a_resolution_change_still_makes_one_playable_mp4(store, storage, media_dir):
    small = make_clip(media_dir, size="320x180", seconds=2.0)
    large = make_clip(media_dir, size="640x360", seconds=2.0)
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)
    await record(service, broadcast, (small.tracks, small.packets),
                 (large.tracks, shifted(large.packets, 2.0)))
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    prefix = f"assets/{asset.id}/"
    playlist = storage.get(prefix + "index.m3u8").decode()
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


async def record_then_die(service, broadcast, clip) -> None:
    """Record without an end, let the writes catch up, then stop as a kill would."""
    task = asyncio.create_task(service.consumer(broadcast))
    await feed(broadcast, (clip.tracks, clip.packets), end=None)
    recorder = next(iter(service.recorders))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if not recorder._ops and recorder.parts_written >= 14:
            break
    task.cancel()


async def test_a_crash_loses_at_most_the_part_in_flight(store, storage, clip):
    """Record without an end (the process dies), tear the index's last line, and
    finalise from what is stored."""
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)
    await record_then_die(service, broadcast, clip)
    (asset,), _ = await store.list_assets()
    assert asset.status == "recording"
    prefix = f"assets/{asset.id}/"
    index_bytes = storage.get(prefix + idx.INDEX)
    lines = index_bytes.split(b"\n")
    parts_indexed = sum(1 for line in lines if b'"part"' in line)
    storage.put(prefix + idx.INDEX, index_bytes[:-20])  # a torn last line
    result = finalise_recording(storage, prefix)
    # the torn line's part is lost, and only it
    index = idx.parse_index(storage.get(prefix + idx.INDEX))
    assert sum(len(s.parts) for s in index.segments) == parts_indexed - 1
    frames = video_frames(storage.local_path(prefix + "download.mp4"))
    # lost: the torn part and the one still in memory (6 frames each), and the
    # frame the timeline holds until the next one arrives
    assert clip.frames - 13 <= frames < clip.frames
    assert result.duration_s > 2.5


async def test_recover_finalises_what_a_crash_left(store, storage, clip):
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)
    await record_then_die(service, broadcast, clip)
    (asset,), _ = await store.list_assets()
    assert asset.status == "recording"
    restarted = RecordingService(store, storage)
    assert await restarted.recover() == 1
    await restarted.close(60)
    asset = await store.get_asset(asset.id)
    assert asset.status == "ready", asset.error


class FullDisk(LocalStorage):
    """Storage that runs out of space after `budget` bytes."""

    def __init__(self, root, budget: int) -> None:
        super().__init__(root)
        self.budget = budget

    def put(self, key: str, data: bytes, *, sync: bool = True) -> None:
        self.budget -= len(data)
        if self.budget < 0:
            raise StorageError(f"storage: cannot write {key}: the disk is full")
        super().put(key, data, sync=sync)


async def test_storage_failure_fails_the_asset_and_spares_the_others(store, tmp_path, clip):
    broken = RecordingService(store, FullDisk(tmp_path / "full", budget=40_000))
    healthy = RecordingService(store, LocalStorage(tmp_path / "ok"))
    failing_broadcast = await new_broadcast(store)
    fine_broadcast = await new_broadcast(store)
    events = []

    async def listener(event, asset):
        events.append(event)

    broken.listeners.append(listener)
    tasks = [asyncio.create_task(broken.consumer(failing_broadcast)),
             asyncio.create_task(healthy.consumer(fine_broadcast))]
    for step_broadcast in (failing_broadcast, fine_broadcast):
        step_broadcast.hub.set_tracks(clip.tracks)
    for packet in clip.packets:
        failing_broadcast.hub.push(packet)
        fine_broadcast.hub.push(packet)
        await asyncio.sleep(0)
    failing_broadcast.hub.end("publisher_disconnected")
    fine_broadcast.hub.end("publisher_disconnected")
    await asyncio.wait_for(asyncio.gather(*tasks), 20)
    await healthy.close(60)
    failed = (await store.list_assets(livestream_id=failing_broadcast.livestream.id))[0][0]
    assert failed.status == "failed"
    assert "disk is full" in failed.error
    assert events == ["asset.failed"]
    assert not broken.recorders  # it let go of its subscription
    fine = (await store.list_assets(livestream_id=fine_broadcast.livestream.id))[0][0]
    assert fine.status == "ready", fine.error


async def test_delete_removes_files_and_record(store, storage, clip):
    service = RecordingService(store, storage)
    broadcast = await new_broadcast(store)
    await record(service, broadcast, (clip.tracks, clip.packets))
    (asset,), _ = await store.list_assets()
    await service.delete(asset)
    assert await store.get_asset(asset.id) is None
    assert storage.list(f"assets/{asset.id}/") == []


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
        storage.put(f"assets/{asset.id}/download.mp4", b"x")
    assert await RecordingService(store, storage, retention_days=0).apply_retention() == 0
    assert await RecordingService(store, storage, retention_days=7).apply_retention() == 2
    for name, asset in assets.items():
        kept = name in ("old_live", "new")
        assert (await store.get_asset(asset.id) is not None) == kept
        assert bool(storage.list(f"assets/{asset.id}/")) == kept
