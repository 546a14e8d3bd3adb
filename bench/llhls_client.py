"""A lean LL-HLS viewer for load tests: raw HTTP/1.1 on asyncio protocols, hls.js-like.

Thousands of these run in a few processes, so every microsecond of client CPU per
request counts against what the server can be shown to do: an aiohttp client costs
about 180 µs a request on the benchmark machine, which would make the tool the thing
that saturates. Here a connection is an `asyncio.BufferedProtocol` reading into one
preallocated buffer, a request is a single `write`, the response parser looks only at
the four headers a player needs, and part bodies are counted, not kept.

The viewer follows the URIs the server writes (relative ones resolved against the
playlist's URL) and never builds one itself, so it keeps working whatever the URL
layout below the multivariant playlist is; all it adds are the `_HLS_*` delivery
directives, as a player does.

What a viewer does, like hls.js in low-latency mode:
1. GET the multivariant playlist, pick a rendition, GET its media playlist and init
   section, then fetch the last PART-HOLD-BACK parts (three) to start behind the edge;
2. loop: a blocking reload for the part after the newest one listed
   (`_HLS_msn=M&_HLS_part=P`, plus `_HLS_skip=YES` once the playlist advertises
   CAN-SKIP-UNTIL, as hls.js asks for delta updates) on one connection and, at the same
   time, the part named by `EXT-X-PRELOAD-HINT` on a second one (the server holds both
   until the part is complete); then any listed part it does not have yet.

A part's arrival is stamped when its last byte has been read (CLOCK_MONOTONIC, which
all processes share), keyed by (media sequence number, part index in its segment),
which does not depend on the URL layout either.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from urllib.parse import urljoin

READ_BUFFER = 256 * 1024
MAX_LINE = 64 * 1024  # longest response head or chunk-size line accepted
PART_HOLD_BACK_PARTS = 3

# Parser states.
_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE = range(7)


class ProtocolError(Exception):
    """The server sent something that is not an HTTP/1.1 response."""


@dataclass(slots=True)
class Response:
    status: int
    size: int  # body bytes as sent (before gzip is undone)
    body: bytes | None  # None when the caller asked for the size only
    gzip: bool
    close: bool  # the server will close the connection after this response
    finished_at: float  # time.monotonic() when the last byte was read

    def text(self) -> str:
        body = self.body or b""
        if self.gzip:
            body = zlib.decompress(body, 31)
        return body.decode()


class ResponseParser:
    """Incremental HTTP/1.1 response parser: Content-Length, chunked, or read-to-close.

    `expect(keep_body)` announces the next response (the client sends one request at a
    time); `feed` takes whatever the socket gave and returns the responses it finished.
    Only the headers a player needs are read: Content-Length, Transfer-Encoding,
    Content-Encoding and Connection.
    """

    def __init__(self) -> None:
        self._pending = bytearray()  # an unfinished head or chunk-size line
        self._state = _HEAD
        self._remaining = 0
        self._keep_body = True
        self._chunks: list[bytes] = []
        self._size = 0
        self._status = 0
        self._gzip = False
        self._close = False
        self._no_body = False

    def expect(self, *, keep_body: bool, no_body: bool = False) -> None:
        """The next response's body is kept (playlists) or only counted (media);
        `no_body` for a HEAD request, whose response has none whatever it says."""
        self._keep_body = keep_body
        self._no_body = no_body

    def feed(self, data: bytes | bytearray, end: int | None = None) -> list[Response]:
        finished: list[Response] = []
        position = 0
        end = len(data) if end is None else end
        while position < end:
            state = self._state
            if state in (_BODY, _CHUNK_DATA, _UNTIL_CLOSE):
                take = end - position
                if state != _UNTIL_CLOSE:
                    take = min(self._remaining, take)
                    self._remaining -= take
                if self._keep_body:
                    self._chunks.append(bytes(data[position : position + take]))
                self._size += take
                position += take
                if self._remaining == 0 and state == _BODY:
                    finished.append(self._finish())
                elif self._remaining == 0 and state == _CHUNK_DATA:
                    self._state = _CHUNK_END
                continue
            terminator = b"\r\n\r\n" if state == _HEAD else b"\r\n"
            line, position = self._line(data, position, end, terminator)
            if line is None:
                break
            if state == _HEAD:
                response = self._head(line)
                if response is not None:
                    finished.append(response)
            elif state == _CHUNK_SIZE:
                try:
                    self._remaining = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size line {line[:40]!r}") from None
                self._state = _CHUNK_DATA if self._remaining else _TRAILERS
            elif state == _CHUNK_END:
                if line:
                    raise ProtocolError("chunk data longer than its size")
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS and not line:  # trailer lines before the empty one are skipped
                finished.append(self._finish())
        return finished

    def feed_eof(self) -> Response | None:
        """The server closed the connection: the end of a read-to-close body, else nothing."""
        if self._state == _UNTIL_CLOSE:
            return self._finish()
        return None

    @property
    def idle(self) -> bool:
        """Between responses (nothing of the next one read yet)."""
        return self._state == _HEAD and not self._pending

    def _line(
        self, data: bytes | bytearray, position: int, end: int, terminator: bytes
    ) -> tuple[bytes | None, int]:
        """The bytes before `terminator` and the position after it, or (None, end) when
        the terminator has not arrived yet (what came is kept for the next feed)."""
        if not self._pending:
            found = data.find(terminator, position, end)
            if found >= 0:
                return bytes(data[position:found]), found + len(terminator)
            self._pending += data[position:end]
            self._check_length()
            return None, end
        before = len(self._pending)
        taken = min(end, position + MAX_LINE)  # not the whole of a body that follows a head
        self._pending += data[position:taken]
        found = self._pending.find(terminator, max(0, before - len(terminator) + 1))
        if found < 0:
            self._check_length()
            return None, taken
        line = bytes(self._pending[:found])
        consumed = found + len(terminator) - before
        self._pending.clear()
        return line, position + consumed

    def _check_length(self) -> None:
        if len(self._pending) > MAX_LINE:
            raise ProtocolError("response head or chunk line too long")

    def _head(self, head: bytes) -> Response | None:
        status_line, _, headers = head.partition(b"\r\n")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:60]!r}")
        self._status = int(parts[1])
        if 100 <= self._status < 200:
            return None  # an interim response; the real one follows
        length: int | None = None
        chunked = False
        self._gzip = False
        self._close = parts[0] == b"HTTP/1.0"
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"content-encoding":
                self._gzip = value.strip().lower() == b"gzip"
            elif name == b"connection":
                self._close = value.strip().lower() == b"close"
        self._chunks = []
        self._size = 0
        if self._no_body or self._status in (204, 304):
            return self._finish()
        if chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._remaining = length
            if length == 0:
                return self._finish()
            self._state = _BODY
        else:
            self._state = _UNTIL_CLOSE
            self._close = True
        return None

    def _finish(self) -> Response:
        body = b"".join(self._chunks) if self._keep_body else None
        self._chunks = []
        self._state = _HEAD
        return Response(self._status, self._size, body, self._gzip, self._close, time.monotonic())


class ConnectionLost(Exception):
    """The connection closed (or failed) while a response was awaited."""


class HttpConnection(asyncio.BufferedProtocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, reconnecting on demand."""

    def __init__(self, host: str, port: int, *, gzip: bool = True) -> None:
        self.host, self.port = host, port
        self._prefix = b"GET "
        self._suffix = (
            f" HTTP/1.1\r\nHost: {host}:{port}\r\n"
            + ("Accept-Encoding: gzip\r\n" if gzip else "")
            + "\r\n"
        ).encode()
        self._buffer = bytearray(READ_BUFFER)
        self._view = memoryview(self._buffer)
        self._parser = ResponseParser()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None

    # asyncio.BufferedProtocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        try:
            responses = self._parser.feed(self._buffer, nbytes)
        except ProtocolError as error:
            self._fail(error)
            return
        for response in responses:
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(response)
            self._waiter = None
            if response.close:
                self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        last = self._parser.feed_eof()
        self._parser = ResponseParser()
        if self._waiter is not None and not self._waiter.done():
            if last is not None:
                self._waiter.set_result(last)
            else:
                self._waiter.set_exception(ConnectionLost(str(exc or "closed by the server")))
        self._waiter = None

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self._waiter = None
        self.close()

    # the client side
    async def request(self, target: str, *, keep_body: bool) -> asyncio.Future[Response]:
        """Send a GET; the future it returns completes with the response."""
        if self._transport is None or self._transport.is_closing():
            loop = asyncio.get_running_loop()
            self._parser = ResponseParser()
            await loop.create_connection(lambda: self, self.host, self.port)
        assert self._transport is not None
        self._parser.expect(keep_body=keep_body)
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(self._prefix + target.encode() + self._suffix)
        return self._waiter

    async def get(self, target: str, *, keep_body: bool = True) -> Response:
        return await (await self.request(target, keep_body=keep_body))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


