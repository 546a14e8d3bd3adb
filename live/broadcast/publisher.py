"""One ingest connection's hold on a live stream.

Whatever the protocol, an ingest adapter talks to its Publisher only: tracks,
packets, the encoder's name, and `end` when the connection is gone. The manager
talks back through `stop`, which closes the connection (ban, takeover, delete).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from live.media.packet import MediaPacket, TrackInfo


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
        stop: Callable[[str], None],
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

    def stop(self, reason: str) -> None:
        """Close the ingest connection (it then calls `end`, which finds it detached)."""
        self.attached = False
        with contextlib.suppress(Exception):
            self._stop(reason)

    async def end(self, reason: str = "publisher_disconnected") -> None:
        """The connection is gone (`reason`: publisher_disconnected, timeout, error).

        Whether the publisher dropped or stopped on purpose, the session waits for it
        through the livestream's reconnect window (as Mux does): OBS's Stop then
        Start is one broadcast, one recording."""
        if self.broadcast.publisher is self:
            await self.broadcast.publisher_gone(self, reason)
        self.attached = False
