"""Checks on WHIP offers before any WebRTC object exists."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from live.ingest.whip.offer import OfferRefused, choose, parse_offer
from live.ingest.whip.session import WhipSession
from live.ingest.whip.webrtc import IceSettings

HEADER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def section(kind, direction="sendonly", *codecs):
    lines = [f"m={kind} 9 UDP/TLS/RTP/SAVPF 96", f"a={direction}"]
    lines += [f"a=rtpmap:{96 + i} {codec}" for i, codec in enumerate(codecs)]
    return "\r\n".join(lines) + "\r\n"


def refusal(sdp, transcode="auto") -> OfferRefused:
    with pytest.raises(OfferRefused) as info:
        choose(parse_offer(sdp), transcode)
    return info.value


def test_browser_offer_prefers_h264_then_vp8():
    sdp = (
        HEADER
        + section("audio", "sendonly", "opus/48000/2")
        + section("video", "sendonly", "VP8/90000", "rtx/90000", "H264/90000")
    )
    choice = choose(parse_offer(sdp), "auto")
    assert choice.kinds == ("audio", "video")
    assert choice.mime_types == {"audio": ["audio/opus"], "video": ["video/H264", "video/VP8"]}
    assert choice.codec_name("video", "video/VP8") == "vp8"
    assert choice.codec_name("audio", "audio/opus") == "opus"


def test_session_level_direction_applies_to_sections_without_one():
    sdp = HEADER + "a=sendonly\r\n" + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"
    assert parse_offer(sdp)[0].direction == "sendonly"


@pytest.mark.parametrize(
    "body",
    [
        "",
        "hello",
        "v=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n",
        HEADER + "m=video\r\n",
        HEADER + "garbage line\r\n" + section("video", "sendonly", "VP8/90000"),
    ],
)
def test_not_sdp_is_400(body):
    error = refusal(body)
    assert (error.status, error.code) == (400, "invalid_sdp")


def test_oversized_offer_is_400():
    assert refusal(HEADER + "a=x:" + "y" * 70000 + "\r\n").status == 400


def test_two_video_tracks_are_422():
    error = refusal(HEADER + section("video", "sendonly", "VP8/90000") * 2)
    assert (error.status, error.code) == (422, "too_many_tracks")


@pytest.mark.parametrize("direction", ["recvonly", "inactive"])
def test_offer_that_does_not_send_is_422(direction):
    error = refusal(HEADER + section("video", direction, "VP8/90000"))
    assert (error.status, error.code) == (422, "invalid_sdp")


def test_data_channels_are_422():
    sdp = HEADER + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    assert refusal(sdp).code == "unsupported_media"


def test_unknown_codec_is_422_naming_the_kind():
    error = refusal(HEADER + section("video", "sendonly", "AV1/90000"))
    assert (error.status, error.code, error.param) == (422, "unsupported_codec", "video")


def test_passthrough_refuses_vp8_and_opus_with_a_hint():
    video = refusal(HEADER + section("video", "sendonly", "VP8/90000"), "passthrough")
    assert video.code == "unsupported_codec" and '"auto"' in video.message
    audio = refusal(
        HEADER
        + section("audio", "sendonly", "opus/48000/2")
        + section("video", "sendonly", "H264/90000"),
        "passthrough",
    )
    assert audio.param == "audio"
    only_h264 = choose(
        parse_offer(HEADER + section("video", "sendonly", "H264/90000")), "passthrough"
    )
    assert only_h264.mime_types == {"video": ["video/H264"]}


def test_ladder_takes_what_auto_takes():
    sdp = HEADER + section("video", "sendrecv", "VP8/90000")
    assert choose(parse_offer(sdp), "ladder").mime_types == {"video": ["video/VP8"]}


# Found by fuzzing (fuzz/whip.py): offers our checks pass but aiortc's SDP parser
# cannot read. It fails with a StopIteration (an a=fmtp or a payload type naming no
# codec of its section) or an assert, which were answered as "no codec in common"
# (422); the offer is malformed, so the answer is 400 invalid_sdp.
_H264 = "a=rtpmap:96 H264/90000\r\n"
_UNREADABLE_BY_AIORTC = [
    # a=fmtp for payload type 99, which no a=rtpmap of the section declares
    HEADER
    + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n"
    + _H264
    + "a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n",
    # a payload type beyond 255 on the m= line
    HEADER + "m=video 9 UDP/TLS/RTP/SAVPF 96 300\r\na=sendonly\r\n" + _H264,
]


@pytest.mark.parametrize("sdp", _UNREADABLE_BY_AIORTC)
async def test_an_offer_aiortc_cannot_parse_is_400_not_422(sdp):
    choice = choose(parse_offer(sdp), "auto")  # our own checks let it through
    session = WhipSession(
        "s1", SimpleNamespace(), choice, ice=IceSettings(), idle_timeout_s=5,
        connect_timeout_s=5, keyframe_interval_s=1, on_closed=lambda session: None,
    )  # fmt: skip
    try:
        with pytest.raises(OfferRefused) as info:
            await session.negotiate(sdp)
    finally:
        await session.pc.close()
    assert (info.value.status, info.value.code) == (400, "invalid_sdp")
