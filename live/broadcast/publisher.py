"""One ingest connection's hold on a live stream.

Whatever the protocol, an ingest adapter talks to its Publisher only: tracks,
packets, the encoder's name, and `end` when the connection is gone. The manager
talks back through `stop`, which closes the connection (ban, takeover, delete),
and so does the Publisher itself when the publisher goes over its bitrate limit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from live.broadcast.bitrate import BitrateLimit, BitrateMeter
from live.limits import LimitHits
from live.media.packet import MediaPacket, TrackInfo

# Closes the ingest connection: (end reason, a message for the publisher, may be "").
StopConnection = Callable[[str, str], None]


class PublisherSink(Protocol):
    """What a Publisher feeds: its Broadcast (kept to this much so that the two
    modules do not import each other)."""

    publisher: Any
    livestream: Any

    def note_encoder(self, encoder: str) -> None: ...

    def set_tracks(self, tracks: tuple[TrackInfo, ...]) -> None: ...

    def push(self, packet: MediaPacket) -> None: ...

    async def publisher_gone(self, publisher: Publisher, reason: str) -> None: ...


class Publisher:
    def __init__(
        self,
        broadcast: PublisherSink,
        protocol: str,
        remote_addr: str,
        stop: StopConnection,
        *,
        bitrate_limit: BitrateLimit | None = None,
        limit_hits: LimitHits | None = None,
    ) -> None:
        self.broadcast = broadcast
        self.protocol = protocol
        self.remote_addr = remote_addr
        self._stop = stop
        self.connected_at = time.monotonic()
        self.last_media_at: float | None = None
        self.attached = True
        self.bytes_in = 0
        self._configs: dict[str, TrackInfo] = {}
        self._announced = False
        self._meter = BitrateMeter(bitrate_limit, self.connected_at) if bitrate_limit else None
        self._limit_hits = limit_hits

    @property
    def livestream_id(self) -> str:
        return self.broadcast.livestream.id

    def set_encoder(self, encoder: str | None) -> None:
        if encoder and self.attached:
            self.broadcast.note_encoder(encoder[:200])

    def set_track(self, track: TrackInfo) -> None:
        """A track's decoder configuration (also a changed one, mid-stream)."""
        if self._configs.get(track.kind) == track:
            return
        self._configs[track.kind] = track
        if self._announced and self.attached:
            self.broadcast.set_tracks(tuple(self._configs.values()))

    def push(self, packet: MediaPacket) -> None:
        if not self.attached:
            return
        self.bytes_in += len(packet.data)
        if self._meter is not None:
            over_kbps = self._meter.add(len(packet.data), time.monotonic())
            if over_kbps is not None:
                self._over_bitrate(self._meter.limit, over_kbps)
                return
        if packet.kind not in self._configs:
            return  # a frame before its configuration cannot be decoded by anyone
        if not self._announced:
            self._announced = True
            self.broadcast.set_tracks(tuple(self._configs.values()))
        self.last_media_at = time.monotonic()
        self.broadcast.push(packet)

    def is_stale(self, after_s: float) -> bool:
        last = self.last_media_at or self.connected_at
        return time.monotonic() - last >= after_s

    def _over_bitrate(self, limit: BitrateLimit, measured_kbps: int) -> None:
        """Disconnect (end reason `error`: it may come back within the reconnect
        window, at a lower bitrate), telling the publisher why where it can hear it."""
        message = limit.describe(measured_kbps)
        if self._limit_hits is not None:
            self._limit_hits.hit(
                "max_publisher_bitrate_kbps",
                f"stream {self.livestream_id}: {self.protocol} publisher from "
                f"{self.remote_addr} disconnected: {message}",
            )
        self.stop("error", message)

    def stop(self, reason: str, message: str = "") -> None:
        """Close the ingest connection. The manager's stops (ban, takeover...) find
        the session already decided; a stop of the Publisher's own ends it through
        the connection's `end(reason)`."""
        self.attached = False
        with contextlib.suppress(Exception):
            self._stop(reason, message)

    async def end(self, reason: str = "publisher_disconnected") -> None:
        """The connection is gone (`reason`: publisher_disconnected, timeout, error).

        Whether the publisher dropped or stopped on purpose, the session waits for it
        through the livestream's reconnect window (as Mux does): OBS's Stop then
        Start is one broadcast, one recording."""
        if self.broadcast.publisher is self:
            await self.broadcast.publisher_gone(self, reason)
        self.attached = False
