"""Viewers of live streams, counted from the HLS requests themselves.

Any player (hls.js, Safari, VLC, ffplay) is counted without its help:
- each fetch of the multivariant playlist starts a player session, whose id the server
  writes as a path segment of the media playlist URIs (`/live/{pb}/{id}/{rendition}/`,
  `live/hls/paths.py`); the relative part, segment and init URIs inside resolve under
  it, so the player carries it on every request and two players behind one address
  are two viewers;
- a request without one falls back to address + user agent;
- a player session becomes a view with its first media playlist or media request (a
  probe that only reads the multivariant is not a viewer), and it is gone once it
  has fetched nothing for three target durations.

Behind a caching edge most requests never reach a node. `configs/edge.vcl` passes one
request per player and segment to the node with the player's id (its media playlist
request for a segment's second part, or any plain reload), marked `X-Live-Edge: count`;
such a request keeps the player alive and credits it with the segment it has just
played (`_edge_credit`), so players, renditions and bytes stay right behind the edge.
The fetches the edge shares among players (`X-Live-Edge: shared`) count for nobody.
These marks, and the addresses the hops add, are believed only from the peers
`live/hops.py` trusts.

Everything is in memory and O(1) per request (a dict lookup and a few additions); a
sweep once a second expires players. The store sees the totals once, when the
session ends (`session_totals`, the manager's hook).

The same table bounds the audience (`admit`, run before a request is served): a new
player beyond `max_viewers_per_stream` on its stream, or `max_viewers` on the node, is
turned away, while every player already known goes on being served.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from live.hls import HlsRegistry
from live.hls.paths import LiveTarget
from live.hls.request import HlsRequest
from live.hops import TrustedHops
from live.limits import LimitHits
from live.store.times import to_rfc3339, utcnow

# What the edge's mark (live/hops.py) says of a request it passes with a player's id:
# the player got that segment's media from the edge's cache. Any other mark is a
# fetch the edge shares among its players.
EDGE_COUNT = "count"
TIMEOUT_TARGET_DURATIONS = 3
MAX_PLAYERS_PER_STREAM = 50_000  # beyond this, new players are counted by address only
RETAIN_IDLE_S = 3600.0  # an ended stream's stats stay in memory this long


@dataclass(slots=True)
class Player:
    id: str
    ip: str
    user_agent: str
    started_at: datetime
    first_seen: float  # monotonic
    last_seen: float
    watch_from: float = 0.0  # watch time counts from here (first view or period start)
    rendition: str | None = None
    bytes_out: int = 0
    counted: bool = False  # a view in the current period
    # bytes_out when the current period began and when `rendition` did: the period's
    # totals add these differences up when read, so a request only adds to bytes_out.
    period_mark: int = 0
    rendition_mark: int = 0

    def watched(self) -> float:
        return max(0.0, self.last_seen - self.watch_from)


@dataclass(slots=True)
class Period:
    """The figures of one session of a stream (or what came after its last one).

    Bytes of players still around are not in here until they leave, switch rendition
    or the period ends (`StreamViewers.close_bytes`); `report` takes them as arguments.
    """

    started_at: datetime = field(default_factory=utcnow)
    peak_viewers: int = 0
    total_views: int = 0
    unique: set[tuple[str, str]] = field(default_factory=set)
    watch_time_closed: float = 0.0  # players that have left
    bytes_out: int = 0
    rendition_bytes: Counter[str] = field(default_factory=Counter)

    def report(self, active_watch: float = 0.0, active_bytes: int = 0) -> dict[str, Any]:
        return {
            "peak_viewers": self.peak_viewers,
            "total_views": self.total_views,
            "unique_viewers": len(self.unique),
            "watch_time_s": round(self.watch_time_closed + active_watch, 3),
            "bytes_out": self.bytes_out + active_bytes,
        }


@dataclass(slots=True)
class StreamViewers:
    playback_id: str
    timeout_s: float
    players: dict[str, Player] = field(default_factory=dict)
    current: int = 0
    period: Period = field(default_factory=Period)
    last: dict[str, Any] | None = None  # report of the last ended period
    touched: float = 0.0

    def close_bytes(self, player: Player) -> None:
        """Move what `player` sent since its marks into the period's totals."""
        period = self.period
        period.bytes_out += player.bytes_out - player.period_mark
        if player.rendition is not None:
            period.rendition_bytes[player.rendition] += player.bytes_out - player.rendition_mark
        player.period_mark = player.rendition_mark = player.bytes_out

    def count(self, player: Player, now: float) -> None:
        """`player`'s first fetch in this period: one more view."""
        player.counted = True
        player.watch_from = now
        self.current += 1
        period = self.period
        period.total_views += 1
        period.unique.add((player.ip, player.user_agent))
        if self.current > period.peak_viewers:
            period.peak_viewers = self.current

    def switch(self, player: Player, rendition: str) -> None:
        """`player` now fetches `rendition`: what it sent so far goes to the old one."""
        if player.rendition is not None:
            self.period.rendition_bytes[player.rendition] += (
                player.bytes_out - player.rendition_mark
            )
        player.rendition = rendition
        player.rendition_mark = player.bytes_out


