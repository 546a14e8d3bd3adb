"""One WHIP publish: a peer connection, its frame taps, and the media pipeline.

The session lives from the POST until DELETE, a manager command (ban, kick,
takeover, shutdown), the peer connection failing, an RTCP BYE, or silence: with
consent checks off (see webrtc.py), a publisher that vanished is one that sends
no RTP/RTCP for `idle_timeout_s`. One whose ICE and DTLS never connect (a client that
posts offers and walks away) holds its UDP port and session for `connect_timeout_s`
after the offer, no longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiortc import RTCSessionDescription
from aiortc.exceptions import OperationError

from live.broadcast.publisher import Publisher
from live.ingest.whip.media import WhipMedia
from live.ingest.whip.offer import Choice, OfferRefused
from live.ingest.whip.webrtc import (
    FrameTap,
    IceSettings,
    add_receiver,
    apply_ice_settings,
    keep_first_codec,
    new_peer_connection,
)
from live.limits import LimitHits
from live.transcode.video import H264Settings

log = logging.getLogger(__name__)

_TICK_S = 0.1


class WhipSession:
    def __init__(
        self,
        session_id: str,
        publisher: Publisher,
        choice: Choice,
        *,
        ice: IceSettings,
        idle_timeout_s: float,
        connect_timeout_s: float,
        keyframe_interval_s: float,
        on_closed: Callable[[WhipSession], None],
        video_settings: H264Settings | None = None,
        limit_hits: LimitHits | None = None,
    ) -> None:
        self.id = session_id
        self._limit_hits = limit_hits or LimitHits()
        self.publisher = publisher
        self.choice = choice
        self._ice = ice
        self._idle_timeout_s = idle_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._keyframe_interval_s = keyframe_interval_s
        self._video_settings = video_settings
        self._on_closed = on_closed
        self.pc = new_peer_connection()
        self.taps: dict[str, FrameTap] = {}
        self.media: WhipMedia | None = None
        self.codecs: dict[str, str] = {}
        self.created_at = time.monotonic()
        self.end_reason: str | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._finishing: asyncio.Task[None] | None = None

    async def negotiate(self, offer: str) -> str:
        """The SDP answer (recvonly, bundled, every candidate in it)."""
        for kind in self.choice.kinds:
            add_receiver(self.pc, kind, self.choice.mime_types[kind])
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        except OperationError as error:  # well-formed, but nothing in common
            raise OfferRefused(
                422, "unsupported_codec", f"The offer cannot be answered: {error}"
            ) from error
        except Exception as error:
            # aiortc's SDP parser refuses what it cannot read with whatever comes up:
            # ValueError, an assert, a StopIteration (become RuntimeError) for an
            # a=fmtp naming no codec of its section. All of it is the offer's fault.
            message = f"The SDP offer is not usable: {error or type(error).__name__}"
            raise OfferRefused(400, "invalid_sdp", message) from error
        apply_ice_settings(self.pc, self._ice)
        for transceiver in self.pc.getTransceivers():
            mime = keep_first_codec(transceiver)
            if mime is None:
                raise OfferRefused(
                    422,
                    "unsupported_codec",
                    f"No usable {transceiver.kind} codec in the offer.",
                    transceiver.kind,
                )
            kind = transceiver.kind
            self.codecs[kind] = self.choice.codec_name(kind, mime)
        self.media = WhipMedia(
            self.publisher,
            video_codec=self.codecs.get("video"),
            audio_codec=self.codecs.get("audio"),
            keyframe_interval_s=self._keyframe_interval_s,
            video_settings=self._video_settings,
        )
        media = self.media
        for transceiver in self.pc.getTransceivers():
            kind = transceiver.kind
            self.taps[kind] = FrameTap(
                transceiver.receiver,
                lambda codec, data, ts, kind=kind: media.on_frame(kind, codec, data, ts),
                lambda wall, ts, kind=kind: media.on_report(kind, wall, ts),
            )
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        self._ticker = asyncio.create_task(self._tick(), name=f"whip-{self.id}")
        return self.pc.localDescription.sdp

    async def _tick(self) -> None:
        assert self.media is not None
        video_tap = self.taps.get("video")
        while True:
            await asyncio.sleep(_TICK_S)
            if self.media.tick() and video_tap is not None:
                with contextlib.suppress(Exception):
                    await video_tap.request_keyframe()
            reason = self._ended()
            if reason is not None:
                self.finish_soon(reason)
                return

    def _ended(self) -> str | None:
        if self.pc.connectionState in ("failed", "closed"):
            return "publisher_disconnected"
        if any(tap.bye for tap in self.taps.values()):
            return "publisher_disconnected"
        heard = [tap.last_packet_at for tap in self.taps.values() if tap.last_packet_at]
        now = time.monotonic()
        if heard:
            if now - max(heard) >= self._idle_timeout_s:
                return "timeout"
        elif now - self.created_at >= self._connect_timeout_s:
            self._limit_hits.hit(
                "whip_connect_timeout_s",
                f"WHIP session {self.id} from {self.publisher.remote_addr} dropped: no media "
                f"within {self._connect_timeout_s:g} s of its offer (ICE/DTLS did not connect)",
                level=logging.INFO,
            )
            return "timeout"
        return None

    def finish_soon(self, reason: str) -> asyncio.Task[None]:
        """End the session (once; later calls get the same task). Safe from callbacks
        such as the manager's `stop`, and from a request that may be cancelled."""
        if self._finishing is None:
            self._finishing = asyncio.get_running_loop().create_task(self._finish(reason))
        return self._finishing

    async def finish(self, reason: str) -> None:
        await asyncio.shield(self.finish_soon(reason))

    async def _finish(self, reason: str) -> None:
        """Media threads, peer connection, then the Publisher."""
        self.end_reason = reason
        log.info("WHIP session %s ends: %s", self.id, reason)
        try:
            if self._ticker is not None:
                self._ticker.cancel()
            if self.media is not None:
                await self.media.close()
            with contextlib.suppress(Exception):
                await self.pc.close()
            await self.publisher.end(reason)
        finally:
            self._on_closed(self)
