"""RTMP in (the ffmpeg CLI and PyAV's FFmpeg), LL-HLS out (ffprobe, plain HTTP)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import m3u8
import pytest
from harness import ffmpeg_publish, ffprobe_streams, wait_for

pytestmark = pytest.mark.e2e


def media_playlist(live, url: str) -> m3u8.M3U8:
    status, body, _ = live.get(url)
    assert status == 200
    return m3u8.loads(body.decode(), uri=url)


@pytest.mark.parametrize("bframes", [0, 2], ids=["no-bframes", "bframes"])
def test_ffmpeg_rtmp_publish_plays_as_llhls_and_ends_with_endlist(live, processes, bframes):
    stream = live.create_livestream(reconnect_window_s=0)
    publisher = ffmpeg_publish(
        processes, live.rtmp_url(stream["stream_key"]), seconds=8, bframes=bframes
    )
    media_url = live.wait_playable(stream["playback_id"])

    _status, body, headers = live.get(f"/live/{stream['playback_id']}/index.m3u8")
    multivariant = m3u8.loads(body.decode())
    (variant,) = multivariant.playlists
    assert variant.stream_info.resolution == (640, 360)
    assert "avc1." in variant.stream_info.codecs and "mp4a.40.2" in variant.stream_info.codecs
    assert variant.stream_info.bandwidth > 0
    assert headers["Access-Control-Allow-Origin"] == "*"

    playlist = media_playlist(live, media_url)
    assert playlist.server_control.can_block_reload == "YES"
    assert playlist.server_control.part_hold_back >= 3 * playlist.part_inf.part_target - 1e-9
    assert playlist.preload_hint is not None

    streams = ffprobe_streams(media_url)
    kinds = {s["codec_type"]: s for s in streams}
    assert kinds["video"]["codec_name"] == "h264"
    assert (kinds["video"]["width"], kinds["video"]["height"]) == (640, 360)
    assert kinds["audio"]["codec_name"] == "aac"

    current = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]
    assert current["status"] == "live"
    session = current["current_session"]
    assert session["protocol"] == "rtmp" and session["ended_at"] is None
    health = session["ingest_health"]
    assert 20 <= health["fps"] <= 40
    assert health["keyframe_interval_s"] == pytest.approx(1.0, abs=0.1)
    assert health["bitrate_kbps"] > 0

    assert publisher.wait(30) == 0, publisher.stderr.read()

    def ended():
        text = live.get(media_url)[1].decode()
        return "#EXT-X-ENDLIST" in text and text

    final = m3u8.loads(wait_for(ended, 10, message="ENDLIST"))
    assert final.preload_hint is None
    for segment in final.segments:
        assert round(segment.duration) <= final.target_duration
    after = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]
    assert after["status"] == "idle" and after["current_session"] is None
    history = live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]
    (entry,) = history["data"]
    assert entry["end_reason"] == "publisher_disconnected"
    assert entry["video"]["codec"] == "h264" and entry["audio"]["codec"] == "aac"
    assert entry["bytes_in"] > 100_000
    assert 6 <= entry["duration_s"] <= 15


async def _timed_get(session: aiohttp.ClientSession, url: str) -> tuple[float, int, bytes]:
    async with session.get(url) as response:
        body = await response.read()
        return time.monotonic(), response.status, body


def test_blocking_reload_and_preload_hint_answer_when_the_part_exists(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=20)
    media_url = live.wait_playable(stream["playback_id"])
    time.sleep(2)

    async def measure():
        async with aiohttp.ClientSession() as session:
            results = []
            for _ in range(8):
                playlist = m3u8.loads(
                    (await _timed_get(session, media_url))[2].decode(), uri=media_url
                )
                hint = playlist.preload_hint.absolute_uri
                last = playlist.segments[-1]
                if last.uri:  # the last segment is closed: the next part opens the next one
                    msn, next_index = playlist.media_sequence + len(playlist.segments), 0
                else:  # trailing parts of the open segment
                    msn = playlist.media_sequence + len(playlist.segments) - 1
                    next_index = len(last.parts)
                joiner = "&" if "?" in media_url else "?"
                blocking = f"{media_url}{joiner}_HLS_msn={msn}&_HLS_part={next_index}"
                part_task = asyncio.create_task(_timed_get(session, hint))
                playlist_task = asyncio.create_task(_timed_get(session, blocking))
                (
                    (part_done, part_status, part_body),
                    (list_done, list_status, list_body),
                ) = await asyncio.gather(part_task, playlist_task)
                assert part_status == 200 and list_status == 200
                results.append((part_done, list_done, part_body, list_body.decode(), hint))
            return results

    results = asyncio.run(measure())
    part_target = media_playlist(live, media_url).part_inf.part_target
    for part_done, list_done, part_body, list_text, hint in results:
        # the blocking playlist answers within one part target of the part existing
        assert abs(list_done - part_done) <= part_target
        # the hinted part is now listed, and what was served for it is the whole part
        name = hint.rsplit("/", 1)[-1]
        assert name in list_text
        status, again, _ = live.get(hint)
        assert status == 200 and again == part_body and len(part_body) > 1000

    # A segment that leaves the playlist moves to the spool on disk and is still
    # served, byte for byte as it was while listed.
    playlist = media_playlist(live, media_url)
    msn, segment = playlist.media_sequence, playlist.segments[0]
    status, listed_bytes, _ = live.get(segment.absolute_uri)
    assert status == 200 and len(listed_bytes) > 1000
    wait_for(
        lambda: media_playlist(live, media_url).media_sequence > msn, 12, message="window moved"
    )
    assert list((live.data_dir / "hls-spool").glob(f"*/{msn}.m4s"))
    status, spilled_bytes, _ = live.get(segment.absolute_uri)
    assert status == 200 and spilled_bytes == listed_bytes


def test_unknown_key_is_refused_and_other_streams_carry_on(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    good = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=12)
    live.wait_playable(stream["playback_id"])
    bad = ffmpeg_publish(processes, live.rtmp_url("sk_not_a_real_key"), seconds=5)
    assert bad.wait(15) != 0
    assert live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["status"] == "live"
    assert good.poll() is None
    metrics = live.get("/metrics")[1].decode()
    assert 'live_publish_refused_total{reason="unknown_key"} 1.0' in metrics


def test_second_publisher_is_refused_while_the_first_sends(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    url = live.rtmp_url(stream["stream_key"])
    first = ffmpeg_publish(processes, url, seconds=15)
    live.wait_playable(stream["playback_id"])
    second = ffmpeg_publish(processes, url, seconds=5)
    assert second.wait(15) != 0
    assert first.poll() is None
    history = live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]
    assert history["total"] == 1
    first.terminate()
    first.wait(10)
    wait_for(
        lambda: live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["status"] == "idle",
        10,
        message="idle",
    )
    # once the first has left, the key publishes again
    third = ffmpeg_publish(processes, url, seconds=4)
    wait_for(
        lambda: live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["status"] == "live",
        15,
        message="live again",
    )
    assert third.wait(20) == 0


def test_live_poster_is_a_jpeg_of_the_stream_that_changes(live, processes):
    import io

    import av

    stream = live.create_livestream(reconnect_window_s=0)
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=15, size="480x270")
    live.wait_playable(stream["playback_id"])
    path = f"/live/{stream['playback_id']}/poster.jpg"
    status, first, headers = live.get(path)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    with av.open(io.BytesIO(first), format="image2pipe") as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (480, 270)
    time.sleep(6)  # past the refresh interval; the test pattern has moved on
    status, later, _ = live.get(path)
    assert status == 200 and later != first
    assert live.get("/live/pb_unknown/poster.jpg")[0] == 404
