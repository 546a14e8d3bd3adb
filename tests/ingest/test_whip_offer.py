"""Checks on WHIP offers before any WebRTC object exists."""

from __future__ import annotations

import pytest

from live.ingest.whip.offer import OfferRefused, choose, parse_offer

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
    sdp = HEADER + section("audio", "sendonly", "opus/48000/2") + section(
        "video", "sendonly", "VP8/90000", "rtx/90000", "H264/90000"
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
    ["", "hello", "v=0\r\n", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", HEADER + "m=video\r\n",
     HEADER + "garbage line\r\n" + section("video", "sendonly", "VP8/90000")],
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
        HEADER + section("audio", "sendonly", "opus/48000/2")
        + section("video", "sendonly", "H264/90000"),
        "passthrough",
    )
    assert audio.param == "audio"
    only_h264 = choose(parse_offer(HEADER + section("video", "sendonly", "H264/90000")),
                       "passthrough")
    assert only_h264.mime_types == {"video": ["video/H264"]}


def test_ladder_takes_what_auto_takes():
    sdp = HEADER + section("video", "sendrecv", "VP8/90000")
    assert choose(parse_offer(sdp), "ladder").mime_types == {"video": ["video/VP8"]}
