"""VOD jobs in cluster mode: the queue in Redis, the files in S3 (moto's server). A
dead node's job is taken over once its lease lapses, and finished from S3. Runs
under the e2e lock (redis-server, moto, ffmpeg)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from vod_testing import Recorder, make_source, put_source, running_jobs, wait_finished

from live.recording import layout
from live.storage.s3 import S3Storage
from live.store.redis import RedisStore
from live.store.times import utcnow
from live.vod.jobs import JobSettings

pytestmark = pytest.mark.e2e


@pytest.fixture
async def store(redis_url: str):
    instance = await RedisStore.open(redis_url)
    yield instance
    await instance.close()


@pytest.fixture
async def storage(s3_bucket):
    instance = S3Storage(s3_bucket.name, s3_bucket.prefix, endpoint_url=s3_bucket.endpoint)
    yield instance
    await instance.close()


async def test_a_dead_nodes_job_is_taken_over_and_finished_from_s3(
    store, storage, s3_bucket, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "s.mp4", 4, size="640x360")
    asset = await put_source(store, storage, source)
    await store.enqueue_vod_job(asset.id)
    # a node took it and died: its lease runs out in a second and is never renewed
    now = utcnow()
    held = await store.claim_vod_job("dead-node", now, now + timedelta(seconds=1))
    assert held is not None and held.asset_id == asset.id
    recorder = Recorder()
    settings = JobSettings(workers=1, lease_s=5, renew_s=0.5, poll_s=0.2)
    async with running_jobs(
        store, storage, recorder, node_id="alive-node", single_node=False, settings=settings
    ):
        await asyncio.sleep(0.5)
        job = await store.get_vod_job(asset.id)
        assert job is not None and job.node_id == "dead-node"  # not before the lease lapses
        done = await wait_finished(store, asset.id)
    assert done.status == "ready", done.error
    assert recorder.events == [("asset.viewable", "viewable"), ("asset.ready", "ready")]
    assert await store.list_vod_jobs() == []
    names = {key.rsplit("/", 1)[-1] for key in s3_bucket.object_keys()}
    for name in (
        layout.PLAYLIST,
        "360p.m3u8",
        "360p_init.mp4",
        "360p_00000.m4s",
        "audio.m3u8",
        layout.MP4,
        layout.POSTER,
        layout.SPRITE,
        layout.SPRITE_VTT,
        layout.SOURCE,
    ):
        assert name in names, name  # fmt: skip
    index = (await storage.get(layout.asset_prefix(asset.id) + layout.PLAYLIST)).decode()
    assert "360p.m3u8" in index and 'URI="audio.m3u8"' in index


async def test_a_node_that_lost_its_lease_stops_and_the_new_holder_finishes(
    store, storage, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "s.mp4", 6, size="640x360")
    asset = await put_source(store, storage, source)
    first, second = Recorder(), Recorder()
    slow = JobSettings(workers=1, lease_s=60, renew_s=0.3, poll_s=0.2)
    async with running_jobs(
        store, storage, first, node_id="node-a", single_node=False, settings=slow
    ) as node_a:
        await node_a.submit(asset)
        for _ in range(400):
            if asset.id in node_a.running:
                break
            await asyncio.sleep(0.05)
        # node-b takes the job over as if node-a's lease had lapsed (a pause, a partition)
        later = utcnow() + timedelta(seconds=61)
        taken = await store.claim_vod_job("node-b", later, later + timedelta(seconds=60))
        assert taken is not None and taken.asset_id == asset.id
        for _ in range(100):  # node-a's next renewal fails: it stops its child
            if asset.id not in node_a.running:
                break
            await asyncio.sleep(0.05)
        assert asset.id not in node_a.running
        assert (await store.get_vod_job(asset.id)).node_id == "node-b"  # left alone
    # node-b's own worker finishes it (its claim is renewed by a node that runs it)
    await store.release_vod_job(asset.id, "node-b")
    async with running_jobs(
        store, storage, second, node_id="node-b", single_node=False, settings=slow
    ):
        done = await wait_finished(store, asset.id)
    assert done.status == "ready", done.error
    assert ("asset.ready", "ready") in second.events
    assert all(event != "asset.failed" for event, _ in first.events + second.events)
