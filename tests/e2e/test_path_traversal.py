"""No way out of a folder through /live, /vod, /play or /web: a real server with a
live stream and a recorded asset gets requests with encoded, double-encoded and
backslashed "..", absolute paths, NUL, overlong UTF-8 and look-alike Unicode (the
fullwidth dot, the division slash), sent byte for byte over a raw socket. Each is a
400 or 404, and none returns a sentinel planted beside the data dir, inside it, in
another asset's folder, or the database."""

from __future__ import annotations

import socket
import urllib.parse
from pathlib import Path

import pytest
from harness import LiveProcess, ffmpeg_publish, wait_for

pytestmark = pytest.mark.e2e

SENTINEL = b"sentinel: this file must never be served"

# Ways to say "go up" and "from the root", as a client may write them in a path.
UP = [
    "../",
    "..%2f",
    "..%2F",
    "%2e%2e/",
    "%2e%2e%2f",
    ".%2e/",
    "%252e%252e%252f",  # double-encoded
    "..%255c",
    "..\\",
    "..%5c",
    "%c0%ae%c0%ae/",  # overlong UTF-8 for "."
    "%c0%ae%c0%ae%c0%af",  # ... and for "/"
    "\uff0e\uff0e/",  # fullwidth full stops, raw UTF-8
    "%ef%bc%8e%ef%bc%8e/",  # the same, encoded
    "..\u2215",  # division slash, raw
    "..%e2%88%95",  # the same, encoded
    "%u002e%u002e/",  # IIS-style
    "..;/",
    ".../",
]


def _raw_get(port: int, target: bytes) -> tuple[int, bytes]:
    """GET with `target` as the request target, byte for byte (no client in between
    normalises or re-encodes it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0].split()
    return int(status_line[1]), answer


def _targets(base: str, data_dir: Path, other_asset: str) -> list[str]:
    """Paths under `base` that try to reach the sentinels and the database."""
    names = ["sentinel.txt", "data/sentinel.txt", "data/live.db", "live.db",
             f"data/recordings/assets/{other_asset}/sentinel.txt"]  # fmt: skip
    targets = []
    for up in UP:
        for depth in (1, 3, 8):
            for name in names:
                targets.append(base + up * depth + name)
    outside = str(data_dir.parent / "sentinel.txt")
    for absolute in (outside, str(data_dir / "live.db"), "/etc/passwd"):
        targets += [
            base + absolute.lstrip("/"),
            base + "/" + absolute.lstrip("/"),
            base + urllib.parse.quote(absolute, safe=""),
            base + urllib.parse.quote(urllib.parse.quote(absolute, safe=""), safe=""),
            base + "file:" + absolute,
            base + "C:%5c" + absolute.lstrip("/").replace("/", "%5c"),
        ]
    targets += [
        base + "index.m3u8%00",
        base + "sentinel.txt%00index.m3u8",
        base + "%00",
        base + "..%00/sentinel.txt",
    ]
    return targets


def _plant(data_dir: Path, other_asset_dir: Path) -> list[Path]:
    planted = [data_dir.parent / "sentinel.txt", data_dir / "sentinel.txt"]
    other_asset_dir.mkdir(parents=True, exist_ok=True)
    planted.append(other_asset_dir / "sentinel.txt")
    for path in planted:
        path.write_bytes(SENTINEL)
    return planted


def test_no_request_leaves_its_folder(processes, tmp_path):
    data_dir = tmp_path / "data"
    live = LiveProcess(processes, data_dir)
    stream = live.create_livestream(reconnect_window_s=0)
    other_asset = "ast_neighbour"
    _plant(data_dir, data_dir / "recordings" / "assets" / other_asset)
    port = live.ports["HTTP"]
    database = (data_dir / "live.db").read_bytes()[:16]  # "SQLite format 3\0"

    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=5)
    media_url = live.wait_playable(stream["playback_id"])
    rendition = media_url.rsplit("/", 2)[-2]
    playback = f"/live/{stream['playback_id']}/"
    bases = [playback, f"{playback}{rendition}/", "/live/"]

    def check(targets: list[str]) -> int:
        served = []
        for target in targets:
            status, answer = _raw_get(port, target.encode("utf-8"))
            assert SENTINEL not in answer and database not in answer, target
            assert b"root:" not in answer, target  # /etc/passwd
            if status not in (400, 404):
                served.append((target, status))
        assert not served, served
        return len(targets)

    # Live: the real files answer (the checks below are not all 404 for nothing).
    first = _raw_get(port, f"{playback}index.m3u8".encode())
    assert first[0] == 200, first
    checked = check([t for base in bases for t in _targets(base, data_dir, other_asset)])
    assert publisher.wait(30) == 0, publisher.stderr.read()

    def asset_ready():
        assets = live.api("GET", f"/v1/assets?livestream_id={stream['id']}")[1]["data"]
        return assets and assets[0]["status"] == "ready" and assets[0]

    asset = wait_for(asset_ready, 30, message="the recording")
    vod = f"/vod/{asset['id']}/"
    assert _raw_get(port, f"{vod}index.m3u8".encode())[0] == 200
    assert _raw_get(port, f"/play/{stream['playback_id']}".encode())[0] == 200
    assert _raw_get(port, b"/web/js/player.js")[0] == 200
    bases = [vod, "/vod/", f"/vod/{asset['id']}", "/play/", f"/play/{stream['playback_id']}/",
             "/web/", "/web/vendor/"]  # fmt: skip
    checked += check([t for base in bases for t in _targets(base, data_dir, other_asset)])
    # Look-alike digits name no file either (an ASCII number is what a name holds).
    look_alikes = [
        f"{vod}seg_\uff10\uff10\uff10\uff10\uff11.m4s",
        f"{vod}init_\u0661.mp4",
        f"{playback}{rendition}/part-\uff11.m4s",
        "/web/js/player\uff0ejs",
    ]
    checked += check(look_alikes + [urllib.parse.quote(path) for path in look_alikes])
    assert checked > 2000
