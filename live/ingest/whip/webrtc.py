"""Everything WHIP needs from aiortc/aioice that they do not offer as API.

aiortc is a complete WebRTC endpoint, made for peers that decode what they
receive. A WHIP ingest server wants less and a little different, and this module
is the one place that reaches inside (aiortc 1.16, aioice 0.13: pinned, and
`tests/ingest/test_whip_webrtc.py` fails if an upgrade moves what we rely on):

- Candidates. aioice announces every interface address except loopback, each on a
  random port. We bind where the settings say (an address, a UDP port range) and
  announce the configured address (a public one behind NAT, or 127.0.0.1).
- Consent. aioice ends the connection when 6 consent checks in a row go
  unanswered (RFC 7675), and FFmpeg's WHIP muxer stops answering STUN once DTLS is
  up: its sessions would die after about 30 s. We skip consent checks; a silent
  publisher is noticed by the absence of media instead (see `FrameTap`).
- Frames before the decoder. aiortc depacketises RTP into whole frames and hands
  them to a decoder thread. We take the frames there, with their RTP timestamps,
  so H.264 can be repackaged without decoding, and everything else is decoded by
  our own transcoders.
- Codecs. aiortc only accepts H.264 constrained-baseline; OBS and FFmpeg send
  main or high profile. We add those (repackaging does not care about profiles).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aioice
import aiortc
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import StunProtocol, get_host_addresses
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpTransceiver
from aiortc.codecs import CODECS
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters
from aiortc.rtp import RtcpByePacket, RtcpSrPacket

log = logging.getLogger(__name__)

AIORTC_SERIES = "1.16."
AIOICE_SERIES = "0.13."
# H.264 profiles we accept besides aiortc's own constrained baseline (42001f, 42e01f):
# main, high and constrained high, as OBS, FFmpeg and Chromium offer them.
_EXTRA_H264_PROFILES = ("4d001f", "64001f", "640c1f", "4d0032", "640032", "640c32")
# Seconds between 1900 (NTP) and 1970 (Unix).
NTP_UNIX_OFFSET = 2_208_988_800


class PortRangeExhausted(ConnectionError):
    """No UDP port of the configured range is free."""


@dataclass(frozen=True, slots=True)
class IceSettings:
    """Where WHIP sessions take their UDP sockets, and what they announce."""

    bind_host: str = "0.0.0.0"
    # The address written into host candidates; "" means the addresses bound.
    candidate_host: str = ""
    # Inclusive UDP port range; (0, 0) lets the system pick.
    port_min: int = 0
    port_max: int = 0

    def sockets(self) -> list[tuple[str, str]]:
        """(address to bind, address to announce) for each socket of a session."""
        wildcard = self.bind_host in ("", "0.0.0.0", "::")
        if self.candidate_host:
            return [(self.bind_host or "0.0.0.0", self.candidate_host)]
        if not wildcard:
            return [(self.bind_host, self.bind_host)]
        addresses = get_host_addresses(use_ipv4=True, use_ipv6=False) or ["127.0.0.1"]
        return [(address, address) for address in addresses]


def check_versions() -> None:
    """Refuse to run on an aiortc/aioice whose internals we have not checked."""
    if not aiortc.__version__.startswith(AIORTC_SERIES):
        raise RuntimeError(f"WHIP needs aiortc {AIORTC_SERIES}x, found {aiortc.__version__}")
    if not aioice.__version__.startswith(AIOICE_SERIES):
        raise RuntimeError(f"WHIP needs aioice {AIOICE_SERIES}x, found {aioice.__version__}")


def install_codecs() -> None:
    """Let aiortc accept H.264 main/high profiles (idempotent; process-wide, and only
    WHIP uses aiortc here)."""
    video = CODECS["video"]
    present = {
        str(c.parameters.get("profile-level-id", "")).lower()
        for c in video
        if c.mimeType.lower() == "video/h264"
    }
    payload_type = max(c.payloadType for c in video) + 1
    for profile in _EXTRA_H264_PROFILES:
        if profile in present:
            continue
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/H264",
                clockRate=90000,
                payloadType=payload_type,
                rtcpFeedback=[
                    RTCRtcpFeedback(type="nack"),
                    RTCRtcpFeedback(type="nack", parameter="pli"),
                    RTCRtcpFeedback(type="goog-remb"),
                ],
                parameters={
                    "level-asymmetry-allowed": "1",
                    "packetization-mode": "1",
                    "profile-level-id": profile,
                },
            )
        )
        video.append(
            RTCRtpCodecParameters(
                mimeType="video/rtx",
                clockRate=90000,
                payloadType=payload_type + 1,
                parameters={"apt": payload_type},
            )
        )
        payload_type += 2


def new_peer_connection() -> RTCPeerConnection:
    """A peer connection that contacts no STUN server of its own (aiortc's default
    is a public one): our candidates come from IceSettings."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def add_receiver(pc: RTCPeerConnection, kind: str, mime_types: list[str]) -> RTCRtpTransceiver:
    """A recvonly transceiver accepting only `mime_types` (e.g. ["video/H264",
    "video/VP8"]), in that order of preference; retransmissions (RTX) allowed."""
    transceiver = pc.addTransceiver(kind, direction="recvonly")
    capabilities = RTCRtpReceiver.getCapabilities(kind).codecs
    wanted = [m.lower() for m in mime_types]
    preferred = sorted(
        (c for c in capabilities if c.mimeType.lower() in wanted),
        key=lambda c: wanted.index(c.mimeType.lower()),
    )
    preferred += [c for c in capabilities if c.mimeType.lower().endswith("/rtx")]
    transceiver.setCodecPreferences(preferred)
    return transceiver


