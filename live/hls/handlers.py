"""aiohttp handlers for `/live/...`: playlists with blocking reload, parts, segments, inits.

Waiting is event-driven: held requests share one future per awaited thing (`Gate`),
which `HlsWindow.add_part` resolves, so every one of them answers within the same loop
iteration. A media playlist does not depend on who asks (a player's id is a segment of
its path, `paths.py`), so one rendering and one gzip per (window version, skip,
rendition reports, own query) serve every viewer.

The hot path is kept short: the target is read from the raw path (no router, no URL
decoding) and response heads are built once per kind of answer. `answer` decides what
a request gets as plain data (`Answer`); two servers send it: aiohttp for the routes
(`routed`), and the front of the port (`front.py`, through `start` and `finished`)
for requests of a stream live here, before aiohttp and the application's
middlewares, which exist for the API.

A blocked request whose client went away is cancelled by its server (aiohttp when the
runner has `handler_cancellation=True`, the front always); without that, a coarse
liveness check releases the waiter within `DISCONNECT_POLL_S` (and the hold timeout
bounds it in any case).
"""

from __future__ import annotations

import enum
import logging
import weakref
import zlib
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from live.hls.directives import (
    DirectiveError,
    Directives,
    check_blocking,
    parse_directives,
    query_params,
    strip_hls_params,
)
from live.hls.holds import Holds, Outcome
from live.hls.paths import LiveTarget, parse_live_target
from live.hls.playlist import RenditionReport, render_media_playlist, render_multivariant
from live.hls.request import HlsRequest
from live.hls.responses import (
    CORS_HEADERS,
    IMMUTABLE,
    NO_CACHE,
    PER_VIEWER,
    PLAYLIST_TYPE,
    SHARED_BRIEFLY,
    Answer,
    ResponseHead,
    accepts_gzip,
    blocking_playlist_max_age,
    error_answer,
    playlist_error_max_age,
    playlist_max_age,
)
from live.hls.stream import HlsRegistry, HlsStream, Rendition
from live.hls.window import Gate, HlsWindow
from live.limits import LimitHits

log = logging.getLogger(__name__)

RequestHook = Callable[[HlsRequest, LiveTarget, int], None]
PlayerHook = Callable[[HlsRequest, str], "str | None"]

HOLD_TARGET_DURATIONS = 3.0  # §6.2.5.2: a request held longer than 3 x TD gets 503
DISCONNECT_POLL_S = 1.0
MAX_QUERY_RENDERINGS = 64  # distinct own queries cached per playlist version


class _Hold(enum.Enum):
    READY = "ready"
    TIMEOUT = "timeout"
    GONE = "gone"
    REFUSED = "refused"  # the client address has too many requests held already


_OUTCOMES = {Outcome.READY: _Hold.READY, Outcome.TIMEOUT: _Hold.TIMEOUT, Outcome.GONE: _Hold.GONE}


# None to serve the request, or why a new viewer is turned away (503).
AdmitHook = Callable[[HlsRequest, LiveTarget], "str | None"]


@dataclass(frozen=True, slots=True)
class HlsLimits:
    """What one client may hold, and who a client is (its address; behind a proxy
    of our own, the address the proxy saw). One client address may have
    `max_blocking_per_address` requests held at once: a player needs one or two
    (playlist and preload hint, per rendition), so more is a client holding server
    memory for nothing, and gets 429."""

    max_blocking_per_address: int | None = None
    client_address: Callable[[HlsRequest], str] = lambda request: request.remote or ""
    hits: LimitHits = field(default_factory=LimitHits)


