"""Soaks: a server killed and restarted under a publisher, and a server under a
mixed crowd of publishers and viewers. The end-to-end tests run short versions;
bench/soak_crash.py and bench/soak_load.py run the long ones with the same code.

Crash soak. What the server *acknowledged* is what it published: the LL-HLS parts
a watcher fetched, each as soon as a blocking playlist reload announced it. A part
in the playlist is one the server claims to have, and the recorder gets the very
same bytes (the packager hands one CMAF part to both), so the check is byte for
byte: every acknowledged part must be one of the parts stored in that session's
asset (the segments split at their manifests' part sizes), except at most one
per SIGKILL and none per SIGTERM. Frames are counted with PyAV in each part (init
section + part), for the figures. The watcher may miss parts (a blocking reload
that comes back after the part left the playlist); those are counted as unseen
and are simply not acknowledged.

Load soak. Publishers of each kind (RTMP and SRT through the ffmpeg CLI, WHIP
through FFmpeg's WHIP muxer in PyAV), hls.js-like viewers (llhls_viewers.py)
spread over the streams, some publishers dropped and restarted every round. The
server process is sampled: RSS and threads from /proc/PID/status, open file
descriptors from /proc/PID/fd, event loop tasks from /metrics
(`live_asyncio_tasks`). Parts are on time when each stream's parts keep arriving
at the first viewer about as fast as they are made (gaps between arrivals,
leaving out those spanning a publisher's restart).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import json
import random
import re
import signal
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import av
from harness import LiveProcess, Processes, count_frames, ffmpeg_publish, wait_for
from llhls_viewers import SwarmResult, _viewer
from test_srt import srt_publish
from test_whip_support import WHIP_ENV, ffmpeg_whip, make_certificate

_PART = re.compile(r'#EXT-X-PART:[^\n]*URI="(part-(\d+)\.m4s[^"]*)"')
_MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')
_MEDIA_SEQUENCE = re.compile(r"#EXT-X-MEDIA-SEQUENCE:(\d+)")
_TASKS = re.compile(r"^live_asyncio_tasks (\S+)", re.M)
RECONNECT_AFTER_S = 3.0
SIGNAL_NAMES = {signal.SIGKILL: "SIGKILL", signal.SIGTERM: "SIGTERM"}


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def part_frames(init: bytes, part: bytes) -> int:
    """Video frames in one CMAF part, demuxed with PyAV behind its init section."""
    with av.open(io.BytesIO(init + part), format="mp4") as container:
        if not container.streams.video:
            return 0
        return sum(1 for packet in container.demux(video=0) if packet.size)


# -- the crash soak ---------------------------------------------------------------------


@dataclass
class AckedPart:
    index: int
    digest: str
    frames: int


class PartWatcher(threading.Thread):
    """Fetches every part of one media playlist as it is announced, over blocking
    reloads, until `stop` or the server goes away. One per server life."""

    def __init__(self, media_url: str) -> None:
        super().__init__(daemon=True)
        self.media_url = media_url.split("?", 1)[0]  # blocking reloads add their own
        self.base = media_url.rsplit("/", 1)[0]
        self.parts: list[AckedPart] = []
        self.unseen = 0  # part numbers skipped (left the playlist before we asked)
        self.stopping = threading.Event()
        self._inits: dict[str, bytes] = {}

    def stop(self) -> None:
        self.stopping.set()
        self.join(15)

    def _get(self, url: str, timeout: float = 6) -> bytes | None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.read()
        except (urllib.error.URLError, OSError, TimeoutError):
            return None

    def run(self) -> None:
        last = -1
        query = ""
        while not self.stopping.is_set():
            text = self._get(self.media_url + query)
            if text is None:
                if self.stopping.wait(0.2):
                    return
                continue
            playlist = text.decode()
            current_map = None
            for line in playlist.splitlines():
                found_map = _MAP.match(line)
                if found_map:
                    current_map = found_map.group(1)
                found = _PART.match(line)
                if not found or int(found.group(2)) <= last or current_map is None:
                    continue
                index = int(found.group(2))
                data = self._get(f"{self.base}/{found.group(1)}")
                init = self._init(current_map)
                if data is None or init is None:
                    break
                if last >= 0:
                    self.unseen += index - last - 1
                self.parts.append(AckedPart(index, digest(data), part_frames(init, data)))
                last = index
            if "#EXT-X-ENDLIST" in playlist:
                return
            query = _next_part_query(playlist)

    def _init(self, uri: str) -> bytes | None:
        if uri not in self._inits:
            data = self._get(f"{self.base}/{uri}")
            if data is None:
                return None
            self._inits[uri] = data
        return self._inits[uri]


def _next_part_query(playlist: str) -> str:
    """`?_HLS_msn=M&_HLS_part=P` for the part after the newest listed."""
    sequence = int(_MEDIA_SEQUENCE.search(playlist).group(1))  # type: ignore[union-attr]
    segments = playlist.count("#EXTINF:")
    open_parts = playlist.rsplit("#EXTINF:", 1)[-1].count("#EXT-X-PART:")
    return f"?_HLS_msn={sequence + segments}&_HLS_part={open_parts}"


def recorded_parts(asset_dir: Path) -> list[str]:
    """The digests of the parts an asset's stored segments hold, in order."""
    digests = []
    for manifest_path in sorted(asset_dir.glob("seg_*.json")):
        manifest = json.loads(manifest_path.read_bytes())
        data = manifest_path.with_suffix(".m4s").read_bytes()
        offset = 0
        for part in manifest["parts"]:
            digests.append(digest(data[offset : offset + part["size"]]))
            offset += part["size"]
        assert offset == len(data), manifest_path
    return digests