def apply_ice_settings(pc: RTCPeerConnection, settings: IceSettings) -> None:
    """Call between setRemoteDescription and setLocalDescription (which gathers)."""
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport.iceGatherer._connection
        if not isinstance(connection, _WhipIceConnection):
            connection.__class__ = _WhipIceConnection
        connection._live_ice_settings = settings  # type: ignore[attr-defined]


class _WhipIceConnection(aioice.Connection):
    """aioice's Connection with our candidates and without consent expiry."""

    _live_ice_settings: IceSettings

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[Candidate]:
        settings = self._live_ice_settings
        loop = asyncio.get_running_loop()
        candidates = []
        for bind_host, announced in settings.sockets():
            _, protocol = await _bind_udp(
                loop, lambda: StunProtocol(self), bind_host, settings.port_min, settings.port_max
            )
            port = protocol.transport.get_extra_info("sockname")[1]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", announced),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=announced,
                port=port,
                type="host",
            )
            self._protocols.append(protocol)
            candidates.append(protocol.local_candidate)
        return candidates

    async def query_consent(self) -> None:
        """No consent checks: WHIP clients such as FFmpeg stop answering them."""
        return None


async def _bind_udp(loop, factory, host: str, port_min: int, port_max: int):
    if not port_min and not port_max:
        return await loop.create_datagram_endpoint(factory, local_addr=(host, 0))
    ports = list(range(port_min, port_max + 1))
    start = random.randrange(len(ports))
    for port in ports[start:] + ports[:start]:
        try:
            return await loop.create_datagram_endpoint(factory, local_addr=(host, port))
        except OSError:
            continue
    raise PortRangeExhausted(f"no free UDP port in {port_min}-{port_max} on {host}")


def local_candidates(pc: RTCPeerConnection) -> list[tuple[str, int]]:
    """(host, port) of every local candidate (for tests and logs)."""
    seen = []
    for transceiver in pc.getTransceivers():
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        for candidate in gatherer.getLocalCandidates():
            if (candidate.ip, candidate.port) not in seen:
                seen.append((candidate.ip, candidate.port))
    return seen


# -- frames before the decoder -------------------------------------------------------

FrameCallback = Callable[[str, bytes, int], None]  # codec name, frame, RTP timestamp
ReportCallback = Callable[[float, int], None]  # sender's wall clock (Unix s), RTP timestamp


class _IdentityMapper:
    """Stands in for aiortc's TimestampMapper: we want the sender's RTP timestamps
    untouched, to line them up with its RTCP sender reports."""

    def map(self, timestamp: int) -> int:
        return timestamp


class _TapQueue:
    """Stands in for the receiver's decoder queue: frames go to us, and the idle
    decoder thread only ever receives the stop signal."""

    def __init__(self, on_frame: FrameCallback) -> None:
        self._on_frame = on_frame
        self._stop: queue.Queue[None] = queue.Queue()

    def put(self, item) -> None:
        if item is None:
            self._stop.put(None)
            return
        codec, frame = item
        try:
            self._on_frame(codec.name.lower(), frame.data, frame.timestamp)
        except Exception:
            log.exception("WHIP frame handler failed")

    def get(self, *args, **kwargs):
        return self._stop.get()


class FrameTap:
    """Takes one receiver's depacketised frames (and sender reports) for us.

    Install right after setRemoteDescription: aiortc starts the decoder thread
    with whatever decoder queue the receiver holds when media begins.
    """

    def __init__(
        self, receiver: RTCRtpReceiver, on_frame: FrameCallback, on_report: ReportCallback
    ) -> None:
        self.receiver = receiver
        self.last_packet_at: float | None = None
        self.ssrc: int | None = None
        self.bye = False
        self._on_report = on_report
        receiver._RTCRtpReceiver__decoder_queue = _TapQueue(on_frame)  # type: ignore[attr-defined]
        receiver._RTCRtpReceiver__timestamp_mapper = _IdentityMapper()  # type: ignore[attr-defined]
        handle_rtp = receiver._handle_rtp_packet
        handle_rtcp = receiver._handle_rtcp_packet

        async def on_rtp(packet, arrival_time_ms: int) -> None:
            self.last_packet_at = time.monotonic()
            if self.ssrc is None and packet.payload:
                self.ssrc = packet.ssrc
            await handle_rtp(packet, arrival_time_ms)

        async def on_rtcp(packet) -> None:
            self.last_packet_at = time.monotonic()
            if isinstance(packet, RtcpSrPacket):
                ntp = packet.sender_info.ntp_timestamp
                seconds = (ntp >> 32) + (ntp & 0xFFFFFFFF) / 2**32 - NTP_UNIX_OFFSET
                self._on_report(seconds, packet.sender_info.rtp_timestamp)
            elif isinstance(packet, RtcpByePacket):
                self.bye = True
            await handle_rtcp(packet)

        receiver._handle_rtp_packet = on_rtp  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = on_rtcp  # type: ignore[method-assign]

    async def request_keyframe(self) -> None:
        """Send a PLI (RFC 4585 6.3.1) to the sender of this track."""
        if self.ssrc is not None:
            await self.receiver._send_rtcp_pli(self.ssrc)


def keep_first_codec(transceiver: RTCRtpTransceiver) -> str | None:
    """After setRemoteDescription: answer with only the best common codec (and its
    RTX), so the sender cannot switch codecs mid-stream. Its mime type, or None."""
    codecs = transceiver._codecs
    first = next((c for c in codecs if not c.mimeType.lower().endswith("/rtx")), None)
    if first is None:
        return None
    transceiver._codecs = [first] + [
        c
        for c in codecs
        if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == first.payloadType
    ]
    return first.mimeType
