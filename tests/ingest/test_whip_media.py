"""The WHIP media pipeline: tapped frames in, Publisher calls out."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av

from live.ingest.whip.media import WhipMedia
from live.media.avc import split_avcc


class FakePublisher:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def set_track(self, track) -> None:
        self.calls.append(("track", track))

    def push(self, packet) -> None:
        self.calls.append(("packet", packet))

    @property
    def packets(self):
        return [c[1] for c in self.calls if c[0] == "packet"]


def _encoded(codec: str, count: int, options: dict[str, str]) -> list[bytes]:
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 180, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.options = options
    encoder.open()
    out = []
    for index in range(count):
        frame = av.VideoFrame(320, 180, "yuv420p")
        frame.pts = index
        out += [bytes(p) for p in encoder.encode(frame)]
    return out


def _opus(count: int) -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = Fraction(1, 48000)
    encoder.open()
    out = []
    for index in range(count):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate, frame.pts = 48000, index * 960
        out += [bytes(p) for p in encoder.encode(frame)]
    return out


async def _settle(media: WhipMedia, publisher: FakePublisher, packets: int) -> None:
    for _ in range(200):
        media.tick()
        if len(publisher.packets) >= packets:
            return
        await asyncio.sleep(0.02)


async def test_h264_passes_through_in_sync_with_transcoded_opus():
    publisher = FakePublisher()
    media = WhipMedia(publisher, video_codec="h264", audio_codec="opus")
    assert media.tick()  # no keyframe yet: ask for one at once
    video_start, audio_start = 3_000_000_000, 1_000
    media.on_report("video", 500.0, video_start)
    media.on_report("audio", 500.0, audio_start)
    h264 = _encoded("libx264", 30, {"preset": "ultrafast", "tune": "zerolatency", "g": "30"})
    opus = _opus(50)
    for index in range(30):
        media.on_frame("video", "h264", h264[index], (video_start + index * 3000) % 2**32)
    for index, frame in enumerate(opus):
        media.on_frame("audio", "opus", frame, audio_start + 960 + index * 960)
    await _settle(media, publisher, 30 + 40)
    await media.close()

    kinds = [c[1].kind for c in publisher.calls if c[0] == "track"]
    first_packet = next(i for i, c in enumerate(publisher.calls) if c[0] == "packet")
    assert sorted(kinds[:2]) == ["audio", "video"] and first_packet == 2  # both tracks first
    video = [p for p in publisher.packets if p.kind == "video"]
    audio = [p for p in publisher.packets if p.kind == "audio"]
    assert len(video) == 30 and video[0].keyframe
    assert [p.pts for p in video[:3]] == [0, 3000, 6000]
    assert video[0].data == b"".join(
        len(n).to_bytes(4, "big") + n for n in split_avcc(video[0].data)
    )
    # audio started 20 ms after video on the senders' shared clock
    assert abs(audio[0].pts / 48000 - 0.02) <= 1024 / 48000 + 0.001
    assert media.stats.video_latency_s and max(media.stats.video_latency_s) < 1


async def test_vp8_is_transcoded_and_frames_before_a_keyframe_are_dropped():
    publisher = FakePublisher()
    media = WhipMedia(publisher, video_codec="vp8", audio_codec=None)
    vp8 = _encoded("libvpx", 20, {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"})
    media.on_report("video", 10.0, 0)
    media.on_frame("video", "vp8", vp8[1], 3000)  # a delta frame first: undecodable, dropped
    for index, frame in enumerate(vp8):
        media.on_frame("video", "vp8", frame, 6000 + index * 3000)
    await _settle(media, publisher, 20)
    await media.close()
    track = next(c[1] for c in publisher.calls if c[0] == "track")
    assert track.codec == "h264" and (track.width, track.height) == (320, 180)
    assert len(publisher.packets) == 20 and publisher.packets[0].keyframe
    assert media.stats.dropped == 1
    assert media.codec_busy_s > 0
