"""WHIP with FFmpeg's own WHIP muxer (through PyAV), and every refusal of the endpoint."""

from __future__ import annotations

import json
import time
from datetime import datetime

import m3u8
import pytest
from harness import ffprobe_streams, wait_for
from test_whip_support import ffmpeg_whip, make_certificate, offer_sdp, start_live, whip_request

pytestmark = pytest.mark.e2e


def _history(live, livestream_id):
    return live.api("GET", f"/v1/livestreams/{livestream_id}/history")[1]["data"]


def _media_sequence(live, media_url) -> int:
    playlist = m3u8.loads(live.get(media_url)[1].decode())
    return playlist.media_sequence + len(playlist.segments)


def _ended_at(session) -> float:
    return datetime.fromisoformat(session["ended_at"].replace("Z", "+00:00")).timestamp()


def test_ffmpeg_whip_plays_for_over_a_minute_and_delete_ends_it(processes, tmp_path):
    """H.264 passes through, Opus becomes AAC; the session outlives aioice's 30 s
    consent expiry; the muxer's DELETE ends the session at once, despite the window."""
    live = start_live(processes, tmp_path / "data")
    stream = live.create_livestream(reconnect_window_s=10)
    cert = make_certificate(tmp_path)
    publisher = ffmpeg_whip(processes, live, stream["stream_key"], cert, "--seconds", "66")
    media_url = live.wait_playable(stream["playback_id"], timeout=20)
    streams = {s["codec_type"]: s for s in ffprobe_streams(media_url)}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert streams["audio"]["codec_name"] == "aac"
    session = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["current_session"]
    assert session["protocol"] == "whip"
    assert session["encoder"].startswith("Lavf")
    assert session["audio"]["codec"] == "aac" and session["video"]["codec"] == "h264"

    time.sleep(62)  # past aioice's consent expiry (6 checks x 5 s)
    assert publisher.poll() is None, publisher.stderr.read()
    detail = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]
    assert detail["status"] == "live" and detail["current_session"]["ended_at"] is None
    before = _media_sequence(live, media_url)
    wait_for(lambda: _media_sequence(live, media_url) > before + 1, 5, message="new segments")
    streams = {s["codec_type"]: s for s in ffprobe_streams(media_url)}
    assert set(streams) == {"video", "audio"}

    assert publisher.wait(30) == 0, publisher.stderr.read()
    exited = time.time()
    wait_for(lambda: _history(live, stream["id"])[0]["ended_at"], 5, message="session end")
    ended = _history(live, stream["id"])[0]
    assert ended["end_reason"] == "publisher_disconnected"
    assert _ended_at(ended) - exited < 3  # not after the 10 s reconnect window
    assert len(_history(live, stream["id"])) == 1
    playlist = live.get(media_url)[1].decode()
    assert "#EXT-X-ENDLIST" in playlist


def test_publisher_that_vanishes_is_noticed_within_10_s(processes, tmp_path):
    live = start_live(processes, tmp_path / "data")
    stream = live.create_livestream(reconnect_window_s=0)
    cert = make_certificate(tmp_path)
    publisher = ffmpeg_whip(
        processes, live, stream["stream_key"], cert, "--seconds", "30", "--vanish-after", "4"
    )
    live.wait_playable(stream["playback_id"], timeout=20)
    publisher.wait(20)  # killed itself: no DELETE, no DTLS close
    vanished = time.time()
    wait_for(lambda: _history(live, stream["id"])[0]["ended_at"], 12, message="session end")
    ended = _history(live, stream["id"])[0]
    assert ended["end_reason"] == "timeout"
    assert _ended_at(ended) - vanished <= 10


def test_whip_refusals_and_resource_methods(processes, tmp_path):
    live = start_live(processes, tmp_path / "data", LIVE_WHIP_ICE_SERVERS="stun:stun.example.net")
    stream = live.create_livestream(reconnect_window_s=0)
    sdp_headers = {"Content-Type": "application/sdp"}
    auth = {**sdp_headers, "Authorization": f"Bearer {stream['stream_key']}"}
    good_offer = offer_sdp("audio sendonly opus/48000/2", "video sendonly H264/90000")

    def refused(status, code, body=good_offer, headers=auth):
        got_status, raw, got_headers = whip_request(live, "POST", body=body, headers=headers)
        assert got_status == status, raw
        assert json.loads(raw)["error"]["code"] == code
        assert got_headers.get("Access-Control-Allow-Origin") == "*"
        return got_headers

    no_key = refused(401, "unauthorized", headers=sdp_headers)
    assert no_key["WWW-Authenticate"].startswith("Bearer")
    refused(401, "unauthorized", headers={**sdp_headers, "Authorization": "Bearer sk_nope"})
    refused(415, "unsupported_media_type", headers={**auth, "Content-Type": "application/json"})
    refused(400, "invalid_sdp", body=b"hello, this is not SDP")
    refused(
        422,
        "too_many_tracks",
        body=offer_sdp("video sendonly H264/90000", "video sendonly H264/90000"),
    )
    refused(422, "invalid_sdp", body=offer_sdp("video recvonly H264/90000"))
    refused(422, "unsupported_codec", body=offer_sdp("video sendonly AV1/90000"))
    strict = live.create_livestream(reconnect_window_s=0, transcode="passthrough")
    strict_auth = {**sdp_headers, "Authorization": f"Bearer {strict['stream_key']}"}
    refused(422, "unsupported_codec", headers=strict_auth)  # Opus cannot pass through

    status, _, headers = whip_request(live, "OPTIONS", headers={"Origin": "http://example.org"})
    assert status == 204
    assert headers["Accept-Post"] == "application/sdp"
    assert "Location" in headers["Access-Control-Expose-Headers"]
    assert headers["Link"] == '<stun:stun.example.net>; rel="ice-server"'
    assert whip_request(live, "DELETE", "/whip/nosuchsession")[0] == 404

    # a real publisher holds the key: a second one is refused
    cert = make_certificate(tmp_path)
    publisher = ffmpeg_whip(processes, live, stream["stream_key"], cert, "--seconds", "12")
    live.wait_playable(stream["playback_id"], timeout=20)
    refused(409, "livestream_live")
    assert len(_history(live, stream["id"])) == 1  # the refusal made no session

    status, body = live.api("PATCH", f"/v1/livestreams/{stream['id']}/ban", {"reason": "test"})
    assert status == 200, body
    publisher.wait(15)
    wait_for(lambda: _history(live, stream["id"])[0]["ended_at"], 5, message="ban to end it")
    assert _history(live, stream["id"])[0]["end_reason"] == "banned"
    refused(403, "livestream_banned")