class ViewerTracker:
    """All streams' viewers on this node."""

    def __init__(
        self,
        registry: HlsRegistry | None = None,
        *,
        default_target_duration: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_viewers_per_stream: int | None = None,
        max_viewers: int | None = None,
        limit_hits: LimitHits | None = None,
        hops: TrustedHops | None = None,
    ) -> None:
        """`hops`: whose edge marks and forwarded addresses to believe (by default
        nobody's: every request is its peer's own)."""
        self.registry = registry
        self.hops = hops or TrustedHops(())
        self.default_target_duration = default_target_duration
        self.clock = clock
        self.max_viewers_per_stream = max_viewers_per_stream
        self.max_viewers = max_viewers
        self.limit_hits = limit_hits or LimitHits()
        self.streams: dict[str, StreamViewers] = {}
        self._task: asyncio.Task[None] | None = None
        self._sweep_every: float | None = None  # set by `start`

    # -- the HLS hooks (setup_hls_routes) -----------------------------------------

    def admit(self, request: HlsRequest, target: LiveTarget) -> str | None:
        """None when the request comes from a player already known, or there is room
        for a new one; else why not. A dict lookup for a known player."""
        edge = self.hops.edge_mark(request)
        if edge is not None and edge != EDGE_COUNT:
            return None  # a fetch the edge shares among its players: nobody's
        playback_id = target.playback_id
        stream = self.streams.get(playback_id)
        if stream is not None and self._known(stream, request, target):
            return None
        per_stream = len(stream.players) if stream is not None else 0
        limit = self.max_viewers_per_stream
        if limit is not None and per_stream >= limit:
            return self._refuse(
                "max_viewers_per_stream", request,
                f"stream {playback_id} has {per_stream} viewers",
                f"This stream has its maximum of {limit} viewers; try again later",
            )  # fmt: skip
        limit = self.max_viewers
        if limit is not None:
            total = sum(len(s.players) for s in self.streams.values())
            if total >= limit:
                return self._refuse(
                    "max_viewers", request, f"the node has {total} viewers",
                    f"This server has its maximum of {limit} viewers; try again later",
                )  # fmt: skip
        return None

    def _known(self, stream: StreamViewers, request: HlsRequest, target: LiveTarget) -> bool:
        if target.player_id is not None:
            return target.player_id in stream.players
        ip = self.hops.client_address(request)
        user_agent = request.headers.get("User-Agent", "")
        return _fallback_id(ip, user_agent) in stream.players

    def _refuse(self, limit: str, request: HlsRequest, figure: str, reason: str) -> str:
        address = self.hops.client_address(request)
        self.limit_hits.hit(limit, f"viewer from {address} refused: {figure}")
        return reason

    def start_player(self, request: HlsRequest, playback_id: str) -> str | None:
        """Start a player session: its id goes into the media playlist URIs (None once
        the stream's table is full: such players are counted by address)."""
        stream = self._stream(playback_id)
        if len(stream.players) >= MAX_PLAYERS_PER_STREAM:
            return None
        now = self.clock()
        player_id = f"pl_{secrets.token_urlsafe(9)}"
        stream.players[player_id] = Player(
            player_id, self.hops.client_address(request), request.headers.get("User-Agent", ""),
            utcnow(), now, now,
        )  # fmt: skip
        stream.touched = now
        return player_id

    def on_request(self, request: HlsRequest, target: LiveTarget, size: int) -> None:
        """Count one successful HLS response. Cheap: no I/O and, for a player already
        known, no allocation: a dict lookup and a few attribute updates (the stream's
        totals are summed from its players when read)."""
        if target.kind == "multivariant":
            return
        edge = self.hops.edge_mark(request)
        if edge is not None and edge != EDGE_COUNT:
            return  # a fetch the edge shares among its players: nobody's view
        playback_id = target.playback_id
        stream = self.streams.get(playback_id) or self._stream(playback_id)
        # Only ids we issued (or a well-formed id from before a restart) are keys.
        player_id = target.player_id
        player = stream.players.get(player_id) if player_id is not None else None
        now = self.clock()
        if player is None:
            player = self._find_or_add(stream, request, player_id, now)
            if player is None:
                return
            stream.touched = now
        player.last_seen = now
        if not player.counted:
            stream.count(player, now)
        rendition = target.rendition
        if rendition is not None and rendition != player.rendition:
            stream.switch(player, rendition)
        if edge is not None:  # the player got a segment from the edge's cache
            size += self._edge_credit(target)
        player.bytes_out += size

    def _find_or_add(
        self, stream: StreamViewers, request: HlsRequest, player_id: str | None, now: float
    ) -> Player | None:
        """The player a request without a known id belongs to: by its address and user
        agent if it has no id; a new one if none is known (None once the stream's table
        is full)."""
        ip = self.hops.client_address(request)
        user_agent = request.headers.get("User-Agent", "")
        if player_id is None:  # no id: the address + user agent stand for one
            player_id = _fallback_id(ip, user_agent)
            player = stream.players.get(player_id)
            if player is not None:
                return player
        if len(stream.players) >= MAX_PLAYERS_PER_STREAM:
            return None
        player = Player(player_id, ip, user_agent, utcnow(), now, now)
        stream.players[player_id] = player
        return player

    # -- expiry ------------------------------------------------------------------------

    def sweep(self) -> None:
        """Drop players silent for three target durations; forget ended streams."""
        now = self.clock()
        for playback_id in list(self.streams):
            stream = self.streams[playback_id]
            stream.timeout_s = self._timeout(playback_id)
            gone = [p for p in stream.players.values() if now - p.last_seen > stream.timeout_s]
            for player in gone:
                del stream.players[player.id]
                stream.close_bytes(player)
                if player.counted:
                    stream.current -= 1
                    stream.period.watch_time_closed += player.watched()
            if stream.players:  # each was seen within the timeout
                stream.touched = now
            if (
                not stream.players
                and now - stream.touched > RETAIN_IDLE_S
                and (self.registry is None or playback_id not in self.registry)
            ):
                del self.streams[playback_id]

    def start(self, interval_s: float = 1.0) -> None:
        """Sweep every `interval_s` while some stream is tracked; none is on an idle
        server, which then runs no timer for this (its wake-ups were most of an
        idle server's CPU, with nothing to sweep)."""
        self._sweep_every = interval_s
        self._keep_sweeping()

    def _keep_sweeping(self) -> None:
        if self._sweep_every is None or not self.streams:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(
                self._sweep_while_tracking(self._sweep_every), name="viewer-sweep"
            )

    async def _sweep_while_tracking(self, interval_s: float) -> None:
        while self.streams:
            await asyncio.sleep(interval_s)
            self.sweep()

    async def stop(self) -> None:
        self._sweep_every = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- sessions -------------------------------------------------------------------

    def roll(self, playback_id: str) -> dict[str, Any]:
        """End the current period (the session ended): keep its report as `last`
        and start a new one. Players still around are views of the next period only
        if they fetch something in it."""
        stream = self._stream(playback_id)
        now = self.clock()
        for player in stream.players.values():
            stream.close_bytes(player)
        stream.period.watch_time_closed += sum(
            p.watched() for p in stream.players.values() if p.counted
        )
        report = stream.period.report()
        stream.last = report
        stream.period = Period()
        stream.current = 0
        for player in stream.players.values():
            player.counted = False
            player.watch_from = now
        return report

    def session_totals(self, broadcast: Any) -> dict[str, int]:
        """The manager's hook at a session's end: the session's peak and total views,
        written into its history entry."""
        report = self.roll(broadcast.livestream.playback_id)
        return {"peak_viewers": report["peak_viewers"], "total_views": report["total_views"]}

    def live_totals(self, broadcast: Any) -> dict[str, int]:
        """The session's peak and total views so far, for `current_session`
        (reading only: the period goes on)."""
        stream = self.streams.get(broadcast.livestream.playback_id)
        if stream is None:
            return {"peak_viewers": 0, "total_views": 0}
        period = stream.period
        return {"peak_viewers": period.peak_viewers, "total_views": period.total_views}

    # -- reading ----------------------------------------------------------------------

    def current_viewers(self, playback_id: str | None = None) -> int:
        if playback_id is not None:
            stream = self.streams.get(playback_id)
            return stream.current if stream else 0
        return sum(s.current for s in self.streams.values())

    def report(self, playback_id: str, *, live: bool) -> dict[str, Any] | None:
        """`/players`: the current period while live, else the last ended one (None if
        this node knows nothing of the stream)."""
        stream = self.streams.get(playback_id)
        if stream is None:
            return None
        counted = [p for p in stream.players.values() if p.counted]
        if live or stream.last is None:
            players = stream.players.values()
            figures = stream.period.report(
                sum(p.watched() for p in counted),
                sum(p.bytes_out - p.period_mark for p in players),
            )
            by_rendition = Counter(stream.period.rendition_bytes)
            for player in players:
                if player.rendition is not None:
                    by_rendition[player.rendition] += player.bytes_out - player.rendition_mark
        else:
            figures = dict(stream.last)
            by_rendition = Counter()
        renditions: dict[str, dict[str, int]] = {}
        for player in counted:
            name = player.rendition or "unknown"
            entry = renditions.setdefault(name, {"current_viewers": 0, "bytes_out": 0})
            entry["current_viewers"] += 1
        for name, sent in by_rendition.items():
            renditions.setdefault(name, {"current_viewers": 0, "bytes_out": 0})["bytes_out"] = sent
        now = self.clock()
        wall = utcnow()
        return {
            "current_viewers": stream.current,
            **figures,
            "renditions": renditions,
            "players": [
                {
                    "id": p.id,
                    "ip": p.ip,
                    "user_agent": p.user_agent,
                    "started_at": to_rfc3339(p.started_at),
                    "last_seen_at": to_rfc3339(
                        datetime.fromtimestamp(wall.timestamp() - (now - p.last_seen), wall.tzinfo)
                    ),
                    "rendition": p.rendition,
                    "bytes_out": p.bytes_out,
                }
                for p in sorted(counted, key=lambda p: p.first_seen)
            ],
        }

    # -- plumbing ------------------------------------------------------------------

    def _stream(self, playback_id: str) -> StreamViewers:
        stream = self.streams.get(playback_id)
        if stream is None:
            stream = StreamViewers(playback_id, self._timeout(playback_id), touched=self.clock())
            self.streams[playback_id] = stream
            self._keep_sweeping()
        return stream

    def _edge_credit(self, target: LiveTarget) -> int:
        """What a player behind the edge was sent since its last request that reached
        this node: the newest whole segment of its rendition (the edge passes one
        request per player and segment)."""
        hls = self.registry.get(target.playback_id) if self.registry is not None else None
        rendition = hls.rendition(target.rendition or "") if hls is not None else None
        if rendition is None:
            return 0
        window = rendition.window
        chunks = window.segment_chunks(window.last_closed_msn)
        return sum(map(len, chunks)) if chunks is not None else 0

    def _timeout(self, playback_id: str) -> float:
        td = self.default_target_duration
        if self.registry is not None:
            hls = self.registry.get(playback_id)
            if hls is not None and hls.renditions:
                td = hls.renditions[0].window.target_duration
        return TIMEOUT_TARGET_DURATIONS * math.ceil(td)


def _fallback_id(ip: str, user_agent: str) -> str:
    digest = hashlib.blake2b(f"{ip}\0{user_agent}".encode(errors="replace"), digest_size=9)
    return f"pa_{digest.hexdigest()}"
