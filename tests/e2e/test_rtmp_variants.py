"""Streams that are not plain H.264 + AAC low-latency: audio only, video only,
standard (non-LL) HLS, and garbage on the RTMP port."""

from __future__ import annotations

import socket

import m3u8
import pytest
from harness import ffmpeg_publish, ffprobe_streams

pytestmark = pytest.mark.e2e


def test_audio_only_stream_plays(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    command = ffmpeg_publish(
        processes, live.rtmp_url(stream["stream_key"]), seconds=8, extra_output=("-vn",)
    )
    media_url = live.wait_playable(stream["playback_id"])
    multivariant = m3u8.loads(live.get(f"/live/{stream['playback_id']}/index.m3u8")[1].decode())
    (variant,) = multivariant.playlists
    assert variant.stream_info.codecs == "mp4a.40.2"
    assert variant.stream_info.resolution is None
    playlist = m3u8.loads(live.get(media_url)[1].decode())
    parts = [part for segment in playlist.segments for part in segment.parts]
    assert parts and all(part.independent == "YES" for part in parts)
    streams = ffprobe_streams(media_url)
    assert [s["codec_type"] for s in streams] == ["audio"]
    command.wait(20)


def test_video_only_stream_plays(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=8, audio=False)
    media_url = live.wait_playable(stream["playback_id"])
    multivariant = live.get(f"/live/{stream['playback_id']}/index.m3u8")[1].decode()
    assert "mp4a" not in multivariant and "avc1." in multivariant
    streams = ffprobe_streams(media_url)
    assert [s["codec_type"] for s in streams] == ["video"]


def test_standard_latency_mode_serves_plain_hls(live, processes):
    stream = live.create_livestream(reconnect_window_s=0, latency_mode="standard")
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=10)
    media_url = live.wait_playable(stream["playback_id"])
    text = live.get(media_url)[1].decode()
    assert "#EXT-X-PART" not in text and "#EXT-X-PRELOAD-HINT" not in text
    assert "CAN-BLOCK-RELOAD" not in text
    assert any(s["codec_type"] == "video" for s in ffprobe_streams(media_url))


def test_garbage_on_the_rtmp_port_is_dropped_and_the_live_stream_carries_on(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=12)
    media_url = live.wait_playable(stream["playback_id"])
    port = live.ports["RTMP ingest"]
    payloads = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # wrong protocol: version byte 'G'
        b"\x03" + bytes(1536) + b"\x00" * 1536 + b"\xff" * 4000,  # handshake, then junk chunks
    ]
    for payload in payloads:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(payload)
            connection.settimeout(5)
            received = b""
            try:
                while chunk := connection.recv(65536):
                    received += chunk
            except TimeoutError:
                pytest.fail("the server kept a connection that sent garbage")
            except ConnectionResetError:
                pass
    before = m3u8.loads(live.get(media_url)[1].decode())
    assert before.preload_hint is not None
    assert publisher.wait(30) == 0
    assert (
        live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]["data"][0]["end_reason"]
        == "publisher_disconnected"
    )


def test_rtmps_publish_plays(processes, tmp_path):
    from harness import LiveProcess, self_signed_certificate

    cert, key = self_signed_certificate(tmp_path)
    live = LiveProcess(
        processes,
        tmp_path / "data",
        "--rtmps",
        "127.0.0.1:0",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
    )
    stream = live.create_livestream(reconnect_window_s=0)
    assert stream["ingest"]["rtmps"].startswith("rtmps://")
    url = f"rtmps://127.0.0.1:{live.ports['RTMPS ingest']}/live/{stream['stream_key']}"
    publisher = ffmpeg_publish(processes, url, seconds=6)
    media_url = live.wait_playable(stream["playback_id"])
    assert any(s["codec_type"] == "video" for s in ffprobe_streams(media_url))
    session = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["current_session"]
    assert session["protocol"] == "rtmps"
    assert publisher.wait(30) == 0, publisher.stderr.read()
    live.stop()
