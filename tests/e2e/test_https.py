"""The HTTPS listener: the same API, playback and pages over TLS, beside the plain
HTTP listener, which keeps its meaning."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from harness import LiveProcess, ffmpeg_publish, self_signed_certificate

pytestmark = pytest.mark.e2e


def _curl(url: str, cert) -> tuple[int, bytes]:
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(cert), "-o", "-", "-w", "\\n%{http_code}", url],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition(b"\n")
    return int(status), body


def test_api_and_playback_over_https(processes, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    live = LiveProcess(
        processes, tmp_path / "data", "--https", "127.0.0.1:0",
        "--tls-cert", str(cert), "--tls-key", str(key),
    )  # fmt: skip
    https = f"https://127.0.0.1:{live.ports['HTTPS']}"
    assert live.ports["HTTPS"] != live.ports["HTTP"]

    # the certificate verifies (curl checks it against the CA file given)
    status, body = _curl(f"{https}/healthz", cert)
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = _curl(f"{https}/v1/openapi.json", cert)
    assert status == 200 and "/livestreams" in json.loads(body)["paths"]
    assert live.get("/healthz")[0] == 200  # plain HTTP is still there

    stream = live.create_livestream(reconnect_window_s=0)
    ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=20)
    live.wait_playable(stream["playback_id"])
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "json",
         f"{https}/live/{stream['playback_id']}/index.m3u8"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    kinds = {s["codec_type"] for s in json.loads(probe.stdout)["streams"]}
    assert kinds == {"video", "audio"}
    status, body = _curl(f"{https}/publish", cert)
    assert status == 200 and b"<html" in body.lower()


def test_https_without_a_certificate_is_refused_at_start(processes, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "live.cli", "serve", "--data-dir", str(tmp_path / "data"),
         "--https", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "https needs tls_cert" in result.stderr
