"""The recorder on S3 (moto's server mode; run under the e2e lock): the same asset
as on disk, every object written once, and recovery from the manifests."""

from __future__ import annotations

from pathlib import Path

import pytest
from recording_testing import (
    new_broadcast,
    record,
    record_then_die,
    recover_after_restart,
    video_frames,
)

from live.recording import layout
from live.recording.service import RecordingService
from live.storage.s3 import S3Storage
from live.store import SqliteStore


@pytest.fixture
async def store(tmp_path: Path):
    instance = await SqliteStore.open(tmp_path / "db")
    yield instance
    await instance.close()


class CountingS3(S3Storage):
    """Counts the writes of each key (an object this small is one PutObject, a
    streamed one included): every object is written once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.writes: dict[str, int] = {}

    async def put(self, key, data, **options) -> None:
        self.writes[key] = self.writes.get(key, 0) + 1
        await super().put(key, data, **options)


@pytest.fixture
async def storage(s3_bucket):
    instance = CountingS3(s3_bucket.name, s3_bucket.prefix, endpoint_url=s3_bucket.endpoint)
    yield instance
    await instance.close()


async def download(storage, key: str, path: Path) -> Path:
    path.write_bytes(await storage.get(key))
    return path


async def test_a_session_on_s3_is_a_ready_asset_written_once(
    store, storage, s3_bucket, clip, tmp_path
):
    service = RecordingService(store, storage, segment_target=1.0)
    await record(service, await new_broadcast(store), (clip.tracks, clip.packets))
    (asset,), _ = await store.list_assets()
    assert asset.status == "ready", asset.error
    prefix = f"assets/{asset.id}/"
    names = [key.rsplit("/", 1)[-1] for key in s3_bucket.object_keys()]
    assert all(key.startswith(f"{s3_bucket.prefix}/{prefix}") for key in s3_bucket.object_keys())
    assert {"index.m3u8", "download.mp4", "poster.jpg", "sprite.jpg", "sprite.vtt",
            "init_1.mp4", "init_1.json"} <= set(names)  # fmt: skip
    segments = [n for n in names if n.endswith(".m4s")]
    assert len(segments) == 3 and len([n for n in names if n.startswith("seg_")]) == 6
    assert set(storage.writes.values()) == {1}  # no object written twice
    assert len(storage.writes) == len(names)
    assert asset.size_bytes == sum(info.size for info in await storage.list(prefix))
    mp4 = await download(storage, prefix + layout.MP4, tmp_path / "a.mp4")
    assert video_frames(mp4) == clip.frames
    head = s3_bucket.server.client().head_object(
        Bucket=s3_bucket.name, Key=f"{s3_bucket.prefix}/{prefix}{layout.MP4}"
    )
    assert head["ContentType"] == "video/mp4"


async def test_recovery_on_s3_works_from_the_manifests(store, storage, clip, tmp_path):
    service = RecordingService(store, storage, segment_target=1.0)
    await record_then_die(service, await new_broadcast(store), clip, segments=2)
    (asset,), _ = await store.list_assets()
    asset = await recover_after_restart(store, storage, asset.id)
    assert asset.status == "ready", asset.error
    assert abs(asset.duration_s - 2.0) < 0.01
    mp4 = await download(storage, f"assets/{asset.id}/download.mp4", tmp_path / "r.mp4")
    assert video_frames(mp4) == 2 * 30
