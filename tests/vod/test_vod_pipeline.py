"""The VOD pipeline end to end on a real store and storage, with the real child
process, PyAV and x264; ffmpeg and ffprobe judge the result. Runs under the e2e
lock (it starts ffmpeg)."""

from __future__ import annotations

from pathlib import Path

import m3u8
import pytest
from vod_testing import (
    FPS,
    Recorder,
    decode_errors,
    difference,
    duration_of,
    frames,
    keyframe_times,
    make_source,
    process,
    put_source,
    record_statuses,
    running_jobs,
    stream_codecs,
    wait_finished,
)

from live.recording import layout
from live.storage import LocalStorage
from live.store import SqliteStore

pytestmark = pytest.mark.e2e
SOURCE_S = 8.0


@pytest.fixture
async def store(tmp_path: Path):
    instance = await SqliteStore.open(tmp_path / "db")
    yield instance
    await instance.close()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files")


@pytest.fixture(scope="module")
def source_720p(tmp_path_factory) -> Path:
    return make_source(tmp_path_factory.mktemp("src") / "720p.mp4", SOURCE_S)


async def test_an_upload_becomes_a_ready_ladder_through_viewable(
    store, storage, source_720p
) -> None:
    recorder = Recorder()
    record_statuses(store, recorder)
    asset = await put_source(store, storage, source_720p)
    done, _ = await process(store, storage, asset, recorder)
    assert done.status == "ready", done.error
    assert ["pending", *recorder.statuses] == ["pending", "processing", "viewable", "ready"]
    assert recorder.events == [("asset.viewable", "viewable"), ("asset.ready", "ready")]
    assert await store.get_vod_job(asset.id) is None  # the job is over

    assert [(r["width"], r["height"]) for r in done.renditions] == [
        (1280, 720), (854, 480), (640, 360),
    ]  # fmt: skip
    assert all(r["codec"].startswith("avc1.") and r["bitrate_kbps"] > 0 for r in done.renditions)
    assert done.original is not None
    assert done.original["size_bytes"] == source_720p.stat().st_size
    video, audio = done.original["video"], done.original["audio"]
    assert (video["codec"], video["width"], video["height"]) == ("h264", 1280, 720)
    assert video["fps"] == 30
    assert (audio["codec"], audio["sample_rate"]) == ("aac", 48000)
    assert abs(done.duration_s - SOURCE_S) < 0.1
    assert (done.progress, done.has_poster, done.error) == (100, True, None)
    assert done.ready_at is not None and done.size_bytes > 0

    root = storage.root / layout.asset_prefix(asset.id)
    index = m3u8.loads((root / layout.PLAYLIST).read_text())
    assert index.is_variant
    assert [p.uri for p in index.playlists] == ["720p.m3u8", "480p.m3u8", "360p.m3u8"]
    assert [m.uri for m in index.media] == ["audio.m3u8"]
    assert all(p.stream_info.audio == "audio" for p in index.playlists)
    assert all("mp4a.40.2" in p.stream_info.codecs for p in index.playlists)

    source_duration = duration_of(source_720p)
    keyframes = {}
    for name in ("720p", "480p", "360p", "audio"):
        playlist = root / layout.rendition_playlist(name)
        assert decode_errors(playlist) == "", name
        assert abs(duration_of(playlist) - source_duration) < 0.1, name
        if name != "audio":
            keyframes[name] = keyframe_times(playlist)
    # the same keyframes in every rendition, every 2 s
    assert keyframes["720p"] == keyframes["480p"] == keyframes["360p"]
    assert keyframes["720p"] == [0.0, 2.0, 4.0, 6.0]

    mp4 = root / layout.MP4
    assert stream_codecs(mp4) == ["h264", "aac"]
    assert decode_errors(mp4) == ""
    assert abs(duration_of(mp4) - source_duration) < 0.1
    assert mp4.read_bytes().find(b"moov") < mp4.read_bytes().find(b"mdat")  # fast start
    assert (root / layout.POSTER).read_bytes()[:2] == b"\xff\xd8"
    assert (root / layout.SPRITE).read_bytes()[:2] == b"\xff\xd8"
    assert (root / layout.SPRITE_VTT).read_text().startswith("WEBVTT")
    assert (root / layout.SOURCE).exists()  # the file as received is kept
    assert not list(storage.scratch_dir().glob("vod-*"))  # scratch files are gone


async def test_a_clip_starts_on_the_sources_frame_and_lasts_to_the_frame(
    store, storage, tmp_path
) -> None:
    source = make_source(tmp_path / "16s.mp4", 16, size="480x270")
    asset = await put_source(store, storage, source, clip_start_s=5.0, clip_duration_s=10.0)
    done, _recorder = await process(store, storage, asset)
    assert done.status == "ready", done.error
    assert [(r["width"], r["height"]) for r in done.renditions] == [(480, 270)]
    root = storage.root / layout.asset_prefix(asset.id)
    rendition = root / "270p.m3u8"
    assert abs(duration_of(rendition) - 10.0) <= 1 / FPS + 1e-3
    assert abs(done.duration_s - 10.0) <= 1 / FPS + 1e-3
    assert abs(duration_of(root / layout.MP4) - 10.0) <= 0.05
    # its first frame is the source's frame at 5 s, not a neighbour
    first = frames(rendition, 1)[0]
    before, at, after = frames(source, 3, start_s=5.0 - 1 / FPS)
    assert difference(first, at) < difference(first, before)
    assert difference(first, at) < difference(first, after)
    last = frames(rendition)[-1]
    assert difference(last, frames(source, 1, start_s=15.0 - 1 / FPS)[0]) < difference(
        last, frames(source, 1, start_s=15.0)[0]
    )


