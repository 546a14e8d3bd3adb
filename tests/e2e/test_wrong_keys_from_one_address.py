"""Guessing stream keys, with real clients: ten wrong keys from one address are
answered, then slowed, then refused for a while (a right key from there too), while
a publisher on another loopback address (127.0.0.2) goes live as if nothing
happened. RTMP (the ffmpeg CLI, through a relay for the second address), SRT
(ffmpeg; srt-live-transmit bound to 127.0.0.2) and WHIP (HTTP 429 + Retry-After)."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
import urllib.parse

import pytest
from harness import LiveProcess, ffmpeg_publish, wait_for
from media_fixtures import gop_args
from tcp_relay import TcpRelay
from test_srt import srt_publish
from test_whip_support import WHIP_ENV, ffmpeg_whip, make_certificate, offer_sdp

pytestmark = pytest.mark.e2e

# Three wrong keys are free, the next three wait 0.5 s, 1 s and 1 s, the sixth
# refuses the address for two minutes: ten attempts take a few seconds.
GUARD_ENV = {
    "LIVE_AUTH_SLOW_AFTER": "3",
    "LIVE_AUTH_REFUSE_AFTER": "6",
    "LIVE_AUTH_DELAY_S": "0.5",
    "LIVE_AUTH_MAX_DELAY_S": "1",
    "LIVE_AUTH_REFUSE_FOR_S": "120",
}
ATTEMPTS = 10


def throttled(live: LiveProcess, protocol: str) -> dict[str, float]:
    """The guard's counters for one protocol, from /metrics."""
    counts = {"slowed": 0.0, "refused": 0.0}
    for line in live.get("/metrics")[1].decode().splitlines():
        if line.startswith("live_publish_auth_throttled_total{") and f'"{protocol}"' in line:
            action = line.split('action="', 1)[1].split('"', 1)[0]
            counts[action] = float(line.rsplit(" ", 1)[1])
    return counts


def current_session(live: LiveProcess, stream: dict) -> dict | None:
    return live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["current_session"]


def test_rtmp_guesses_are_slowed_then_refused_and_another_address_publishes(processes, tmp_path):
    live = LiveProcess(processes, tmp_path / "data", env=GUARD_ENV)
    stream = live.create_livestream(reconnect_window_s=0)
    answers, waits = [], []
    for attempt in range(ATTEMPTS):
        started = time.monotonic()
        guess = ffmpeg_publish(processes, live.rtmp_url(f"sk_guess{attempt}"), seconds=5)
        _, err = guess.communicate(timeout=30)
        waits.append(time.monotonic() - started)
        assert guess.returncode != 0, err
        answers.append(err)
    assert all("no livestream has this key" in err for err in answers[:6]), answers
    assert all("too many failed attempts" in err for err in answers[6:]), answers
    assert min(waits[3:6]) >= 0.5  # the slowed ones waited (an e2e lower bound)
    assert throttled(live, "rtmp") == {"slowed": 3, "refused": 4}

    # The right key from the guessing address is refused too: it cannot be told apart.
    right = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=5)
    _, err = right.communicate(timeout=30)
    assert right.returncode != 0 and "too many failed attempts" in err, err

    relay = TcpRelay(("127.0.0.1", live.ports["RTMP ingest"]), source_host="127.0.0.2")
    try:
        url = f"rtmp://127.0.0.1:{relay.port}/live/{stream['stream_key']}"
        publisher = ffmpeg_publish(processes, url, seconds=6)
        live.wait_playable(stream["playback_id"], timeout=20)
        session = current_session(live, stream)
        assert session["remote_addr"].startswith("127.0.0.2:"), session
        assert publisher.wait(30) == 0, publisher.stderr.read()
    finally:
        relay.close()
    assert throttled(live, "rtmp") == {"slowed": 3, "refused": 5}