# ---------------------------------------------------------------------------- playlists


def resolve(base: str, uri: str) -> str:
    """`uri` as written in the playlist at path `base`, as a path (and query) to GET.

    Plain relative names (`part-7.m4s?x=1`, `p/abc/720p/index.m3u8`) are the common case
    and are joined without urljoin's cost; anything else goes through urljoin.
    """
    if uri[:1] not in ("/", ".", "?", "") and "://" not in uri:
        return base[: base.rfind("/") + 1] + uri
    joined = urljoin(base, uri)
    if "://" in joined:  # an absolute URL: keep its path and query (one origin per run)
        joined = joined.split("://", 1)[1]
        joined = joined[joined.find("/") :] if "/" in joined else "/"
    return joined


def _attribute(attributes: str, name: str) -> str | None:
    """A quoted (or plain) attribute of a tag's attribute list, e.g. URI="..." or TYPE=PART."""
    key = name + "="
    start = attributes.find(key)
    while start > 0 and attributes[start - 1] != ",":
        start = attributes.find(key, start + 1)
    if start < 0:
        return None
    start += len(key)
    if attributes[start : start + 1] == '"':
        return attributes[start + 1 : attributes.index('"', start + 1)]
    stop = attributes.find(",", start)
    return attributes[start:] if stop < 0 else attributes[start:stop]