async def test_a_text_file_is_unsupported_media_and_the_file_is_kept(
    store, storage, tmp_path
) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a video\n" * 50)
    asset = await put_source(store, storage, fake)
    done, recorder = await process(store, storage, asset)
    assert done.status == "failed"
    assert done.error is not None and done.error["code"] == "unsupported_media"
    assert "not a video or audio file" in done.error["message"]
    assert recorder.events == [("asset.failed", "failed")]
    names = [i.key.rsplit("/", 1)[-1] for i in await storage.list(layout.asset_prefix(asset.id))]
    assert names == [layout.SOURCE]
    assert await store.get_vod_job(asset.id) is None


async def test_a_truncated_mp4_fails_with_a_clear_error(store, storage, tmp_path) -> None:
    whole = make_source(tmp_path / "whole.mp4", 4, size="320x180")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    asset = await put_source(store, storage, cut)
    done, _recorder = await process(store, storage, asset)
    assert done.status == "failed"
    assert done.error is not None and done.error["code"] == "unsupported_media"
    assert "cut short or damaged" in done.error["message"]  # what is wrong with it


async def test_an_audio_only_file_becomes_audio_only_hls(store, storage, tmp_path) -> None:
    source = make_source(tmp_path / "tone.m4a", 5, video=False)
    asset = await put_source(store, storage, source)
    done, _recorder = await process(store, storage, asset)
    assert done.status == "ready", done.error
    assert (done.renditions, done.has_poster) == ([], False)
    assert done.original is not None and done.original["video"] is None
    root = storage.root / layout.asset_prefix(asset.id)
    index = m3u8.loads((root / layout.PLAYLIST).read_text())
    assert [(p.uri, p.stream_info.codecs) for p in index.playlists] == [("audio.m3u8", "mp4a.40.2")]
    assert decode_errors(root / "audio.m3u8") == ""
    assert abs(duration_of(root / "audio.m3u8") - 5.0) < 0.1
    assert stream_codecs(root / layout.MP4) == ["aac"]
    assert not (root / layout.POSTER).exists()


async def test_an_uploaded_poster_is_used(store, storage, tmp_path) -> None:
    source = make_source(tmp_path / "s.mp4", 3, size="320x180", audio=False)
    poster = tmp_path / "poster.png"
    import subprocess

    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:size=200x100", "-frames:v", "1",
         str(poster)], check=True,
    )  # fmt: skip
    asset = await put_source(store, storage, source, poster=poster)
    done, _recorder = await process(store, storage, asset)
    assert done.status == "ready", done.error
    jpeg = storage.root / layout.asset_prefix(asset.id) / layout.POSTER
    import av

    with av.open(str(jpeg)) as image:
        frame = next(image.decode(video=0))
    assert (frame.width, frame.height) == (200, 100)  # the uploaded picture, not a frame


async def test_passthrough_repackages_h264_and_aac_without_encoding(
    store, storage, source_720p
) -> None:
    asset = await put_source(store, storage, source_720p, transcode="passthrough")
    done, recorder = await process(store, storage, asset)
    assert done.status == "ready", done.error
    assert [(r["width"], r["height"]) for r in done.renditions] == [(1280, 720)]
    root = storage.root / layout.asset_prefix(asset.id)
    assert decode_errors(root / "720p.m3u8") == ""
    # the source's own keyframes (every second), not a re-encode's (every 2 s)
    assert keyframe_times(root / "720p.m3u8")[:3] == [0.0, 1.0, 2.0]
    assert recorder.events == [("asset.viewable", "viewable"), ("asset.ready", "ready")]


async def test_deleting_an_asset_mid_job_stops_it_and_removes_its_files(
    store, storage, source_720p, tmp_path
) -> None:
    import asyncio

    recorder = Recorder()
    asset = await put_source(store, storage, source_720p)
    async with running_jobs(store, storage, recorder) as jobs:
        await jobs.submit(asset)
        for _ in range(600):
            current = await store.get_asset(asset.id)
            if current is not None and current.progress > 0:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the job never started")
        await jobs.delete(current)
        assert jobs.running == {}
        assert await store.get_asset(asset.id) is None
        assert await store.get_vod_job(asset.id) is None
        assert await storage.list(layout.asset_prefix(asset.id)) == []
        await asyncio.sleep(0.5)  # nothing comes back
        assert await storage.list(layout.asset_prefix(asset.id)) == []
        # and the worker goes on with the next job
        small = make_source(tmp_path / "small.mp4", 2, size="320x180")
        after = await put_source(store, storage, small)
        await jobs.submit(after)
        assert (await wait_finished(store, after.id)).status == "ready"
    # the deleted one may have become viewable first; only the next one ends ready
    assert [e for e in recorder.events if e[0] != "asset.viewable"] == [("asset.ready", "ready")]