def _srt_bound_publish(processes, live: LiveProcess, key: str, source: str) -> subprocess.Popen:
    """ffmpeg's MPEG-TS through srt-live-transmit, whose caller binds `source`."""
    encoder = processes.popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
         "-i", "testsrc2=size=320x180:rate=30", "-t", "6", "-c:v", "libx264",
         "-preset", "ultrafast", *gop_args(30, 0), "-f", "mpegts", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # mode=caller: with an adapter alone, srt-live-transmit would go rendezvous.
    url = (
        f"srt://127.0.0.1:{live.ports['SRT ingest']}?streamid={urllib.parse.quote(key, safe='')}"
        f"&mode=caller&adapter={source}"
    )
    transmit = processes.popen(
        ["srt-live-transmit", "-q", "file://con", url],
        stdin=encoder.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    encoder.stdout.close()
    return transmit


def test_srt_guesses_and_wrong_passphrases_are_slowed_then_refused(processes, tmp_path):
    live = LiveProcess(processes, tmp_path / "data", env=GUARD_ENV)
    stream = live.create_livestream(reconnect_window_s=0)
    locked = live.create_livestream(reconnect_window_s=0, srt_passphrase="the right passphrase")
    answers = []
    for attempt in range(ATTEMPTS):
        if attempt % 2:  # a right key with a wrong passphrase is a guess too
            url = live.srt_url(locked["stream_key"], passphrase=f"wrong passphrase {attempt}")
        else:
            url = live.srt_url(f"sk_guess{attempt}")
        guess = srt_publish(processes, url, seconds=3)
        _, err = guess.communicate(timeout=30)
        assert guess.returncode != 0, err
        answers.append(err)
    assert all("REJECT" in err for err in answers), answers
    assert throttled(live, "srt") == {"slowed": 3, "refused": 4}
    # libsrt names no application code: a refused address is told apart by the
    # server's log (2503, overload) and by its wrong passphrases no longer being judged.
    assert all("Incorrect passphrase" in err for err in answers[1:6:2]), answers
    assert all("Application-defined" in err for err in answers[6:]), answers
    assert sum("rejected with 2503" in line for line in live.output) == 4

    transmit = _srt_bound_publish(processes, live, stream["stream_key"], "127.0.0.2")
    live.wait_playable(stream["playback_id"], timeout=20)
    assert current_session(live, stream)["remote_addr"].startswith("127.0.0.2:")
    transmit.terminate()
    transmit.wait(10)


def _whip_post(live: LiveProcess, key: str, source: str) -> tuple[int, dict, dict[str, str]]:
    """A WHIP offer from `source` (http.client binds it; urllib cannot)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", live.ports["HTTP"], timeout=30, source_address=(source, 0)
    )
    try:
        connection.request(
            "POST",
            "/whip",
            body=offer_sdp("video sendonly H264/90000"),
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        connection.close()


def test_whip_guesses_get_429_with_retry_after_and_another_address_publishes(processes, tmp_path):
    live = LiveProcess(processes, tmp_path / "data", env={**WHIP_ENV, **GUARD_ENV})
    stream = live.create_livestream(reconnect_window_s=0)
    answers = [_whip_post(live, f"sk_guess{attempt}", "127.0.0.2") for attempt in range(ATTEMPTS)]
    assert [status for status, _, _ in answers] == [401] * 6 + [429] * 4
    for _, body, headers in answers[6:]:
        assert body["error"]["code"] == "rate_limited"
        assert 110 <= int(headers["Retry-After"]) <= 120
    status, _, headers = _whip_post(live, stream["stream_key"], "127.0.0.2")
    assert status == 429 and "Retry-After" in headers
    assert throttled(live, "whip") == {"slowed": 3, "refused": 5}

    cert = make_certificate(tmp_path)
    publisher = ffmpeg_whip(processes, live, stream["stream_key"], cert, "--seconds", "5")
    live.wait_playable(stream["playback_id"], timeout=20)
    assert current_session(live, stream)["remote_addr"].startswith("127.0.0.1:")
    assert publisher.wait(30) == 0, publisher.stderr.read()
    wait_for(lambda: current_session(live, stream) is None, 10, message="session end")