def variant_uris(text: str) -> list[str]:
    """The media playlist URIs of a multivariant playlist, in order (each follows its
    EXT-X-STREAM-INF line)."""
    lines = text.splitlines()
    return [
        lines[number + 1].strip()
        for number, line in enumerate(lines[:-1])
        if line.startswith("#EXT-X-STREAM-INF:")
    ]


def part_name(uri: str) -> str:
    """The file name a part URI ends in (`part-42.m4s`): the same for every viewer
    whatever the server puts before it (a player id in a path segment or a query)."""
    path = uri.split("?", 1)[0]
    return path[path.rfind("/") + 1 :]


@dataclass(slots=True)
class MediaPlaylist:
    """What a low-latency player takes from a media playlist."""

    parts: list[str]  # URIs of the listed parts, oldest first
    hint: str | None  # URI of EXT-X-PRELOAD-HINT TYPE=PART
    init_uri: str | None  # the newest EXT-X-MAP
    next_part: tuple[int, int]  # (MSN, part index) a blocking reload asks for next
    can_skip: bool  # CAN-SKIP-UNTIL advertised: delta updates may be asked for
    can_block: bool
    skipped: int  # EXT-X-SKIP SKIPPED-SEGMENTS of this (delta) playlist
    ended: bool


_PART_URIS = re.compile(r'#EXT-X-PART:[^\n]*?[:,]URI="([^"]*)"')


def _tag(text: str, tag: str, *, last: bool = False) -> str | None:
    """The attribute list of the first (or last) `#EXT-X-{tag}:` line."""
    prefix = f"\n#EXT-X-{tag}:"
    found = text.rfind(prefix) if last else text.find(prefix)
    if found < 0:
        return None
    found += len(prefix)
    stop = text.find("\n", found)
    return text[found:stop] if stop >= 0 else text[found:]