def gzip_bytes(data: bytes) -> bytes:
    """Gzip `data` without a timestamp; an 8 KiB window is plenty for a playlist."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 16 + 13, 5)
    return comp.compress(data) + comp.flush()


@dataclass(slots=True)
class _Rendered:
    """A playlist answer shared by every viewer of one version; its gzip is made when
    first asked for."""

    text: bytes
    gzipped: bytes | None = None

    def gzip(self) -> bytes:
        if self.gzipped is None:
            self.gzipped = gzip_bytes(self.text)
        return self.gzipped


class _RenderCache:
    """Renderings of one window's current version; older versions are dropped whole."""

    __slots__ = ("entries", "version")

    def __init__(self) -> None:
        self.version = -1
        self.entries: dict[tuple, _Rendered] = {}

    def clear(self, version: int) -> None:
        self.version = version
        self.entries.clear()


class _Heads:
    """Response heads of 200 answers, built once per (content type, Cache-Control,
    gzip) and shared by every response of that kind."""

    def __init__(self) -> None:
        self._built: dict[tuple[str, str, bool | None], ResponseHead] = {}

    def get(self, content_type: str, cache_control: str, gzip: bool | None) -> ResponseHead:
        """`gzip`: None for media (no Vary), else whether the body is gzipped."""
        key = (content_type, cache_control, gzip)
        head = self._built.get(key)
        if head is None:
            headers = dict(CORS_HEADERS)
            headers["Content-Type"] = content_type
            headers["Cache-Control"] = cache_control
            if gzip is not None:
                headers["Vary"] = "Accept-Encoding"
                if gzip:
                    headers["Content-Encoding"] = "gzip"
            head = self._built[key] = ResponseHead.of(headers.items())
        return head


def setup_hls_routes(
    app: web.Application,
    registry: HlsRegistry,
    *,
    on_request: RequestHook | None = None,
    start_player: PlayerHook | None = None,
    admit: AdmitHook | None = None,
    limits: HlsLimits | None = None,
) -> HlsHandlers:
    """Add the `/live/...` routes; the handlers returned can also serve the front of the
    port (`front.FrontRunner`), which answers `/live` before the application.

    `on_request(request, target, bytes_sent)` runs after each successful response; it
    must be cheap. `start_player(request, playback_id)` runs for each multivariant
    playlist and gives the player id to put in its media playlist URIs (or None), which
    lets the stats code tell players apart. `admit(request, target)` runs before any
    request of a live stream is served and may turn a new viewer away (503).
    """
    h = HlsHandlers(registry, on_request, start_player, admit, limits or HlsLimits())
    r = app.router
    r.add_route("OPTIONS", "/live/{tail:.*}", h.preflight)
    r.add_get("/live/{tail:.*}", h.routed)
    r.add_route("*", "/live/{tail:.*}", h.fallback)
    return h


