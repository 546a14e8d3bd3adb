"""No secret in the server's log, at DEBUG: a real server takes RTMP (with a query
on the publish name), SRT with a passphrase and WHIP publishes, wrong keys and
passphrases on each, a stream key where the RTMP app belongs, and API calls with
good, wrong and new API keys and a key reset; then its whole output is searched
for every one of those secrets."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.parse

import pytest
from harness import API_KEY, ffmpeg_publish, wait_for
from test_srt import srt_publish
from test_whip_support import ffmpeg_whip, make_certificate, start_live, whip_request

pytestmark = pytest.mark.e2e

PASSPHRASE = "Passphrase4SrtOnly7731"


def _ran(process: subprocess.Popen, ok: bool) -> None:
    _, err = process.communicate(timeout=60)
    assert (process.returncode == 0) == ok, err


def test_no_key_or_passphrase_reaches_the_log(processes, tmp_path):
    live = start_live(processes, tmp_path / "data", LIVE_LOG_LEVEL="debug")
    stream = live.create_livestream(reconnect_window_s=0, srt_passphrase=PASSPHRASE)
    key = stream["stream_key"]
    secrets = {"admin API key": API_KEY, "stream key": key, "SRT passphrase": PASSPHRASE}

    def sessions() -> int:
        return len(live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]["data"])

    # The right secrets on every protocol (RTMP with a password in its query).
    secrets["RTMP query"] = "QueryPassword5150"
    rtmp = f"{live.rtmp_url(key)}?pwd={secrets['RTMP query']}"
    _ran(ffmpeg_publish(processes, rtmp, seconds=2), ok=True)
    _ran(srt_publish(processes, live.srt_url(key, passphrase=PASSPHRASE), seconds=2), ok=True)
    wait_for(lambda: sessions() == 2, 10, message="the SRT session")
    cert = make_certificate(tmp_path)
    _ran(ffmpeg_whip(processes, live, key, cert, "--seconds", "3"), ok=True)
    wait_for(lambda: sessions() == 3, 10, message="the WHIP session")

    # Wrong ones, each a near miss of the right one.
    secrets |= {
        "wrong RTMP key": key[:-2] + "xR",
        "wrong SRT key": key[:-2] + "xS",
        "wrong WHIP key": key[:-2] + "xW",
        "wrong passphrase": PASSPHRASE[:-1] + "0",
        "wrong API key": API_KEY[:-1] + "0",
    }
    _ran(ffmpeg_publish(processes, live.rtmp_url(secrets["wrong RTMP key"]), seconds=2), ok=False)
    port = live.ports["RTMP ingest"]
    _ran(ffmpeg_publish(processes, f"rtmp://127.0.0.1:{port}/{key}/x", seconds=2), ok=False)
    access_control = urllib.parse.quote(f"#!::r={secrets['wrong SRT key']},m=publish", safe="")
    _ran(srt_publish(processes, live.srt_url(access_control), seconds=2), ok=False)
    wrong_passphrase = live.srt_url(key, passphrase=secrets["wrong passphrase"])
    _ran(srt_publish(processes, wrong_passphrase, seconds=2), ok=False)
    status, _, _ = whip_request(
        live, "POST", body=b"v=0\r\n",
        headers={"Authorization": f"Bearer {secrets['wrong WHIP key']}",
                 "Content-Type": "application/sdp"},
    )  # fmt: skip
    assert status == 401
    assert live.api("GET", "/v1/livestreams", key=secrets["wrong API key"])[0] == 401

    # A new API key, used; a stream key reset; the livestream read with its secrets.
    status, created = live.api("POST", "/v1/api-keys", {"name": "ci", "scope": "admin"})
    assert status == 201, created
    secrets["new API key"] = created["key"]
    assert live.api("GET", "/v1/livestreams", key=created["key"])[0] == 200
    status, reset = live.api("POST", f"/v1/livestreams/{stream['id']}/reset-stream-key")
    assert status == 200, reset
    secrets["reset stream key"] = reset["stream_key"]
    assert reset["stream_key"] != key

    assert live.stop(signal.SIGTERM) == 0
    time.sleep(0.5)  # the reader thread takes the last lines
    log = "".join(live.output)
    assert " DEBUG " in log, "the server did not log at DEBUG"
    for protocol in ("rtmp", "srt", "whip"):
        assert f"{protocol} publish from 127.0.0.1" in log and "accepted" in log
    assert "rejected with 1010" in log  # the wrong passphrase was judged
    leaked = [name for name, secret in secrets.items() if secret in log]
    assert not leaked, f"in the log: {leaked}"
