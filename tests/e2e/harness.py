"""Run the real server as a subprocess and drive it with real clients.

Every process started here is tracked and ended (by PID) when the test ends, pass
or fail; ports are all picked by the server (port 0) and read from its output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from media_fixtures import gop_args

API_KEY = "lk_test_admin_key_0123456789"
_PORT_LINE = re.compile(r"^\s+(HTTPS|HTTP|RTMP ingest|RTMPS ingest|SRT ingest)\b.*\(port (\d+)\)")


@dataclass
class Processes:
    """Processes a test started; all are ended at teardown, and then the directories
    they were given outside the test's own (`scratch_dir`) are removed."""

    started: list[subprocess.Popen] = field(default_factory=list)
    scratch: list[Path] = field(default_factory=list)

    def scratch_dir(self, prefix: str) -> Path:
        """A fresh directory under the system temp dir (a short path, for programs
        that put Unix sockets in it), removed once the processes have ended."""
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.scratch.append(path)
        return path

    def popen(self, command: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        process = subprocess.Popen(command, **kwargs)
        self.started.append(process)
        return process

    def end_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 5
        for process in self.started:
            if process.poll() is None:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        for path in self.scratch:
            shutil.rmtree(path, ignore_errors=True)


class LiveProcess:
    """`live serve` on free loopback ports with its own data directory."""

    def __init__(
        self, processes: Processes, data_dir: Path, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        environment = {**os.environ, "LIVE_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
        environment.update(env or {})
        self.process = processes.popen(
            [
                sys.executable,
                "-m",
                "live.cli",
                "serve",
                "--http",
                "127.0.0.1:0",
                "--rtmp",
                "127.0.0.1:0",
                "--srt",
                "127.0.0.1:0",
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
        )
        self.output: list[str] = []
        self.ports: dict[str, int] = {}
        self._ready = threading.Event()
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self._ready.wait(30) or "HTTP" not in self.ports:
            raise RuntimeError("server did not start:\n" + "".join(self.output))

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = _PORT_LINE.match(line)
            if match:
                self.ports[match.group(1)] = int(match.group(2))
            if line.startswith("  playback"):
                self._ready.set()
        self._ready.set()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.ports['HTTP']}"

    def rtmp_url(self, stream_key: str) -> str:
        return f"rtmp://127.0.0.1:{self.ports['RTMP ingest']}/live/{stream_key}"

    def srt_url(self, stream_id: str, **options: str) -> str:
        """`srt://` URL for ffmpeg (its `streamid` is used as given, not URL-decoded)."""
        query = "".join(f"&{name}={value}" for name, value in options.items())
        return f"srt://127.0.0.1:{self.ports['SRT ingest']}?streamid={stream_id}{query}"

    def api(
        self, method: str, path: str, body: dict | None = None, key: str | None = API_KEY
    ) -> tuple[int, dict | None]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.http + path, data=data, method=method)
        if key:
            request.add_header("X-API-Key", key)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def create_livestream(self, **fields) -> dict:
        status, body = self.api("POST", "/v1/livestreams", {"name": "test", **fields})
        assert status == 201, body
        return body

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes, dict[str, str]]:
        url = path if path.startswith("http") else self.http + path
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)

    def wait_playable(self, playback_id: str, timeout: float = 20) -> str:
        """Wait for the multivariant playlist; return the media playlist URL."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body, _ = self.get(f"/live/{playback_id}/index.m3u8")
            if status == 200:
                uri = next(
                    line for line in body.decode().splitlines() if line and not line.startswith("#")
                )
                return f"{self.http}/live/{playback_id}/{uri}"
            time.sleep(0.2)
        raise AssertionError(f"{playback_id} never became playable:\n" + "".join(self.output))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def ffmpeg_publish(
    processes: Processes,
    url: str,
    *,
    seconds: float = 30,
    bframes: int = 0,
    gop: int = 30,
    size: str = "640x360",
    fps: int = 30,
    audio: bool = True,
    extra_output: tuple[str, ...] = (),
) -> subprocess.Popen:
    """Publish a real-time test pattern (+ a tone) with the ffmpeg CLI."""
    command = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostats",
        "-re",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate={fps}",
    ]
    if audio:
        command += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    command += [
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency" if bframes == 0 else "film",
        *gop_args(gop, bframes),
    ]
    if audio:
        command += ["-c:a", "aac", "-b:a", "96k"]
    command += [*extra_output, "-f", "flv", url]
    return processes.popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def ffprobe_streams(url: str, timeout: float = 30) -> list[dict]:
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,codec_type,width,height,codec_tag_string",
            "-of",
            "json",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["streams"]


def count_frames(path_or_url: str | Path) -> int:
    """The video frames ffprobe decodes from a file or URL (an MP4, a VOD playlist)."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "json", str(path_or_url)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["streams"][0]["nb_read_frames"])


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


class RedisProcess:
    """A real redis-server on a free loopback port, in a scratch directory that
    outlives a kill (so a restart with AOF finds its data)."""

    def __init__(self, processes: Processes, *, appendonly: bool = False) -> None:
        self.processes = processes
        self.directory = processes.scratch_dir("live-redis-")
        self.appendonly = appendonly
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = self.processes.popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, interval=0.05, message="redis-server to answer")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A P-256 key and a self-signed certificate for 127.0.0.1 (the openssl CLI), for
    the TLS listeners (RTMPS, HTTPS)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key
