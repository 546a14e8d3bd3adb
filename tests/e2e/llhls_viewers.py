"""Many LL-HLS viewers in one process, each behaving like hls.js in low-latency mode.

A viewer loads the media playlist (given one, or the first one a multivariant
playlist names, with the player id the server put in its path), then loops: a
blocking reload for the part after the newest one it knows
(`?_HLS_msn=M&_HLS_part=P`), then the part(s) that reload names. That is what makes
a crowd of real players ask for the same URLs at the same moments, which is what a
caching edge has to coalesce.

The HTTP client is a minimal HTTP/1.1 one on asyncio streams (one keep-alive
connection per viewer, one request at a time): with hundreds of viewers in one
process, a full client's per-request overhead would be what gets measured. Each
part's arrival time is taken when its last byte is read; all viewers share one
clock, so `spread` says how long after the first viewer every other one got it.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field

_PART_URI = re.compile(r'#EXT-X-PART:[^\n]*URI="(part-(\d+)\.m4s[^"]*)"')
_MEDIA_SEQUENCE = re.compile(r"#EXT-X-MEDIA-SEQUENCE:(\d+)")
_HLS_REQUESTS = re.compile(r'^live_hls_requests_total\{kind="(\w+)"\} (\S+)', re.M)
_PARTS_MADE = re.compile(r"^live_hls_parts_total (\S+)", re.M)


def origin_counts(metrics: str) -> dict[str, float]:
    """From a server's /metrics text: the HLS answers it sent by kind (playlist,
    part, ...) and the parts it made (`parts_made`), to price viewers per part."""
    counts = {kind: float(value) for kind, value in _HLS_REQUESTS.findall(metrics)}
    counts["parts_made"] = float(_PARTS_MADE.search(metrics)[1])  # type: ignore[index]
    return counts


@dataclass(slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; GETs go one after another."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> Answer:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept-Encoding: gzip\r\n\r\n".encode()
        )
        head = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head[:-4].split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self._reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        else:
            body = await self._reader.read()
            self.close()
        if headers.get("content-encoding") == "gzip":
            body = zlib.decompress(body, 31)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(int(status_line.split()[1]), headers, body)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        chunks = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@dataclass(slots=True)
class PlaylistView:
    """What a player needs from a media playlist: the newest parts and what to ask next."""

    parts: list[tuple[int, str]]  # (part index, URI) in order
    next_msn: int
    next_part: int


def read_media_playlist(text: str) -> PlaylistView:
    """The parts listed, and the (MSN, part) of the first part not in the playlist.

    The parts after the last complete segment belong to the open segment, whose MSN
    is the media sequence plus the segments listed; none yet means its part 0 is next.
    """
    sequence = int(_MEDIA_SEQUENCE.search(text).group(1))  # type: ignore[union-attr]
    segments = text.count("#EXTINF:")
    after_last_segment = text.rsplit("#EXTINF:", 1)[-1]
    open_parts = after_last_segment.count("#EXT-X-PART:")
    parts = [(int(index), uri) for uri, index in _PART_URI.findall(text)]
    return PlaylistView(parts, sequence + segments, open_parts)


@dataclass
class SwarmResult:
    viewers: int
    arrivals: dict[int, list[float]]  # part index -> when each viewer had it
    measure_from: float  # parts first seen before this (while viewers joined) don't count
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    part_bytes: int = 0  # of every part every viewer got

    def spreads(self) -> list[float]:
        """For every part most viewers got: each viewer's delay behind the first."""
        delays: list[float] = []
        for times in self.measured():
            first = min(times)
            delays.extend(t - first for t in times)
        return delays

    def measured(self, min_share: float = 0.9) -> list[list[float]]:
        """Arrival times of the parts made after every viewer had joined."""
        return [
            times
            for times in self.arrivals.values()
            if min(times) >= self.measure_from and len(times) >= min_share * self.viewers
        ]

    def summary(self) -> dict[str, float]:
        delays = sorted(self.spreads())
        if not delays:
            return {"parts": 0}

        def at(q: float) -> float:
            return delays[min(len(delays) - 1, int(q * len(delays)))] * 1000

        return {
            "parts": len(self.measured()),
            "p50_ms": at(0.50),
            "p99_ms": at(0.99),
            "max_ms": delays[-1] * 1000,
            "mean_ms": statistics.fmean(delays) * 1000,
        }


async def _viewer(
    host: str, port: int, playlist_path: str, until: float, result: SwarmResult
) -> None:
    connection = HttpConnection(host, port)
    await asyncio.sleep(random.random())  # viewers arrive over a second, not in one tick
    try:
        answer = await connection.get(playlist_path)
        result.requests += 1
        if answer.status == 200 and b"#EXT-X-STREAM-INF" in answer.body:
            variant = next(
                line for line in answer.body.decode().splitlines() if line and line[0] != "#"
            )
            playlist_path = f"{playlist_path.rsplit('/', 1)[0]}/{variant}"
            answer = await connection.get(playlist_path)
            result.requests += 1
        if answer.status != 200:
            result.errors.append(f"playlist {answer.status}")
            return
        base = playlist_path.rsplit("/", 1)[0]
        view = read_media_playlist(answer.body.decode())
        # Like hls.js, start a few parts behind the live edge (PART-HOLD-BACK).
        have = view.parts[-3][0] if len(view.parts) >= 3 else -1
        while time.monotonic() < until:
            target = f"{playlist_path}?_HLS_msn={view.next_msn}&_HLS_part={view.next_part}"
            answer = await connection.get(target)
            result.requests += 1
            if answer.status != 200:
                result.errors.append(f"blocking reload {answer.status}")
                await asyncio.sleep(0.2)
                continue
            view = read_media_playlist(answer.body.decode())
            for index, uri in view.parts:
                if index <= have:
                    continue
                part = await connection.get(f"{base}/{uri}")
                result.requests += 1
                if part.status != 200 or not part.body:
                    result.errors.append(f"part {index}: {part.status}")
                    continue
                result.arrivals[index].append(time.monotonic())
                result.part_bytes += len(part.body)
                have = index
    finally:
        connection.close()


async def watch(
    host: str, port: int, playlist_path: str, *, viewers: int, seconds: float
) -> SwarmResult:
    """`viewers` players on `http://host:port{playlist_path}` (a media playlist, or a
    multivariant one) for `seconds` after the last one joined."""
    start = time.monotonic()
    # Viewers join within the first second, and settle on the live edge in the next.
    result = SwarmResult(viewers, defaultdict(list), measure_from=start + 2.0)
    until = start + 1.0 + seconds
    await asyncio.gather(
        *(_viewer(host, port, playlist_path, until, result) for _ in range(viewers))
    )
    return result


def run_watch(
    host: str, port: int, playlist_path: str, *, viewers: int, seconds: float
) -> SwarmResult:
    """`watch` on its own event loop (uvloop, as the server uses, when installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of the server
        return asyncio.run(watch(host, port, playlist_path, viewers=viewers, seconds=seconds))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(watch(host, port, playlist_path, viewers=viewers, seconds=seconds))