def parse_media_playlist(text: str) -> MediaPlaylist:
    """Parse a (possibly delta) media playlist.

    Media sequence numbers are counted from EXT-X-MEDIA-SEQUENCE: EXT-X-SKIP stands for
    SKIPPED-SEGMENTS segments, and each EXTINF (with its URI line) closes one. The parts
    after the last EXTINF belong to the open segment; the next one is what a blocking
    reload asks for (the part the preload hint names). Tags are found with regular
    expressions over the whole text rather than line by line: a player parses ten
    playlists a second, and this is most of the tool's own Python per request.
    """
    if not text.startswith("#EXTM3U"):
        raise ValueError("not a playlist (no #EXTM3U)")
    sequence = _tag(text, "MEDIA-SEQUENCE")
    skip = _tag(text, "SKIP")
    skipped = int(_attribute(skip, "SKIPPED-SEGMENTS") or 0) if skip else 0
    closed = text.count("#EXTINF:")
    open_segment = text[text.rfind("#EXTINF:") + 1 :] if closed else text
    hint = None
    position = text.find("\n#EXT-X-PRELOAD-HINT:")
    while position >= 0:
        attributes = _tag(text[position:], "PRELOAD-HINT") or ""
        if _attribute(attributes, "TYPE") == "PART":
            hint = _attribute(attributes, "URI")
        position = text.find("\n#EXT-X-PRELOAD-HINT:", position + 1)
    init = _tag(text, "MAP", last=True)
    control = _tag(text, "SERVER-CONTROL") or ""
    return MediaPlaylist(
        parts=_PART_URIS.findall(text),
        hint=hint,
        init_uri=_attribute(init, "URI") if init else None,
        next_part=(
            int(sequence or 0) + skipped + closed,
            open_segment.count("#EXT-X-PART:"),
        ),
        can_skip=_attribute(control, "CAN-SKIP-UNTIL") is not None,
        can_block=_attribute(control, "CAN-BLOCK-RELOAD") == "YES",
        skipped=skipped,
        ended="#EXT-X-ENDLIST" in text,
    )


def parts_to_fetch(listed: list[str], have: Collection[str], hold_back: int) -> list[str]:
    """The listed part URIs a player fetches: those after the newest one it has, or,
    having none of them (joining, or fallen out of the window), the last `hold_back`."""
    for position in range(len(listed) - 1, -1, -1):
        if part_name(listed[position]) in have:
            return listed[position + 1 :]
    return listed[-hold_back:] if hold_back else []


def with_directives(path: str, msn: int, part: int, *, skip: bool) -> str:
    """The media playlist path with the delivery directives of a blocking reload."""
    directives = f"_HLS_msn={msn}&_HLS_part={part}" + ("&_HLS_skip=YES" if skip else "")
    return f"{path}{'&' if '?' in path else '?'}{directives}"


# ---------------------------------------------------------------------------- viewers


@dataclass
class Tally:
    """What the viewers of one process saw."""

    arrivals: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: int = 0  # completed, over the whole run
    requests_in_window: int = 0
    bytes_in_window: int = 0
    delta_playlists: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    window: tuple[float, float] = (0.0, float("inf"))  # monotonic [from, until)

    def count(self, response: Response) -> None:
        self.requests += 1
        if self.window[0] <= response.finished_at < self.window[1]:
            self.requests_in_window += 1
            self.bytes_in_window += response.size

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {detail}")


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    multivariant_path: str
    rendition: int = 0  # index among the multivariant's variants
    gzip: bool = True
    delta_updates: bool = True


