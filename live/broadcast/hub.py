"""Fan-out of one publisher's media to many consumers, none of which can stall it.

Each consumer (HLS packager, recorder, transcoder, stats) reads from its own
Subscription. The publisher never waits: a subscription that falls too far behind
drops media until the next keyframe and is told so with a Gap, while control items
(track changes, the end) are never dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from live.media.packet import MediaPacket, TrackInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TracksChanged:
    """The set of tracks or a track's configuration changed: a new init section."""

    tracks: tuple[TrackInfo, ...]


@dataclass(frozen=True, slots=True)
class PublisherChanged:
    """A different connection now feeds the stream (takeover or reconnect): its
    clock starts afresh and viewers get a discontinuity."""


@dataclass(frozen=True, slots=True)
class Gap:
    """This consumer fell behind and media was dropped before this point."""

    dropped: int


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The session is over; nothing follows."""

    reason: str


HubItem = TracksChanged | PublisherChanged | Gap | StreamEnded | MediaPacket


class Subscription:
    """A bounded queue of hub items for one consumer.

    A consumer whose handling of a packet is synchronous and cheap can take packets
    inline (`take_media_inline`): a packet that finds the queue empty goes straight to
    its handler inside `put`, saving a future and a task wake-up per packet. Control
    items, and packets behind queued items, still go through the queue, so the order
    is kept.
    """

    def __init__(self, name: str, max_packets: int) -> None:
        self.name = name
        self.max_packets = max_packets
        self.dropped = 0
        self._items: deque[HubItem] = deque()
        self._media = 0
        self._dropping = False
        self._dropped_in_gap = 0
        self._waiter: asyncio.Future[None] | None = None
        self._inline: Callable[[MediaPacket], None] | None = None
        self.closed = False
        # While the stream has video, only a video keyframe may end a gap.
        self.stream_has_video = False

    def __len__(self) -> int:
        return len(self._items)

    def take_media_inline(self, handler: Callable[[MediaPacket], None]) -> None:
        """Hand packets that find the queue empty to `handler` at once. It runs inside
        the publisher's `put`, so it must not block, and if it raises, the exception
        reaches the publisher (wrap it)."""
        self._inline = handler

    def put(self, item: HubItem) -> None:
        if self.closed:
            return
        if isinstance(item, MediaPacket):
            if self._inline is not None and not self._items:
                self._inline(item)
                return
            if not self._accept_media(item):
                return
            self._media += 1
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _accept_media(self, packet: MediaPacket) -> bool:
        if self._dropping:
            resumable = self._media <= self.max_packets // 2 and (
                not self.stream_has_video or (packet.kind == "video" and packet.keyframe)
            )
            if not resumable:
                self._count_drop()
                return False
            self._dropping = False
            self._items.append(Gap(self._dropped_in_gap))
            self._dropped_in_gap = 0
            return True
        if self._media >= self.max_packets:
            log.warning("consumer %s fell behind; dropping media until a keyframe", self.name)
            self._dropping = True
            self._count_drop()
            return False
        return True

    def _count_drop(self) -> None:
        self.dropped += 1
        self._dropped_in_gap += 1

    async def get(self) -> HubItem:
        while not self._items:
            if self.closed:
                return StreamEnded("closed")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if isinstance(item, MediaPacket):
            self._media -= 1
        return item

    def close(self) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Hub:
    """Holds the current tracks and hands every item to every subscription."""

    def __init__(self) -> None:
        self.tracks: tuple[TrackInfo, ...] = ()
        self._subscriptions: list[Subscription] = []

    def subscribe(self, name: str, max_packets: int = 2000) -> Subscription:
        subscription = Subscription(name, max_packets)
        subscription.stream_has_video = any(t.kind == "video" for t in self.tracks)
        if self.tracks:
            subscription.put(TracksChanged(self.tracks))
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def set_tracks(self, tracks: tuple[TrackInfo, ...]) -> None:
        if tracks == self.tracks:
            return
        self.tracks = tracks
        has_video = any(t.kind == "video" for t in tracks)
        for subscription in self._subscriptions:
            subscription.stream_has_video = has_video
        self._put(TracksChanged(tracks))

    def publisher_changed(self) -> None:
        self._put(PublisherChanged())

    def push(self, packet: MediaPacket) -> None:
        for subscription in self._subscriptions:
            subscription.put(packet)

    def end(self, reason: str) -> None:
        self._put(StreamEnded(reason))

    def _put(self, item: HubItem) -> None:
        for subscription in self._subscriptions:
            subscription.put(item)
