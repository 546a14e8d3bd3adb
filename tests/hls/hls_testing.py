"""Shared helpers for the HLS tests: a controllable clock, synthetic parts, a server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import m3u8
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from live.hls import HlsRegistry, HlsStream, HlsWindow, Rendition, setup_hls_routes
from live.hls.front import FrontRunner
from live.hls.handlers import HlsHandlers

PB = "pb_test"


class FakeClock:
    """Wall clock for PROGRAM-DATE-TIME that only moves when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_window(
    *, td: int = 1, part_target: float = 0.2, window_segments: int = 7, clock: Any = None
) -> HlsWindow:
    window = HlsWindow(
        target_duration=td,
        part_target=part_target,
        window_segments=window_segments,
        clock=clock or FakeClock(),
    )
    window.set_init(b"ftyp-moov-0")
    return window


def part_bytes(n: int) -> bytes:
    return f"moof+mdat #{n};".encode()


def add_parts(window: HlsWindow, count: int, duration: float = 0.2) -> None:
    """Append `count` parts to the open segment; the first part of a segment is an IDR."""
    for _ in range(count):
        snap = window.snapshot()
        open_seg = snap.segments[-1] if snap.segments and not snap.segments[-1].closed else None
        independent = open_seg is None
        window.add_part(part_bytes(window.next_part), duration, independent)


def feed(
    window: HlsWindow,
    segments: int,
    parts_per_segment: int = 5,
    duration: float = 0.2,
    clock: FakeClock | None = None,
) -> None:
    """Append whole segments the way the packager does: start, then its parts."""
    for _ in range(segments):
        window.start_segment()
        for i in range(parts_per_segment):
            window.add_part(part_bytes(window.next_part), duration, i == 0)
            if clock is not None:
                clock.advance(duration)


def parse(text: str) -> m3u8.M3U8:
    return m3u8.loads(text)


def make_stream(
    window: HlsWindow | None = None,
    *,
    latency_mode: str = "low",
    extra: tuple[str, ...] = (),
) -> HlsStream:
    renditions = [
        Rendition(
            name="source",
            window=window or make_window(),
            bandwidth=3_000_000,
            average_bandwidth=2_500_000,
            codecs="avc1.64001f,mp4a.40.2",
            resolution=(1280, 720),
            frame_rate=30.0,
        )
    ]
    for name in extra:
        renditions.append(
            Rendition(
                name=name,
                window=make_window(),
                bandwidth=1_000_000,
                average_bandwidth=None,
                codecs="avc1.4d401e,mp4a.40.2",
                resolution=(854, 480),
                frame_rate=29.97,
            )
        )
    return HlsStream(playback_id=PB, renditions=renditions, latency_mode=latency_mode)  # type: ignore[arg-type]


class FrontTestServer(TestServer):
    """A test server whose front answers `/live` before the router, as `live serve` does."""

    def __init__(self, app: web.Application, handlers: HlsHandlers) -> None:
        super().__init__(app)
        self._handlers = handlers

    async def _make_runner(self, **kwargs: Any) -> FrontRunner:
        return FrontRunner(self.app, service=self._handlers, **kwargs)


# Whether `serve` answers through the front of the port (True) or the router; the
# handler tests run both ways.
SERVE_FRONT = {"on": False}


@contextlib.asynccontextmanager
async def serve(registry: HlsRegistry, **kwargs: Any) -> AsyncIterator[TestClient]:
    app = web.Application()
    handlers = setup_hls_routes(app, registry, **kwargs)
    server = FrontTestServer(app, handlers) if SERVE_FRONT["on"] else TestServer(app)
    async with TestClient(server) as client:
        yield client
