"""The parts of the VOD pipeline that need no media: the plan, the playlists, the
child's priority, and /vod serving a processed upload's objects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import m3u8
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.ladder.plan import DEFAULT_RUNGS, parse_rungs
from live.recording import layout
from live.recording.vod_routes import setup_vod_routes
from live.storage import LocalStorage
from live.store import SqliteStore
from live.store.models import Asset
from live.vod.plan import plan_job, vod_rungs
from live.vod.playlists import AudioEntry, Measured, VideoEntry, measure, render_multivariant
from live.vod.probe import SourceInfo

RUNGS = parse_rungs(DEFAULT_RUNGS)


def _source(width: int | None, height: int | None, *, video="h264", audio="aac") -> SourceInfo:
    return SourceInfo(
        duration_s=10.0, start_s=0.0, size_bytes=1,
        video={"codec": video, "width": width, "height": height} if width else None,
        audio={"codec": audio} if audio else None,
    )  # fmt: skip


def test_vod_rungs_are_at_or_below_the_source_height() -> None:
    assert [r.name for r in vod_rungs(1280, 720, RUNGS)] == ["720p", "480p", "360p"]
    assert [r.name for r in vod_rungs(1920, 1080, RUNGS)] == ["1080p", "720p", "480p", "360p"]
    assert [(r.width, r.height) for r in vod_rungs(1280, 700, RUNGS)] == [(878, 480), (658, 360)]
    # smaller than every rung: one rendition at its own size
    (only,) = vod_rungs(321, 181, RUNGS)
    assert (only.name, only.width, only.height, only.bitrate) == ("180p", 320, 180, 700_000)


def test_the_lowest_rung_is_a_pass_of_its_own_with_the_audio() -> None:
    plan = plan_job(_source(1280, 720), RUNGS, passthrough=False, clipped=False)
    first, second = plan.passes
    assert ([r.name for r in first.rungs], first.audio, first.last) == (["360p"], True, False)
    assert ([r.name for r in second.rungs], second.audio, second.last) == (
        ["720p", "480p"], False, True,
    )  # fmt: skip
    assert abs(first.weight + second.weight - 1) < 1e-9 and 0 < first.weight < 0.3
    audio_only = plan_job(_source(None, None), RUNGS, passthrough=False, clipped=False)
    assert [(p.rungs, p.audio, p.last) for p in audio_only.passes] == [((), True, True)]


def test_passthrough_needs_hls_codecs_and_no_cut() -> None:
    assert plan_job(_source(1280, 720), RUNGS, passthrough=True, clipped=False).passthrough
    hevc = _source(1280, 720, video="hevc")
    assert plan_job(hevc, RUNGS, passthrough=True, clipped=False).passthrough
    for source, clipped in [
        (_source(1280, 720, video="vp9"), False),
        (_source(1280, 720, audio="opus"), False),
        (_source(1280, 720), True),
    ]:
        assert not plan_job(source, RUNGS, passthrough=True, clipped=clipped).passthrough


def test_bandwidth_is_measured_from_the_segments() -> None:
    playlist = (
        '#EXTM3U\n#EXT-X-MAP:URI="a_init.mp4"\n#EXTINF:2.0,\na_00000.m4s\n'
        "#EXTINF:2.0,\na_00001.m4s\n#EXTINF:0.1,\na_00002.m4s\n#EXT-X-ENDLIST\n"
    )
    sizes = {"a_00000.m4s": 250_000, "a_00001.m4s": 500_000, "a_00002.m4s": 1_000}
    measured = measure(playlist, sizes)
    assert measured.peak_bps == 2_000_000  # the 2 s segment of 500 kB; not the sliver
    assert measured.average_bps == 1_465_366  # 751 000 bytes over 4.1 s, rounded up
    assert abs(measured.duration_s - 4.1) < 1e-9


def test_the_multivariant_lists_renditions_highest_first_with_the_audio_group() -> None:
    rate = Measured(1_000_000, 800_000, 10.0)
    audio = AudioEntry("mp4a.40.2", Measured(130_000, 128_000, 10.0))
    videos = [
        VideoEntry("360p", 640, 360, "avc1.64001e", rate),
        VideoEntry("720p", 1280, 720, "avc1.64001f", Measured(3_000_000, 2_500_000, 10.0)),
    ]
    parsed = m3u8.loads(render_multivariant(videos, audio))
    assert [p.uri for p in parsed.playlists] == ["720p.m3u8", "360p.m3u8"]
    top = parsed.playlists[0].stream_info
    assert (top.bandwidth, top.average_bandwidth) == (3_130_000, 2_628_000)
    assert (top.resolution, top.audio) == ((1280, 720), "audio")
    assert top.codecs == "avc1.64001f,mp4a.40.2"
    (media,) = parsed.media
    assert (media.type, media.group_id, media.uri, media.default) == (
        "AUDIO", "audio", "audio.m3u8", "YES",
    )  # fmt: skip
    only_audio = m3u8.loads(render_multivariant([], audio))
    assert [(p.uri, p.stream_info.codecs) for p in only_audio.playlists] == [
        ("audio.m3u8", "mp4a.40.2")
    ]
    assert only_audio.media == []


@pytest.mark.parametrize(
    ("priority", "nice", "policy"),
    [("idle", 19, os.SCHED_IDLE), ("low", 19, os.SCHED_OTHER), ("normal", 0, os.SCHED_OTHER)],
)
def test_the_child_lowers_its_priority_below_live_work(priority, nice, policy) -> None:
    code = (
        "import os, threading; from live.vod.priority import lower_priority;"
        f" lower_priority({priority!r});"
        # a thread started afterwards (x264's) runs at the same priority
        " out = [];"
        " t = threading.Thread(target=lambda: out.append((os.nice(0),"
        " os.sched_getscheduler(0)))); t.start(); t.join();"
        " print(os.nice(0), os.sched_getscheduler(0), *out[0])"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    base = os.nice(0)
    expected_nice = max(base, nice)
    assert result.stdout.split() == [str(expected_nice), str(policy)] * 2


@pytest.fixture
async def vod_client(tmp_path: Path):
    store = await SqliteStore.open(tmp_path / "db")
    storage = LocalStorage(tmp_path / "files")
    app = web.Application()
    setup_vod_routes(app, store, storage)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, store, storage
    finally:
        await client.close()
        await store.close()


async def test_vod_serves_a_viewable_uploads_renditions_and_nothing_else(vod_client) -> None:
    client, store, storage = vod_client
    asset = await store.create_asset(Asset(source="upload", status="viewable"))
    prefix = layout.asset_prefix(asset.id)
    objects = {
        layout.PLAYLIST: b"#EXTM3U\n360p.m3u8\n", "360p.m3u8": b"#EXTM3U\n",
        "360p_init.mp4": b"init", "360p_00000.m4s": b"seg", "audio_00012.m4s": b"aud",
        layout.SOURCE: b"the original", layout.POSTER_SOURCE: b"png",
    }  # fmt: skip
    for name, data in objects.items():
        await layout.put(storage, prefix, name, data)
    index = await client.get(f"/vod/{asset.id}/index.m3u8")
    assert index.status == 200
    assert index.headers["Cache-Control"] == "no-cache"  # it grows when the asset is ready
    for name in ("360p.m3u8", "360p_init.mp4", "360p_00000.m4s", "audio_00012.m4s"):
        answer = await client.get(f"/vod/{asset.id}/{name}")
        assert answer.status == 200, name
        assert await answer.read() == objects[name]
    segment = await client.get(f"/vod/{asset.id}/360p_00000.m4s")
    assert segment.headers["Content-Type"] == "video/iso.segment"
    for name in (
        "source",
        "poster_source",
        "360p.json",
        "..%2Fsource",
        "x360p.m3u8",
        "360p_0.m4s",
        "720p.m3u8.tmp",
    ):
        assert (await client.get(f"/vod/{asset.id}/{name}")).status == 404, name  # fmt: skip
    await store.update_asset(asset.id, status="processing")
    assert (await client.get(f"/vod/{asset.id}/360p.m3u8")).status == 404
    await store.update_asset(asset.id, status="ready")
    ready = await client.get(f"/vod/{asset.id}/index.m3u8")
    assert ready.headers["Cache-Control"].startswith("public")


async def test_deleting_an_asset_goes_to_what_made_it() -> None:
    from live.vod.deletion import AssetDeletion

    class Deleter:
        def __init__(self) -> None:
            self.deleted: list[str] = []

        async def delete(self, asset: Asset) -> None:
            self.deleted.append(asset.id)

    recordings, vod_jobs = Deleter(), Deleter()
    deletion = AssetDeletion(recordings, vod_jobs)
    recorded = Asset(livestream_id="ls", session_id="s")
    uploaded, imported = Asset(source="upload"), Asset(source="url")
    for asset in (recorded, uploaded, imported):
        await deletion.delete(asset)
    assert recordings.deleted == [recorded.id]
    assert vod_jobs.deleted == [uploaded.id, imported.id]


async def test_a_submit_while_an_idle_worker_looks_at_the_queue_is_not_missed(tmp_path) -> None:
    """A single node looks at its queue only every 30 s: a submit must wake it even
    when it lands while the worker's claim is under way."""
    import asyncio

    from live.vod.jobs import JobSettings, VodJobs
    from live.vod.pipeline import PipelineSettings

    class Queue:
        def __init__(self) -> None:
            self.claims = 0
            self.claiming = asyncio.Event()
            self.submitted = asyncio.Event()

        async def requeue_vod_jobs(self) -> int:
            return 0

        async def claim_vod_job(self, node_id, now, lease_until):
            self.claims += 1
            if self.claims == 1:  # the first look finds nothing: the submit is late
                self.claiming.set()
                await self.submitted.wait()
            return None

        async def enqueue_vod_job(self, asset_id: str) -> None:
            pass

    queue = Queue()
    jobs = VodJobs(
        queue, LocalStorage(tmp_path), node_id="n1", pipeline=PipelineSettings(rungs=RUNGS),  # type: ignore[arg-type]
        announce=None, settings=JobSettings(workers=1, poll_s=30.0),  # type: ignore[arg-type]
    )  # fmt: skip
    await jobs.start()
    try:
        await asyncio.wait_for(queue.claiming.wait(), 5)
        await jobs.submit(Asset(livestream_id=None, source="upload"))
        queue.submitted.set()
        for _ in range(100):
            if queue.claims >= 2:
                break
            await asyncio.sleep(0.01)
        assert queue.claims == 2  # looked again at once, not 30 s later
    finally:
        await jobs.close()
