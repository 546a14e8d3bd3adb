"""What live/ingest/whip/webrtc.py relies on inside aiortc/aioice, tested against a
real aiortc publisher on loopback. If an upgrade moves any of it, these fail."""

from __future__ import annotations

import asyncio
import socket

import aioice
import aioice.ice
import aioice.stun
import aiortc
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtp import RtcpPsfbPacket
from waiting import eventually

from live.ingest.whip import webrtc
from live.ingest.whip.webrtc import (
    FrameTap,
    IceSettings,
    PortRangeExhausted,
    add_receiver,
    apply_ice_settings,
    keep_first_codec,
    local_candidates,
    new_peer_connection,
)
from live.media.avc import AccessUnit

LOOPBACK = IceSettings(bind_host="127.0.0.1")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_pinned_versions():
    webrtc.check_versions()
    assert aiortc.__version__.startswith("1.16.")
    assert aioice.__version__.startswith("0.13.")


def test_aioice_still_hides_loopback_and_expires_consent():
    """The behaviours we work around are still there (if not, simplify webrtc.py)."""
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    assert aioice.ice.CONSENT_FAILURES * aioice.ice.CONSENT_INTERVAL <= 60


class _Publisher:
    """An aiortc peer that publishes like a WHIP client: sendonly audio + video."""

    def __init__(self, video_mime: str = "video/H264") -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        video = self.pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        video.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == video_mime]
        )
        self.video_sender = video.sender
        apply_ice_settings(self.pc, LOOPBACK)
        self.plis = 0
        handle = video.sender._handle_rtcp_packet

        async def on_rtcp(packet):
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == 1:
                self.plis += 1
            await handle(packet)

        video.sender._handle_rtcp_packet = on_rtcp

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp


async def _answer(offer: str, ice: IceSettings, frames: list, reports: list):
    pc = new_peer_connection()
    add_receiver(pc, "audio", ["audio/opus"])
    add_receiver(pc, "video", ["video/H264", "video/VP8"])
    await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    apply_ice_settings(pc, ice)
    taps = {}
    mimes = {}
    for transceiver in pc.getTransceivers():
        kind = transceiver.kind
        mimes[kind] = keep_first_codec(transceiver)
        taps[kind] = FrameTap(
            transceiver.receiver,
            lambda codec, data, ts, kind=kind: frames.append((kind, codec, data, ts)),
            lambda wall, ts, kind=kind: reports.append((kind, wall, ts)),
        )
    await pc.setLocalDescription(await pc.createAnswer())
    return pc, taps, mimes


async def test_frames_are_taken_before_the_decoder_with_raw_rtp_timestamps():
    webrtc.install_codecs()
    port = _free_udp_port()
    ice = IceSettings(
        bind_host="127.0.0.1", candidate_host="127.0.0.1", port_min=port, port_max=port
    )
    publisher = _Publisher()
    frames, reports = [], []
    pc, taps, mimes = await _answer(await publisher.offer(), ice, frames, reports)
    try:
        assert local_candidates(pc) == [("127.0.0.1", port)]
        answer = pc.localDescription.sdp
        assert f"127.0.0.1 {port} typ host" in answer
        assert "a=recvonly" in answer and "a=group:BUNDLE" in answer
        video_section = answer.split("m=video", 1)[1]
        rtpmaps = [line for line in video_section.splitlines() if line.startswith("a=rtpmap")]
        assert rtpmaps[0].endswith("H264/90000")
        assert all("rtx" in line for line in rtpmaps[1:])  # one codec (and its RTX) only
        assert mimes == {"audio": "audio/opus", "video": "video/H264"}
        await publisher.pc.setRemoteDescription(pc.localDescription)

        both = {"audio", "video"}  # RTCP reports come at random intervals, per track
        await eventually(
            lambda: {f[0] for f in frames} == both and {r[0] for r in reports} == both, 10.0
        )
        video = [f for f in frames if f[0] == "video"]
        assert video[0][1] == "h264" and video[0][2].startswith(b"\x00\x00\x00\x01")
        assert AccessUnit(video[0][2]).keyframe  # depacketised, not decoded
        assert any(f[1] == "opus" for f in frames)
        # aiortc would have rebased timestamps to 0; we see the sender's random ones
        assert video[0][3] != 0
        assert {kind for kind, _, _ in reports} == {"audio", "video"}
        # the decoder thread never got a frame
        for transceiver in pc.getTransceivers():
            assert transceiver.receiver.track._queue.qsize() == 0

        before = publisher.plis
        await taps["video"].request_keyframe()
        await eventually(lambda: publisher.plis > before, 3)
        assert taps["video"].last_packet_at is not None
    finally:
        await publisher.pc.close()
        await pc.close()


class _ConsentKeepingConnection(webrtc._WhipIceConnection):
    query_consent = aioice.Connection.query_consent


@pytest.mark.parametrize("consent_checks", [False, True])
async def test_a_peer_that_stops_answering_stun_is_not_dropped(monkeypatch, consent_checks):
    """FFmpeg's muxer ignores STUN after DTLS. With our connection class the
    session stays up; with aioice's consent checks (the control) it would not."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.05)
    monkeypatch.setattr(aioice.stun, "RETRY_RTO", 0.05)
    webrtc.install_codecs()
    publisher = _Publisher()
    frames, reports = [], []
    pc, _, _ = await _answer(await publisher.offer(), LOOPBACK, frames, reports)
    connection = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer._connection
    if consent_checks:
        connection.__class__ = _ConsentKeepingConnection
    try:
        await publisher.pc.setRemoteDescription(pc.localDescription)
        await eventually(lambda: pc.connectionState == "connected", 10.0)
        publisher_ice = publisher.pc.getTransceivers()[0].sender.transport.transport
        publisher_ice._connection.request_received = lambda *args: None  # mute for STUN
        await asyncio.sleep(1.5)  # about 25 unanswered checks' worth
        alive = pc.connectionState == "connected"
        assert alive is not consent_checks
    finally:
        await publisher.pc.close()
        await pc.close()


async def test_a_full_port_range_fails_the_gathering():
    webrtc.install_codecs()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        publisher = _Publisher()
        pc = new_peer_connection()
        add_receiver(pc, "video", ["video/H264"])
        add_receiver(pc, "audio", ["audio/opus"])
        await pc.setRemoteDescription(RTCSessionDescription(await publisher.offer(), "offer"))
        apply_ice_settings(pc, IceSettings(bind_host="127.0.0.1", port_min=port, port_max=port))
        try:
            with pytest.raises(PortRangeExhausted):
                await pc.setLocalDescription(await pc.createAnswer())
        finally:
            await publisher.pc.close()
            await pc.close()


def test_main_and_high_profile_h264_are_accepted():
    webrtc.install_codecs()
    webrtc.install_codecs()  # idempotent
    profiles = [
        str(c.parameters.get("profile-level-id"))
        for c in aiortc.codecs.CODECS["video"]
        if c.mimeType == "video/H264"
    ]
    assert len(profiles) == len(set(profiles))
    assert {"42e01f", "4d001f", "64001f", "640c1f"} <= set(profiles)
