"""Limits against real clients: the ffmpeg CLI publishing, raw sockets that start a
conversation and stall (slowloris), and playlist fetches that must keep working
meanwhile. Limits and timeouts are set tiny so each test takes seconds."""

from __future__ import annotations

import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import LiveProcess, ffmpeg_publish, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def start_live(processes, tmp_path):
    """`start_live(max_publishers=2, ...)`: a server with those settings (as LIVE_*
    variables), stopped at the end of the test."""
    started: list[LiveProcess] = []

    def start(**settings: object) -> LiveProcess:
        env = {f"LIVE_{name.upper()}": str(value) for name, value in settings.items()}
        started.append(LiveProcess(processes, tmp_path / "data", env=env))
        return started[-1]

    yield start
    for live in started:
        live.stop()


def limit_refusals(live: LiveProcess, limit: str) -> float:
    metrics = live.get("/metrics")[1].decode()
    match = re.search(rf'^live_limit_refusals_total{{limit="{limit}"}} (\S+)$', metrics, re.M)
    assert match, metrics
    return float(match.group(1))


def history(live: LiveProcess, livestream_id: str) -> list[dict]:
    return live.api("GET", f"/v1/livestreams/{livestream_id}/history")[1]["data"]


def test_a_publish_over_max_publishers_is_refused_and_the_first_ones_go_on(processes, start_live):
    live = start_live(max_publishers=2)
    streams = [live.create_livestream(reconnect_window_s=0) for _ in range(3)]
    first, second = (
        ffmpeg_publish(processes, live.rtmp_url(s["stream_key"]), seconds=20, audio=False)
        for s in streams[:2]
    )
    media = [live.wait_playable(s["playback_id"]) for s in streams[:2]]
    refused = ffmpeg_publish(
        processes, live.rtmp_url(streams[2]["stream_key"]), seconds=20, audio=False
    )
    assert refused.wait(20) != 0
    stderr = refused.stderr.read()
    assert "at most 2 live streams" in stderr, stderr
    assert limit_refusals(live, "max_publishers") == 1
    assert 'live_publish_refused_total{reason="limit"} 1.0' in live.get("/metrics")[1].decode()
    assert live.get(f"/live/{streams[2]['playback_id']}/index.m3u8")[0] == 404
    # the first two were never disturbed: still live, still playing, one session each
    for stream, url in zip(streams[:2], media, strict=True):
        assert live.get(url)[0] == 200
        (session,) = history(live, stream["id"])
        assert session["ended_at"] is None
    assert first.poll() is None and second.poll() is None


def test_a_publisher_over_the_bitrate_limit_is_disconnected_with_the_reason(processes, start_live):
    live = start_live(max_publisher_bitrate_kbps=400, publisher_bitrate_window_s=2)
    loud, calm = live.create_livestream(reconnect_window_s=0), live.create_livestream()
    calm_publisher = ffmpeg_publish(
        processes, live.rtmp_url(calm["stream_key"]), seconds=20, size="320x180",
        audio=False, extra_output=("-b:v", "100k", "-maxrate", "100k", "-bufsize", "100k"),
    )  # fmt: skip
    calm_url = live.wait_playable(calm["playback_id"])
    # testsrc2 at 1280x720 with ultrafast x264 runs at several Mbit/s
    loud_publisher = ffmpeg_publish(
        processes, live.rtmp_url(loud["stream_key"]), seconds=20, size="1280x720"
    )
    assert loud_publisher.wait(20) != 0
    stderr = loud_publisher.stderr.read()
    assert re.search(
        r"bitrate \d+ kbps is over this server's limit of 400 kbps \(averaged over 2 s\)",
        stderr,
    ), stderr
    wait_for(lambda: history(live, loud["id"])[0]["ended_at"], 10, message="the end")
    assert history(live, loud["id"])[0]["end_reason"] == "error"
    assert limit_refusals(live, "max_publisher_bitrate_kbps") == 1
    assert any("over this server's limit of 400 kbps" in line for line in live.output)
    # the publisher under the limit was never touched
    assert calm_publisher.poll() is None
    assert live.get(calm_url)[0] == 200
    (session,) = history(live, calm["id"])
    assert session["ended_at"] is None


def _stalled_for(port: int, first_bytes: bytes, trickle: bytes = b"") -> float:
    """Connect, send `first_bytes`, then one byte of `trickle` every 0.3 s (or nothing):
    seconds from connecting until the server closes the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    opened = time.monotonic()
    with sock:
        sock.sendall(first_bytes)
        sock.settimeout(0.3)
        sent = 0
        while time.monotonic() - opened < 15:
            try:
                if not sock.recv(65536):
                    return time.monotonic() - opened
                continue  # e.g. the server's S0/S1/S2: keep reading until it closes
            except TimeoutError:
                pass
            except ConnectionResetError:
                return time.monotonic() - opened
            if sent < len(trickle):
                try:
                    sock.sendall(trickle[sent : sent + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - opened
                sent += 1
    raise AssertionError("the server never closed the stalled connection")


def test_stalled_rtmp_and_http_clients_are_dropped_while_real_ones_carry_on(processes, start_live):
    live = start_live(rtmp_handshake_timeout_s=1.5, http_header_timeout_s=1.5)
    stream = live.create_livestream(reconnect_window_s=0)
    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=10)
    media_url = live.wait_playable(stream["playback_id"])
    rtmp, http = live.ports["RTMP ingest"], live.ports["HTTP"]
    c1 = bytes(1536)
    stalled = [
        (rtmp, b"\x03" + c1[:700], b""),  # C0 and half of C1, then nothing
        (rtmp, b"\x03", c1),  # C1 a byte every 0.3 s: never idle, never done
        (http, b"GET /live/", b""),  # half a request line, then nothing
        (http, b"GET /healthz HTTP/1.1\r\n", b"X-Slow: " + b"a" * 200),  # headers trickled
    ]
    with ThreadPoolExecutor(len(stalled)) as pool:
        dropped_after = list(pool.map(lambda args: _stalled_for(*args), stalled))
    print(f"stalled clients dropped after {[round(t, 2) for t in dropped_after]} s")
    # each held on for its timeout, and not much longer
    assert all(1.4 < after < 6 for after in dropped_after), dropped_after
    assert limit_refusals(live, "rtmp_handshake_timeout_s") == 2

    # meanwhile the real publisher and a player were served as ever
    assert publisher.poll() is None
    for _ in range(3):
        assert live.get(media_url)[0] == 200
    (session,) = history(live, stream["id"])
    assert session["ended_at"] is None
    assert publisher.wait(40) == 0