@dataclass
class Life:
    """One run of the server between a start and the signal that ended it."""

    signal: str
    seconds: float
    acked: list[AckedPart]
    unseen: int
    session_id: str = ""
    asset_id: str = ""
    recorded_parts: int = 0
    missing: list[AckedPart] = field(default_factory=list)

    @property
    def acked_frames(self) -> int:
        return sum(part.frames for part in self.acked)


@dataclass
class CrashSoakResult:
    lives: list[Life]
    recorded_frames: int  # decoded by ffprobe from the assets' MP4s, summed
    seconds: float

    def summary(self) -> dict:
        kills = Counter(life.signal for life in self.lives[:-1])
        return {
            "seconds": round(self.seconds),
            "sigkill": kills["SIGKILL"],
            "sigterm": kills["SIGTERM"],
            "sessions": len(self.lives),
            "parts_acknowledged": sum(len(life.acked) for life in self.lives),
            "parts_unseen_by_watcher": sum(life.unseen for life in self.lives),
            "frames_acknowledged": sum(life.acked_frames for life in self.lives),
            "frames_recorded": self.recorded_frames,
            "parts_missing": [len(life.missing) for life in self.lives],
            "frames_missing": sum(p.frames for life in self.lives for p in life.missing),
        }


def crash_soak(
    processes: Processes,
    data_dir: Path,
    *,
    seconds: float,
    interval: tuple[float, float],
    signals: list[int] | None = None,
    seed: int = 17,
    log=print,
) -> CrashSoakResult:
    """Publish with the ffmpeg CLI over RTMP for `seconds` while the server is
    killed every `interval` (min, max) seconds, by the signals in `signals` in
    turn (random when None), and restarted; the publisher is restarted with it.
    Ends with the publisher stopping and a clean server stop; every session and
    asset is then checked through the API of one more start."""
    rng = random.Random(seed)
    lives: list[Life] = []
    started = time.monotonic()
    server = LiveProcess(processes, data_dir)
    stream = server.create_livestream(reconnect_window_s=0)
    while True:
        publisher = ffmpeg_publish(
            processes, server.rtmp_url(stream["stream_key"]), seconds=seconds + 120
        )
        life_started = time.monotonic()
        watcher = PartWatcher(server.wait_playable(stream["playback_id"], timeout=60))
        watcher.start()
        remaining = seconds - (time.monotonic() - started)
        pause = rng.uniform(*interval)
        last = remaining < pause + interval[0] / 2
        time.sleep(max(1.0, min(pause, remaining)))
        if last:
            publisher.terminate()  # the session ends as a publisher's does
            publisher.wait(10)
            watcher.join(20)  # it stops at the playlist's ENDLIST
            assert not watcher.is_alive(), "the stream never ended"
            name, code = "end", server.stop(signal.SIGTERM, timeout=300)
            assert code == 0, "".join(server.output[-30:])
        else:
            sig = (
                signals[len(lives) % len(signals)]
                if signals
                else rng.choice([signal.SIGKILL, signal.SIGTERM])
            )
            name = SIGNAL_NAMES[sig]
            code = server.stop(sig, timeout=300)
            assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), (
                code, "".join(server.output[-30:]))  # fmt: skip
        watcher.stop()
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait(10)
        life = Life(name, time.monotonic() - life_started, watcher.parts, watcher.unseen)
        lives.append(life)
        log(f"life {len(lives)}: {life.seconds:.0f} s, ended by {name}, "
            f"{len(life.acked)} parts / {life.acked_frames} frames acknowledged")  # fmt: skip
        server = LiveProcess(processes, data_dir)
        if last:
            break
    try:
        return CrashSoakResult(
            lives, _check_crash_soak(server, stream, lives, data_dir),
            time.monotonic() - started,
        )  # fmt: skip
    finally:
        server.stop(signal.SIGTERM, timeout=300)


