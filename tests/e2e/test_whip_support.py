"""Shared by the WHIP end-to-end tests (no tests here): a server whose WebRTC sockets are on
loopback, a P-256 DTLS certificate for FFmpeg's muxer, and raw WHIP requests."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from harness import LiveProcess, Processes

PUBLISHER = str(Path(__file__).with_name("whip_publisher.py"))
WHIP_ENV = {
    "LIVE_ENDED_PLAYLIST_LINGER_S": "30",
    "LIVE_WHIP_UDP_HOST": "127.0.0.1",
    "LIVE_WHIP_CANDIDATE_HOST": "127.0.0.1",
}


def start_live(processes: Processes, data_dir: Path, **env: str) -> LiveProcess:
    return LiveProcess(processes, data_dir, env={**WHIP_ENV, **env})


def make_certificate(directory: Path) -> tuple[str, str]:
    """A P-256 key and self-signed certificate (openssl CLI), for FFmpeg's DTLS."""
    key, cert = directory / "whip-key.pem", directory / "whip-cert.pem"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-x509",
            "-key",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=whip-test",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return str(cert), str(key)


def ffmpeg_whip(
    processes: Processes, live: LiveProcess, key: str, cert: tuple[str, str], *args: str
) -> subprocess.Popen:
    return processes.popen(
        [
            sys.executable,
            PUBLISHER,
            f"{live.http}/whip",
            "--key",
            key,
            "--cert",
            cert[0],
            "--cert-key",
            cert[1],
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def whip_request(
    live: LiveProcess,
    method: str,
    path: str = "/whip",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    """One raw request; (status, body, headers) whatever the status."""
    request = urllib.request.Request(live.http + path, data=body, method=method)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def offer_sdp(*sections: str) -> bytes:
    """A syntactically complete offer with the given media sections (kind, direction
    and codec, as "video sendonly H264/90000")."""
    lines = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE " + " ".join(str(i) for i in range(len(sections))),
    ]
    for mid, section in enumerate(sections):
        kind, direction, codec = section.split()
        payload = 96 + mid
        lines += [
            f"m={kind} 9 UDP/TLS/RTP/SAVPF {payload}",
            "c=IN IP4 0.0.0.0",
            "a=ice-ufrag:abcd",
            "a=ice-pwd:abcdefghijklmnopqrstuvwx",
            "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
            "a=setup:actpass",
            f"a=mid:{mid}",
            f"a={direction}",
            "a=rtcp-mux",
            f"a=rtpmap:{payload} {codec}",
        ]
        if codec.startswith("H264"):
            lines.append(
                f"a=fmtp:{payload} level-asymmetry-allowed=1;packetization-mode=1;"
                "profile-level-id=42e01f"
            )
    return ("\r\n".join(lines) + "\r\n").encode()