class HlsHandlers:
    """The `/live` answers, reached through the router (`routed`) or before it (`start`,
    by the front of the port); both parse the raw target and end in `answer`."""

    def __init__(
        self,
        registry: HlsRegistry,
        on_request: RequestHook | None,
        start_player: PlayerHook | None,
        admit: AdmitHook | None = None,
        limits: HlsLimits | None = None,
    ) -> None:
        self._registry = registry
        self._on_request = on_request
        self._start_player = start_player
        self._admit = admit
        self._limits = limits or HlsLimits()
        self._held: Counter[str] = Counter()  # requests held, by client address
        self._holds = Holds(disconnect_poll_s=DISCONNECT_POLL_S)
        # Only a player hook makes a multivariant playlist differ between viewers.
        self._mv_cache = PER_VIEWER if start_player else SHARED_BRIEFLY
        self._heads = _Heads()
        self._caches: weakref.WeakKeyDictionary[HlsWindow, _RenderCache] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------ entry points

    def start(self, request: HlsRequest) -> Coroutine[Any, Any, Answer] | None:
        """The answer to a GET or HEAD for a stream live on this node, still to be run;
        None for anything else (the API, a stream another node runs, a lingering
        ended one), which the application is to answer."""
        raw_target = request.raw_path
        if not raw_target.startswith("/live/"):
            return None
        target = parse_live_target(raw_target)
        if target is None:
            return None
        stream = self._registry.get(target.playback_id)
        if stream is None or stream.ended:
            return None
        return self.answer(request, target, stream)

    def finished(self, request: HlsRequest, answer: Answer, sent: int) -> None:
        """`answer` went out with `sent` body bytes: a successful one is reported to the
        request hook."""
        target = answer.target
        if target is None or self._on_request is None:
            return
        try:
            self._on_request(request, target, sent)
        except Exception:
            log.exception("HLS on_request hook failed")

    async def routed(self, request: web.Request) -> web.StreamResponse:
        """The `/live` GET route, for requests that came through the router."""
        target = parse_live_target(request.raw_path)
        if target is None:
            answer = _not_found("Not found")
        elif (stream := self._registry.get(target.playback_id)) is None:
            answer = _not_found("No live stream with this playback id")
        else:
            answer = await self.answer(request, target, stream)
        return await self._send(request, answer)

    async def answer(self, request: HlsRequest, target: LiveTarget, stream: HlsStream) -> Answer:
        """What `request` gets; it waits only while a blocking request is held."""
        if self._admit is not None:
            refusal = self._admit(request, target)
            if refusal is not None:  # the stream or the node is at its limit of viewers
                return error_answer(503, "unavailable", refusal, headers={"Retry-After": "10"})
        kind = target.kind
        if kind == "multivariant":
            return await self._multivariant(request, target, stream)
        rendition = stream.rendition(target.rendition or "")
        if rendition is None:
            return _not_found("No such rendition")
        if kind == "part":
            return await self._part(request, target, rendition)
        if kind == "playlist":
            return await self._media_playlist(request, target, stream, rendition)
        return await self._stored(request, target, rendition)

    # ------------------------------------------------------------------ playlists

    async def _multivariant(
        self, request: HlsRequest, target: LiveTarget, stream: HlsStream
    ) -> Answer:
        renditions = list(stream.renditions)
        if not renditions:
            return error_answer(
                503,
                "stream_starting",
                "The stream has no renditions yet",
                headers={"Retry-After": "1"},
            )
        player_id = None
        if self._start_player is not None and request.method == "GET":  # HEAD: a probe
            player_id = self._start_player(request, stream.playback_id)
        query = strip_hls_params(target.query)
        body = render_multivariant(renditions, player_id=player_id, query=query).encode()
        return self._playlist(request, target, _Rendered(body), self._mv_cache)

    async def _media_playlist(
        self,
        request: HlsRequest,
        target: LiveTarget,
        stream: HlsStream,
        rendition: Rendition,
    ) -> Answer:
        window = rendition.window
        td = window.target_duration
        low = stream.latency_mode == "low"

        directives = Directives()
        raw_query = target.query
        # ("HLS_" also catches a percent-encoded leading underscore.)
        if low and not window.ended and "HLS_" in raw_query:  # ENDLIST: all ignored
            try:
                directives = parse_directives(query_params(raw_query))
                check_blocking(
                    directives,
                    last_msn=window.last_msn,
                    last_part=window.last_part,
                    part_target=window.part_target,
                )
            except DirectiveError as exc:
                return error_answer(
                    400,
                    "invalid_parameter_value",
                    exc.message,
                    cache_control=playlist_error_max_age(td),
                    param=exc.param,
                )

        outcome = _Hold.READY
        if directives.msn is not None:
            msn, part = directives.msn, directives.part
            outcome = await self._hold(
                request,
                window,
                lambda: window.is_satisfied(msn, part),
                lambda: window.enter_playlist_wait(msn, part),
            )
        # First-playlist wait: nothing to show until the first part (or, without parts,
        # the first whole segment) exists.
        first = (window.first_msn, 0 if low else None)
        if outcome is _Hold.READY:
            outcome = await self._hold(
                request,
                window,
                lambda: window.is_satisfied(*first),
                lambda: window.enter_playlist_wait(*first),
            )
        ready = window.is_satisfied(*first)
        if outcome is _Hold.REFUSED:
            return _too_many_held()
        if outcome is _Hold.GONE:
            return error_answer(503, "client_gone", "The client went away")
        if not ready and window.ended:
            return _not_found("The stream ended without media")
        if outcome is _Hold.TIMEOUT or not ready:
            return error_answer(
                503,
                "playlist_unavailable",
                "The requested update did not arrive in time",
                cache_control=playlist_error_max_age(td),
                headers={"Retry-After": str(max(1, td))},
            )

        blocked = directives.blocking and not window.ended
        rendered = self._render(raw_query, stream, rendition, low=low, skip=directives.skip)
        cache = blocking_playlist_max_age(td) if blocked else playlist_max_age(td)
        return self._playlist(request, target, rendered, cache)

    def _render(
        self,
        raw_query: str,
        stream: HlsStream,
        rendition: Rendition,
        *,
        low: bool,
        skip: bool,
    ) -> _Rendered:
        """The playlist of this version for every viewer (and every viewer that brings
        the same query of its own), rendered on first request."""
        window = rendition.window
        snap = window.snapshot()
        query = strip_hls_params(raw_query) if raw_query else ""
        reports: tuple[RenditionReport, ...] = ()
        if low and len(stream.renditions) > 1:
            reports = tuple(
                RenditionReport(r.name, r.window.last_msn, r.window.last_part)
                for r in stream.renditions
                if r is not rendition and r.window.has_parts
            )
        cache = self._caches.get(window)
        if cache is None:
            cache = self._caches[window] = _RenderCache()
        if cache.version != snap.version:
            cache.clear(snap.version)
        key = (low, skip, reports, query)
        rendered = cache.entries.get(key)
        if rendered is None:
            text = render_media_playlist(
                snap, low_latency=low, query=query, skip=skip, reports=reports
            )
            rendered = _Rendered(text.encode())
            if len(cache.entries) < MAX_QUERY_RENDERINGS:
                cache.entries[key] = rendered
        return rendered

    # ------------------------------------------------------------------ media files

    async def _stored(
        self, request: HlsRequest, target: LiveTarget, rendition: Rendition
    ) -> Answer:
        """An init section or segment: in the window already, or 404 (never held)."""
        window = rendition.window
        assert target.index is not None
        if target.kind == "init":
            init = window.init_data(target.index)
            if init is None:
                return _not_found("No such init section")
            return self._media(target, rendition, init)
        chunks = window.segment_chunks(target.index)
        if chunks is None:
            return _not_found("No such segment")
        return self._media(target, rendition, chunks)

    async def _part(self, request: HlsRequest, target: LiveTarget, rendition: Rendition) -> Answer:
        """A part; the preload-hinted one is held until complete, then sent whole."""
        window = rendition.window
        index = target.index
        assert index is not None
        data = window.part_data(index)
        if data is None and window.is_hinted(index):
            outcome = await self._hold(
                request,
                window,
                lambda: window.part_data(index) is not None or window.ended,
                lambda: window.enter_part_wait(index),
            )
            if outcome is _Hold.REFUSED:
                return _too_many_held()
            if outcome is _Hold.GONE:
                return error_answer(503, "client_gone", "The client went away")
            data = window.part_data(index)
            if data is None and outcome is _Hold.TIMEOUT:
                return error_answer(
                    503,
                    "part_unavailable",
                    "The hinted part did not arrive in time",
                    headers={"Retry-After": "1"},
                )
        if data is None:
            return _not_found("No such part")
        return self._media(target, rendition, data)

    async def preflight(self, request: web.Request) -> web.StreamResponse:
        headers = {
            **CORS_HEADERS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get(
                "Access-Control-Request-Headers", "*"
            ),
            "Access-Control-Max-Age": "86400",
        }
        return web.Response(status=204, headers=headers)

    async def fallback(self, request: web.Request) -> web.StreamResponse:
        """Anything else under /live: still a JSON error with CORS headers."""
        if request.method in ("GET", "HEAD"):
            return await self._send(request, _not_found("Not found"))
        answer = error_answer(
            405,
            "method_not_allowed",
            "Playback paths are read-only",
            headers={"Allow": "GET, HEAD, OPTIONS"},
        )
        return await self._send(request, answer)

    # ------------------------------------------------------------------ plumbing

    async def _hold(
        self,
        request: HlsRequest,
        window: HlsWindow,
        ready: Callable[[], bool],
        enter: Callable[[], Gate | None],
    ) -> _Hold:
        """Wait for `ready()` up to 3 x TD, giving up early if the client disconnects."""
        if ready() or window.ended:
            return _Hold.READY
        limit = self._limits.max_blocking_per_address
        address = self._limits.client_address(request) if limit is not None else ""
        if limit is not None:
            if self._held[address] >= limit:
                self._limits.hits.hit(
                    "hls_max_blocking_per_address",
                    f"blocking playlist request from {address} refused: "
                    f"{self._held[address]} already waiting",
                )
                return _Hold.REFUSED
            self._held[address] += 1
        try:
            return await self._wait(request, window, enter)
        finally:
            if limit is not None:
                self._held[address] -= 1
                if not self._held[address]:
                    del self._held[address]

    async def _wait(
        self, request: HlsRequest, window: HlsWindow, enter: Callable[[], Gate | None]
    ) -> _Hold:
        gate = enter()
        if gate is None:
            return _Hold.READY
        try:
            outcome = await self._holds.wait(
                gate.future,
                HOLD_TARGET_DURATIONS * window.target_duration,
                lambda: request.transport is not None and not request.transport.is_closing(),
            )
        finally:
            window.leave(gate)
        return _OUTCOMES[outcome]

    def _playlist(
        self, request: HlsRequest, target: LiveTarget, rendered: _Rendered, cache_control: str
    ) -> Answer:
        gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
        body = rendered.gzip() if gzip else rendered.text
        return Answer(200, self._heads.get(PLAYLIST_TYPE, cache_control, gzip), body, target)

    def _media(
        self, target: LiveTarget, rendition: Rendition, body: bytes | tuple[bytes, ...]
    ) -> Answer:
        return Answer(200, self._heads.get(_media_type(rendition), IMMUTABLE, None), body, target)

    async def _send(self, request: web.BaseRequest, answer: Answer) -> web.StreamResponse:
        """Send `answer` with aiohttp, then report it. A segment goes out as its parts
        one after another (no joined copy)."""
        body = answer.body
        head = answer.head.headers
        resp: web.StreamResponse
        if isinstance(body, bytes):
            resp = web.Response(status=answer.status, body=body, headers=head)
            size = len(body)
        else:
            resp = web.StreamResponse(status=answer.status, headers=head)
            resp.content_length = size = sum(map(len, body))
        try:
            await resp.prepare(request)
            if not isinstance(body, bytes) and request.method != "HEAD":
                for chunk in body:
                    await resp.write(chunk)
            await resp.write_eof()
        except ConnectionResetError:
            return resp
        self.finished(request, answer, 0 if request.method == "HEAD" else size)
        return resp


def _media_type(rendition: Rendition) -> str:
    return "audio/mp4" if rendition.audio_only else "video/mp4"


def _too_many_held() -> Answer:
    return error_answer(
        429,
        "rate_limited",
        "Too many blocking playlist requests from this address are waiting already",
        headers={"Retry-After": "1"},
    )


def _not_found(message: str) -> Answer:
    # Short-lived on purpose: a missing part or stream may exist a moment later.
    return error_answer(404, "not_found", message, cache_control=NO_CACHE)