def _check_crash_soak(server: LiveProcess, stream: dict, lives: list[Life], data_dir: Path) -> int:
    """Every session closed, every asset ready, every acknowledged part recorded
    (but one per SIGKILL): fills in each life's session, asset and missing parts;
    the frames the assets' MP4s decode to, summed."""

    def assets() -> list[dict] | None:
        status, body = server.api("GET", f"/v1/assets?livestream_id={stream['id']}&page_size=100")
        assert status == 200, body
        failed = [a for a in body["data"] if a["status"] == "failed"]
        assert not failed, failed
        done = all(a["status"] == "ready" for a in body["data"])
        return body["data"] if done and len(body["data"]) == len(lives) else None

    by_id = {a["id"]: a for a in wait_for(assets, 300, interval=1, message="every asset ready")}
    status, body = server.api("GET", f"/v1/livestreams/{stream['id']}/history?page_size=100")
    assert status == 200, body
    sessions = sorted(body["data"], key=lambda s: s["started_at"])
    assert len(sessions) == len(lives), sessions
    recorded_frames = 0
    for life, session in zip(lives, sessions, strict=True):
        assert session["ended_at"] is not None, session
        expected_reason = {"SIGKILL": "error", "SIGTERM": "server_shutdown"}.get(life.signal)
        assert session["end_reason"] == (expected_reason or "publisher_disconnected"), session
        life.session_id, life.asset_id = session["id"], session["asset_id"]
        assert life.asset_id in by_id, (session, list(by_id))
        asset_dir = data_dir / "recordings" / "assets" / life.asset_id
        stored = recorded_parts(asset_dir)
        life.recorded_parts = len(stored)
        left = Counter(stored)
        for part in life.acked:
            if left[part.digest] > 0:
                left[part.digest] -= 1
            else:
                life.missing.append(part)
        recorded_frames += count_frames(asset_dir / "download.mp4")
    assert not list((data_dir / "journal").glob("*/*")), "journals left behind"
    return recorded_frames


# -- the load soak ----------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since the load was up
    rss_mb: float
    threads: int
    fds: int
    tasks: int


def sample_process(server: LiveProcess, at: float) -> Sample:
    pid = server.process.pid
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    metrics = server.get("/metrics")[1].decode()
    tasks = int(float(_TASKS.search(metrics).group(1)))  # type: ignore[union-attr]
    return Sample(round(at, 1), round(rss / 1024, 1), threads, fds, tasks)


@dataclass
class Publisher:
    kind: str  # rtmp, srt, whip
    stream: dict
    process: subprocess.Popen | None = None
    restarts: list[tuple[float, float]] = field(default_factory=list)  # (down, up) times


