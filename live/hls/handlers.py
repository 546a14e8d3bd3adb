"""aiohttp handlers for `/live/...`: playlists with blocking reload, parts, segments, inits.

Waiting is event-driven: a held request sleeps on a future that `HlsWindow.add_part`
resolves, so the answer leaves within the same loop iteration. Rendered playlists are
cached per (window version, skip, rendition reports) so that the many viewers
released by one part share one rendering and one gzip; a player whose id is in the
query gets its own copy, spliced with its gzip from that version's one rendering
(`spliced_gzip`).

A blocked request whose client went away is cancelled by aiohttp when the runner has
`handler_cancellation=True`; without it, a coarse liveness check releases the waiter
within `DISCONNECT_POLL_S` (and the hold timeout bounds it in any case).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from live.hls.directives import (
    DirectiveError,
    Directives,
    check_blocking,
    parse_directives,
    strip_hls_params,
)
from live.hls.playlist import RenditionReport, render_media_playlist, render_multivariant
from live.hls.responses import (
    CORS_HEADERS,
    IMMUTABLE,
    NO_CACHE,
    PER_VIEWER,
    PLAYLIST_TYPE,
    SHARED_BRIEFLY,
    accepts_gzip,
    blocking_playlist_max_age,
    error_response,
    playlist_error_max_age,
    playlist_max_age,
)
from live.hls.snapshot import WindowSnapshot
from live.hls.spliced_gzip import MAX_INSERT, SplicedGzip, gzip_bytes
from live.hls.stream import HlsRegistry, HlsStream, Rendition
from live.hls.window import HlsWindow

log = logging.getLogger(__name__)

RequestHook = Callable[[web.Request, str, str, int], None]
QueryHook = Callable[[web.Request], str]

HOLD_TARGET_DURATIONS = 3.0  # §6.2.5.2: a request held longer than 3 x TD gets 503
DISCONNECT_POLL_S = 1.0
_MAX_INDEX_DIGITS = 18
# Stands where a player's query goes in a cached playlist template; a NUL never
# appears in a rendered playlist or in a URL query.
_QUERY_MARK = "\x00"


class _Hold(enum.Enum):
    READY = "ready"
    TIMEOUT = "timeout"
    GONE = "gone"


@dataclass(slots=True)
class _Rendered:
    """A playlist answer; its text and its gzip are each made when first needed.

    A player's own copy comes from `splicer` with its `insert` (its query): most
    clients take gzip, so its text is never built at all.
    """

    text: bytes | None = None
    gzipped: bytes | None = None
    splicer: SplicedGzip | None = None
    insert: bytes = b""

    def body(self) -> bytes:
        if self.text is None:
            assert self.splicer is not None
            self.text = self.splicer.text(self.insert)
        return self.text

    def gzip(self) -> bytes:
        if self.gzipped is None:
            if self.splicer is not None:
                self.gzipped = self.splicer.gzip(self.insert)
            else:
                self.gzipped = gzip_bytes(self.body())
        return self.gzipped


class _RenderCache:
    """Renderings of one window's current version; older versions are dropped whole.

    `templates` holds, per (low, skip, reports), the rendering cut where a player's
    query goes; `splicers` the gzip of each template per query length.
    """

    __slots__ = ("entries", "splicers", "templates", "version")

    def __init__(self) -> None:
        self.version = -1
        self.entries: dict[tuple, _Rendered] = {}
        self.templates: dict[tuple, list[bytes]] = {}
        self.splicers: dict[tuple, SplicedGzip] = {}

    def clear(self, version: int) -> None:
        self.version = version
        self.entries.clear()
        self.templates.clear()
        self.splicers.clear()


def setup_hls_routes(
    app: web.Application,
    registry: HlsRegistry,
    *,
    on_request: RequestHook | None = None,
    query_for_multivariant: QueryHook | None = None,
) -> None:
    """Add the `/live/...` routes.

    `on_request(request, playback_id, kind, bytes_sent)` runs after each successful
    response (kind: multivariant, playlist, part, segment, init); it must be cheap.
    `query_for_multivariant(request)` gives the query to put on the media playlist URIs
    of a multivariant (default: the request's own query without `_HLS_*`), which lets the
    stats code add a player-session id.
    """
    h = _HlsHandlers(registry, on_request, query_for_multivariant)
    r = app.router
    r.add_get("/live/{playback_id}/index.m3u8", h.multivariant)
    r.add_get("/live/{playback_id}/{rendition}/index.m3u8", h.media_playlist)
    # [0-9], not \d: a look-alike digit (a fullwidth one, U+FF11) must not name a part.
    r.add_get(r"/live/{playback_id}/{rendition}/init-{n:[0-9]+}.mp4", h.init)
    r.add_get(r"/live/{playback_id}/{rendition}/part-{n:[0-9]+}.m4s", h.part)
    r.add_get(r"/live/{playback_id}/{rendition}/seg-{n:[0-9]+}.m4s", h.segment)
    r.add_route("OPTIONS", "/live/{tail:.*}", h.preflight)
    r.add_route("*", "/live/{tail:.*}", h.fallback)


def _default_query(request: web.Request) -> str:
    return strip_hls_params(request.rel_url.raw_query_string)


class _HlsHandlers:
    def __init__(
        self,
        registry: HlsRegistry,
        on_request: RequestHook | None,
        query_for_multivariant: QueryHook | None,
    ) -> None:
        self._registry = registry
        self._on_request = on_request
        self._mv_query = query_for_multivariant or _default_query
        # Only a query hook can make a multivariant playlist differ between viewers.
        self._mv_cache = PER_VIEWER if query_for_multivariant else SHARED_BRIEFLY
        self._caches: weakref.WeakKeyDictionary[HlsWindow, _RenderCache] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------ playlists

    async def multivariant(self, request: web.Request) -> web.StreamResponse:
        playback_id = request.match_info["playback_id"]
        stream = self._registry.get(playback_id)
        if stream is None:
            return _not_found("No live stream with this playback id")
        renditions = list(stream.renditions)
        if not renditions:
            return error_response(
                503,
                "stream_starting",
                "The stream has no renditions yet",
                headers={"Retry-After": "1"},
            )
        query = strip_hls_params(self._mv_query(request))
        body = render_multivariant(renditions, query=query).encode()
        return await self._send(
            request,
            playback_id,
            "multivariant",
            _Rendered(body),
            content_type=PLAYLIST_TYPE,
            cache_control=self._mv_cache,
        )

    async def media_playlist(self, request: web.Request) -> web.StreamResponse:
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        stream, rendition = found
        window = rendition.window
        td = window.target_duration
        low = stream.latency_mode == "low"

        directives = Directives()
        raw_query = request.rel_url.raw_query_string
        # A player's own query (its id) has no directives: skip parsing it into a dict
        # ("HLS_" also catches a percent-encoded leading underscore).
        if low and not window.ended and "HLS_" in raw_query:  # ENDLIST: all ignored
            try:
                directives = parse_directives(request.query)
                check_blocking(
                    directives,
                    last_msn=window.last_msn,
                    last_part=window.last_part,
                    part_target=window.part_target,
                )
            except DirectiveError as exc:
                return error_response(
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
                lambda: window.wait_for(msn, part),
            )
        # First-playlist wait: nothing to show until the first part (or, without parts,
        # the first whole segment) exists.
        first = (window.first_msn, 0 if low else None)
        if outcome is _Hold.READY:
            outcome = await self._hold(
                request,
                window,
                lambda: window.is_satisfied(*first),
                lambda: window.wait_for(*first),
            )
        ready = window.is_satisfied(*first)
        if outcome is _Hold.GONE:
            return error_response(503, "client_gone", "The client went away")
        if not ready and window.ended:
            return _not_found("The stream ended without media")
        if outcome is _Hold.TIMEOUT or not ready:
            return error_response(
                503,
                "playlist_unavailable",
                "The requested update did not arrive in time",
                cache_control=playlist_error_max_age(td),
                headers={"Retry-After": str(max(1, td))},
            )

        blocked = directives.blocking and not window.ended
        rendered = self._render(raw_query, stream, rendition, low=low, skip=directives.skip)
        cache = blocking_playlist_max_age(td) if blocked else playlist_max_age(td)
        return await self._send(
            request,
            stream.playback_id,
            "playlist",
            rendered,
            content_type=PLAYLIST_TYPE,
            cache_control=cache,
        )

    def _render(
        self,
        raw_query: str,
        stream: HlsStream,
        rendition: Rendition,
        *,
        low: bool,
        skip: bool,
    ) -> _Rendered:
        window = rendition.window
        snap = window.snapshot()
        query = strip_hls_params(raw_query)
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
        shape = (low, skip, reports)
        if query:  # a player's own copy: spliced, and never asked for twice
            return self._splice(cache, snap, shape, query)
        rendered = cache.entries.get(shape)
        if rendered is None:
            rendered = self._splice(cache, snap, shape, query)
            cache.entries[shape] = rendered
        return rendered

    @staticmethod
    def _splice(
        cache: _RenderCache, snap: WindowSnapshot, shape: tuple, query: str
    ) -> _Rendered:
        """One player's playlist: the version's template with its query in every URI.

        Every player carries its own id in the query, so the playlist is rendered once
        per version with a marker where queries go, cut there, and each player's copy
        (and its gzip) is a splice of the pieces: a few microseconds, not a render
        and a compression.
        """
        low, skip, reports = shape
        pieces = cache.templates.get(shape)
        if pieces is None:
            template = render_media_playlist(
                snap, low_latency=low, query=_QUERY_MARK, skip=skip, reports=reports
            )
            pieces = [piece.encode() for piece in template.split("?" + _QUERY_MARK)]
            cache.templates[shape] = pieces
        if not query:
            return _Rendered(b"".join(pieces))
        insert = ("?" + query).encode()
        if len(insert) > MAX_INSERT:
            return _Rendered(insert.join(pieces))
        splicer_key = (shape, len(insert))
        splicer = cache.splicers.get(splicer_key)
        if splicer is None:
            splicer = cache.splicers[splicer_key] = SplicedGzip(pieces, len(insert))
        return _Rendered(splicer=splicer, insert=insert)

    # ------------------------------------------------------------------ media files

    async def init(self, request: web.Request) -> web.StreamResponse:
        return await self._stored(request, "init", "No such init section")

    async def segment(self, request: web.Request) -> web.StreamResponse:
        return await self._stored(request, "segment", "No such segment")

    async def _stored(self, request: web.Request, kind: str, missing: str) -> web.StreamResponse:
        """An init section or segment: in the window already, or 404 (never held)."""
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        stream, rendition = found
        index = _index(request)
        window = rendition.window
        read = window.init_data if kind == "init" else window.segment_data
        data = None if index is None else read(index)
        if data is None:
            return _not_found(missing)
        return await self._send_media(request, stream, rendition, kind, data)

    async def part(self, request: web.Request) -> web.StreamResponse:
        """A part; the preload-hinted one is held until complete, then sent whole."""
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        stream, rendition = found
        window = rendition.window
        index = _index(request)
        if index is None:
            return _not_found("No such part")
        data = window.part_data(index)
        if data is None and window.is_hinted(index):
            outcome = await self._hold(
                request,
                window,
                lambda: window.part_data(index) is not None or window.ended,
                lambda: window.wait_for_part(index),
            )
            if outcome is _Hold.GONE:
                return error_response(503, "client_gone", "The client went away")
            data = window.part_data(index)
            if data is None and outcome is _Hold.TIMEOUT:
                return error_response(
                    503,
                    "part_unavailable",
                    "The hinted part did not arrive in time",
                    headers={"Retry-After": "1"},
                )
        if data is None:
            return _not_found("No such part")
        return await self._send_media(request, stream, rendition, "part", data)

    async def _send_media(
        self,
        request: web.Request,
        stream: HlsStream,
        rendition: Rendition,
        kind: str,
        data: bytes | memoryview,
    ) -> web.StreamResponse:
        content_type = "audio/mp4" if rendition.audio_only else "video/mp4"
        return await self._send(
            request,
            stream.playback_id,
            kind,
            data,
            content_type=content_type,
            cache_control=IMMUTABLE,
        )

    # ------------------------------------------------------------------ misc routes

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
            return _not_found("Not found")
        return error_response(
            405,
            "method_not_allowed",
            "Playback paths are read-only",
            headers={"Allow": "GET, HEAD, OPTIONS"},
        )

    # ------------------------------------------------------------------ plumbing

    def _lookup(self, request: web.Request) -> tuple[HlsStream, Rendition] | web.Response:
        stream = self._registry.get(request.match_info["playback_id"])
        if stream is None:
            return _not_found("No live stream with this playback id")
        rendition = stream.rendition(request.match_info["rendition"])
        if rendition is None:
            return _not_found("No such rendition")
        return stream, rendition

    async def _hold(
        self,
        request: web.Request,
        window: HlsWindow,
        ready: Callable[[], bool],
        wait: Callable[[], Awaitable[None]],
    ) -> _Hold:
        """Wait for `ready()` up to 3 x TD, giving up early if the client disconnects."""
        if ready() or window.ended:
            return _Hold.READY
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLD_TARGET_DURATIONS * window.target_duration
        waiter = asyncio.ensure_future(wait())
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return _Hold.TIMEOUT
                done, _ = await asyncio.wait({waiter}, timeout=min(remaining, DISCONNECT_POLL_S))
                if done:
                    waiter.result()
                    return _Hold.READY
                if request.transport is None or request.transport.is_closing():
                    return _Hold.GONE
        finally:
            if not waiter.done():
                waiter.cancel()

    async def _send(
        self,
        request: web.Request,
        playback_id: str,
        kind: str,
        payload: _Rendered | bytes | memoryview,
        *,
        content_type: str,
        cache_control: str,
    ) -> web.StreamResponse:
        """Send a 200 now, then report it to the stats hook."""
        headers = {**CORS_HEADERS, "Cache-Control": cache_control}
        if isinstance(payload, _Rendered):
            headers["Vary"] = "Accept-Encoding"
            if accepts_gzip(request):
                headers["Content-Encoding"] = "gzip"
                body: bytes | memoryview = payload.gzip()
            else:
                body = payload.body()
        else:
            body = payload
        resp = web.Response(body=body, content_type=content_type, headers=headers)
        try:
            await resp.prepare(request)
            await resp.write_eof()
        except ConnectionResetError:
            return resp
        if self._on_request is not None:
            sent = 0 if request.method == "HEAD" else len(body)
            try:
                self._on_request(request, playback_id, kind, sent)
            except Exception:
                log.exception("HLS on_request hook failed")
        return resp


def _index(request: web.Request) -> int | None:
    raw = request.match_info["n"]
    return int(raw) if len(raw) <= _MAX_INDEX_DIGITS else None


def _not_found(message: str) -> web.Response:
    # Short-lived on purpose: a missing part or stream may exist a moment later.
    return error_response(404, "not_found", message, cache_control=NO_CACHE)