class Viewer:
    """One hls.js-like low-latency player (two connections: playlists and media)."""

    def __init__(self, target: Target, tally: Tally) -> None:
        self.target, self.tally = target, tally
        self.playlists = HttpConnection(target.host, target.port, gzip=target.gzip)
        self.media = HttpConnection(target.host, target.port, gzip=target.gzip)
        self._have: dict[str, None] = {}  # names of the newest parts fetched, oldest first

    async def _get(
        self, connection: HttpConnection, path: str, what: str, *, keep_body: bool = True
    ) -> Response | None:
        try:
            response = await connection.get(path, keep_body=keep_body)
        except (OSError, ConnectionLost, ProtocolError) as error:
            self.tally.error(f"{what} failed", f"{path}: {error!r}")
            return None
        return self._checked(response, path, what)

    def _checked(self, response: Response, path: str, what: str) -> Response | None:
        self.tally.count(response)
        if response.status != 200:
            self.tally.error(f"{what} {response.status}", path)
            return None
        return response

    async def _fetch_part(self, media_path: str, uri: str) -> None:
        name = part_name(uri)
        if name in self._have:
            return
        response = await self._get(self.media, resolve(media_path, uri), "part", keep_body=False)
        if response is None:
            return
        self._have[name] = None
        if len(self._have) > 64:
            del self._have[next(iter(self._have))]
        self.tally.arrivals[name].append(response.finished_at)

    async def _catch_up(self, playlist: MediaPlaylist, media_path: str, hold_back: int) -> None:
        for uri in parts_to_fetch(playlist.parts, self._have, hold_back):
            await self._fetch_part(media_path, uri)

    async def run(self, until: float) -> None:
        target = self.target
        try:
            response = await self._get(self.playlists, target.multivariant_path, "multivariant")
            if response is None:
                return
            uris = variant_uris(response.text())
            if not uris:
                self.tally.error("multivariant", "lists no variant")
                return
            chosen = uris[min(target.rendition, len(uris) - 1)]
            media_path = resolve(target.multivariant_path, chosen)
            response = await self._get(self.playlists, media_path, "playlist")
            if response is None:
                return
            playlist = parse_media_playlist(response.text())
            if playlist.init_uri is not None:
                init = resolve(media_path, playlist.init_uri)
                await self._get(self.media, init, "init", keep_body=False)
            # Like hls.js, start PART-HOLD-BACK (three parts) behind the live edge.
            await self._catch_up(playlist, media_path, PART_HOLD_BACK_PARTS)
            while time.monotonic() < until and not playlist.ended:
                playlist = await self._step(playlist, media_path) or playlist
        finally:
            self.playlists.close()
            self.media.close()

    async def _step(self, playlist: MediaPlaylist, media_path: str) -> MediaPlaylist | None:
        """One round: the blocking reload and the hinted part at once, then any listed
        part still missing. Returns the new playlist (None after an error)."""
        msn, part = playlist.next_part
        skip = self.target.delta_updates and playlist.can_skip
        reload_path = with_directives(media_path, msn, part, skip=skip)
        try:
            reloading = await self.playlists.request(reload_path, keep_body=True)
        except OSError as error:
            self.tally.error("playlist failed", repr(error))
            await asyncio.sleep(0.2)
            return None
        if playlist.hint is not None:
            await self._fetch_part(media_path, playlist.hint)
        try:
            response = self._checked(await reloading, reload_path, "playlist")
        except (ConnectionLost, ProtocolError) as error:
            self.tally.error("playlist failed", repr(error))
            response = None
        if response is None:
            await asyncio.sleep(0.2)
            return None
        fresh = parse_media_playlist(response.text())
        if fresh.skipped:
            self.tally.delta_playlists += 1
        # Fallen out of the window (nothing listed is known): go on from the newest part.
        await self._catch_up(fresh, media_path, 1)
        return fresh


async def run_viewers(target: Target, count: int, *, start: float, ramp: float, until: float,
                      window: tuple[float, float],
                      viewer: Callable[[Target, Tally], Viewer] = Viewer) -> Tally:  # fmt: skip
    """`count` viewers joining evenly over `ramp` seconds from `start` (monotonic) and
    watching until `until`; requests and bytes are counted inside `window`. `viewer`
    makes one (a `Viewer` subclass that plays otherwise, e.g. replaying a capture)."""
    tally = Tally(window=window)

    async def one(number: int) -> None:
        delay = start + ramp * (number + random.random()) / max(count, 1) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await viewer(target, tally).run(until)

    tasks = [asyncio.ensure_future(one(number)) for number in range(count)]
    try:
        await asyncio.wait(tasks, timeout=max(0.0, until - time.monotonic()) + 2.0)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            tally.error("viewer crashed", repr(result))
    return tally