@dataclass
class LoadSoakResult:
    seconds: float
    publishers: Counter
    viewers: int
    rounds: int
    restarted: int
    idle: Sample  # before any publisher
    samples: list[Sample]
    after: Sample  # every publisher and viewer gone, streams ended
    gaps: list[float]  # seconds between parts reaching the first viewer
    viewer_requests: int
    results: list[SwarmResult]  # per stream: its viewers' arrivals and errors
    sessions: list[int]  # per stream: a publisher back inside the window is the same one

    def gap_summary(self) -> dict[str, float]:
        gaps = sorted(self.gaps)
        if not gaps:
            return {"parts": 0}
        return {
            "parts": len(gaps),
            "over_1s": sum(1 for gap in gaps if gap > 1.0),
            "p50_ms": round(gaps[len(gaps) // 2] * 1000),
            "p99_ms": round(gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))] * 1000),
            "max_ms": round(gaps[-1] * 1000),
        }

    def error_kinds(self) -> dict[str, int]:
        """The viewers' failed requests by kind ("blocking reload 503", ...)."""
        kinds: Counter[str] = Counter()
        for result in self.results:
            kinds.update(re.sub(r"^part \d+", "part", error) for error in result.errors)
        return dict(kinds)

    def rss_growth_mb(self) -> float:
        """Steady-state growth: the median RSS of the last third of the samples over
        that of the first third after warm-up (the first two samples)."""
        steady = self.samples[2:] if len(self.samples) > 5 else self.samples
        third = max(1, len(steady) // 3)
        first = statistics.median(s.rss_mb for s in steady[:third])
        last = statistics.median(s.rss_mb for s in steady[-third:])
        return round(last - first, 1)


def _publish(processes: Processes, server: LiveProcess, publisher: Publisher, cert, seconds):
    key = publisher.stream["stream_key"]
    if publisher.kind == "rtmp":
        return ffmpeg_publish(processes, server.rtmp_url(key), seconds=seconds, size="320x180")
    if publisher.kind == "srt":
        return srt_publish(processes, server.srt_url(key), seconds=seconds, size="320x180")
    return ffmpeg_whip(processes, server, key, cert, "--seconds", str(seconds),
                       "--size", "320x180")  # fmt: skip


def load_soak(
    processes: Processes,
    data_dir: Path,
    *,
    seconds: float,
    kinds: dict[str, int],
    viewers: int,
    restart_every: float,
    restart_count: int,
    record_every: int = 4,
    sample_every: float = 5.0,
    log=print,
) -> LoadSoakResult:
    """`kinds` publishers of each kind (e.g. {"rtmp": 8, "srt": 6, "whip": 6}) and
    `viewers` viewers for `seconds`; every `restart_every` seconds `restart_count`
    publishers (in turn) are killed and started again inside their reconnect
    window. One stream in `record_every` records."""
    server = LiveProcess(processes, data_dir, env=WHIP_ENV)
    cert = make_certificate(processes.scratch_dir("live-soak-cert-"))
    try:
        time.sleep(1.0)
        idle = sample_process(server, 0.0)
        publishers: list[Publisher] = []
        for kind, count in kinds.items():
            for _ in range(count):
                number = len(publishers)
                stream = server.create_livestream(
                    name=f"soak-{kind}-{number}", reconnect_window_s=15,
                    record=number % record_every == 0,
                )  # fmt: skip
                publishers.append(Publisher(kind, stream))
        for publisher in publishers:
            publisher.process = _publish(processes, server, publisher, cert, seconds + 60)
        media = [server.wait_playable(p.stream["playback_id"], timeout=60) for p in publishers]
        load_started = time.monotonic()
        swarm = _Swarm(server, media, viewers, until=load_started + seconds)
        swarm.start()
        samples: list[Sample] = []
        rounds = restarted = 0
        turn = 0
        next_sample = load_started
        next_restart = load_started + restart_every
        while (now := time.monotonic()) < load_started + seconds:
            if now >= next_sample:
                samples.append(sample_process(server, now - load_started))
                next_sample += sample_every
            if now >= next_restart:
                rounds += 1
                batch = [publishers[(turn + n) % len(publishers)] for n in range(restart_count)]
                turn += restart_count
                down = time.monotonic()
                for publisher in batch:
                    assert publisher.process is not None
                    publisher.process.kill()  # a dropped connection, no unpublish
                    publisher.process.wait(10)
                # Back after the server's stale-publisher time (2 s), as a publisher
                # whose network came back: SRT and WHIP have no close to notice.
                time.sleep(RECONNECT_AFTER_S)
                for publisher in batch:
                    publisher.process = _publish(processes, server, publisher, cert, seconds + 60)
                    publisher.restarts.append((down, time.monotonic()))
                restarted += len(batch)
                next_restart += restart_every
            time.sleep(0.2)
        load_seconds = time.monotonic() - load_started
        swarm.join(60)
        for publisher in publishers:
            assert publisher.process is not None
            assert publisher.process.poll() is None, (publisher.kind, publisher.process.args)
            publisher.process.terminate()
            publisher.process.wait(15)
        for publisher in publishers:
            wait_for(lambda p=publisher: _ended(server, p.stream["id"]), 60,
                     message=f"{publisher.kind} session end")  # fmt: skip
        _wait_recordings(server)
        after = _settled(server, idle)
        result = LoadSoakResult(
            seconds=round(load_seconds),
            publishers=Counter(kinds),
            viewers=viewers,
            rounds=rounds,
            restarted=restarted,
            idle=idle,
            samples=samples,
            after=after,
            gaps=swarm.gaps(publishers),
            viewer_requests=sum(r.requests for r in swarm.results),
            results=swarm.results,
            sessions=[len(_history(server, p.stream["id"])) for p in publishers],
        )
        log(f"load soak: {result.seconds} s, {dict(result.publishers)}, {viewers} viewers")
        return result
    finally:
        server.stop(signal.SIGTERM, timeout=300)


def _history(server: LiveProcess, livestream_id: str) -> list[dict]:
    return server.api("GET", f"/v1/livestreams/{livestream_id}/history")[1]["data"]


def _ended(server: LiveProcess, livestream_id: str) -> bool:
    history = _history(server, livestream_id)
    return bool(history) and all(s["ended_at"] for s in history)


def _wait_recordings(server: LiveProcess) -> None:
    def finished() -> bool:
        assets = server.api("GET", "/v1/assets?page_size=100")[1]["data"]
        failed = [a for a in assets if a["status"] == "failed"]
        assert not failed, failed
        return all(a["status"] == "ready" for a in assets)

    wait_for(finished, 300, interval=1, message="every recording ready")


def _settled(server: LiveProcess, idle: Sample, timeout: float = 60) -> Sample:
    """The process once it is quiet again: its fds and tasks back near the idle
    figures (playlists of ended streams linger, so give it time), or the last
    sample when they never get there."""
    deadline = time.monotonic() + timeout
    while True:
        sample = sample_process(server, -1)
        quiet = sample.fds <= idle.fds + 5 and sample.tasks <= idle.tasks + 5
        if quiet or time.monotonic() > deadline:
            return sample
        time.sleep(1)


class _Swarm(threading.Thread):
    """hls.js-like viewers (llhls_viewers.py) spread over the streams, on an event
    loop of their own."""

    def __init__(self, server: LiveProcess, media: list[str], viewers: int, until: float):
        super().__init__(daemon=True)
        self.port = server.ports["HTTP"]
        # Without the player id query: the viewers add a query of their own.
        self.paths = [url.split(str(self.port), 1)[1].split("?", 1)[0] for url in media]
        self.viewers = viewers
        self.until = until
        self.results = [SwarmResult(0, defaultdict(list), 0.0) for _ in self.paths]

    def run(self) -> None:
        async def crowd() -> None:
            jobs = []
            for number in range(self.viewers):
                which = number % len(self.paths)
                self.results[which].viewers += 1
                jobs.append(_viewer("127.0.0.1", self.port, self.paths[which], self.until,
                                    self.results[which]))  # fmt: skip
            await asyncio.gather(*jobs, return_exceptions=True)

        asyncio.run(crowd())

    def gaps(self, publishers: list[Publisher]) -> list[float]:
        """Per stream, seconds between consecutive parts reaching their first
        viewer, leaving out gaps that overlap a restart of its publisher (and the
        reconnect that follows, up to 10 s)."""
        gaps: list[float] = []
        for result, publisher in zip(self.results, publishers, strict=True):
            firsts = sorted(min(times) for times in result.arrivals.values() if times)
            for before, after in itertools.pairwise(firsts):
                if any(down - 1 <= after and before <= up + 10 for down, up in publisher.restarts):
                    continue
                gaps.append(after - before)
        return gaps
