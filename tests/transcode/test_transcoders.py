"""The PyAV transcoders with real encoded input, and the codec worker thread."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from fractions import Fraction

import av
import pytest

from live.media.avc import split_avcc
from live.media.codecs import parse_audio_specific_config
from live.transcode import AudioTranscoder, CodecWorker, VideoTranscoder
from live.transcode.video import H264Settings


def _vp8_frames(count: int, size=(320, 180), fps=30, start=0):
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = size[0], size[1], "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    encoder.open()
    out = []
    for index in range(start, start + count):
        frame = av.VideoFrame(size[0], size[1], "yuv420p")
        frame.planes[0].update(bytes([(index * 7) % 256]) * frame.planes[0].buffer_size)
        frame.pts = index
        for packet in encoder.encode(frame):
            out.append((bytes(packet), packet.pts * 3000))
    return out


def _opus_packets(seconds: float):
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = Fraction(1, 48000)
    encoder.open()
    out = []
    for index in range(int(seconds * 50)):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(frame.planes[0].buffer_size))
        frame.sample_rate, frame.pts = 48000, index * 960
        for packet in encoder.encode(frame):
            out.append((bytes(packet), packet.pts))
    return out


def test_vp8_becomes_h264_with_a_keyframe_every_second():
    transcoder = VideoTranscoder("vp8", H264Settings(preset="ultrafast"))
    packets = []
    for data, pts in _vp8_frames(75):
        packets += transcoder.transcode(data, pts)
    assert len(packets) == 75
    track = transcoder.track
    assert track is not None and track.codec == "h264"
    assert (track.width, track.height) == (320, 180)
    assert track.codec_string.startswith("avc1.")
    keyframes = [p.pts / 90000 for p in packets if p.keyframe]
    assert keyframes == [0.0, 1.0, 2.0]
    for packet in packets:
        assert packet.dts == packet.pts  # zerolatency: no reordering
        assert all(n[0] & 0x1F not in (7, 8) for n in split_avcc(packet.data))


def test_a_smaller_frame_is_scaled_back_to_the_first_size():
    transcoder = VideoTranscoder("vp8", H264Settings(preset="ultrafast"))
    for data, pts in _vp8_frames(5):
        transcoder.transcode(data, pts)
    first_track = transcoder.track
    out = []
    for data, pts in _vp8_frames(5, size=(160, 90), start=5):
        out += transcoder.transcode(data, pts)
    assert out and transcoder.track == first_track


def test_undecodable_video_costs_only_that_frame():
    transcoder = VideoTranscoder("vp8", H264Settings(preset="ultrafast"))
    assert transcoder.transcode(b"\x00garbage", 0) == []
    frames = _vp8_frames(3)
    assert sum(len(transcoder.transcode(d, p)) for d, p in frames) == 3


def test_opus_becomes_aac_with_continuous_timestamps():
    transcoder = AudioTranscoder("opus")
    packets = []
    for data, pts in _opus_packets(1.0):
        packets += transcoder.transcode(data, pts)
    track = transcoder.track
    asc = parse_audio_specific_config(track.extradata)
    assert (asc.object_type, asc.sample_rate, asc.channels) == (2, 48000, 2)
    assert track.codec_string == "mp4a.40.2"
    assert len(packets) >= 44  # 48000 / 1024 = 46.9, minus the encoder's delay
    steps = {b.pts - a.pts for a, b in itertools.pairwise(packets)}
    assert steps == {1024}
    assert all(p.time_base == Fraction(1, 48000) for p in packets)


def test_audio_after_a_gap_keeps_its_input_timing():
    transcoder = AudioTranscoder("opus")
    opus = _opus_packets(1.0)
    packets = []
    for data, pts in opus[:25]:
        packets += transcoder.transcode(data, pts)
    for data, pts in opus[25:]:
        packets += transcoder.transcode(data, pts + 48000)  # a second of nothing
    late = [p.pts for p in packets if p.pts > 48000]
    assert late and min(late) >= 25 * 960 + 48000 - 2048


async def test_codec_worker_runs_off_the_loop_in_order_and_bounded():
    loop_thread = threading.get_ident()
    seen_threads, results = set(), []
    gate = threading.Event()

    def work(item):
        gate.wait(5)
        seen_threads.add(threading.get_ident())
        return item * 2

    worker = CodecWorker("test", work, results.append, max_pending=3)
    assert all(worker.submit(i) for i in range(3))
    await asyncio.sleep(0.05)  # the thread took the first item and waits on the gate
    assert worker.submit(3)
    assert not worker.submit(4)  # full: the caller is told at once
    gate.set()
    deadline = time.monotonic() + 5
    while len(results) < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert results == [0, 2, 4, 6]
    assert loop_thread not in seen_threads
    assert worker.busy_s > 0
    await worker.close()
    assert not worker.submit(5)


async def test_codec_worker_survives_a_failing_item():
    results = []
    worker = CodecWorker("test", lambda x: 1 / x, results.append)
    worker.submit(0)
    worker.submit(2)
    for _ in range(100):
        if results:
            break
        await asyncio.sleep(0.01)
    assert results == [0.5] and worker.errors == 1
    await worker.close()


def test_unknown_codecs_are_refused_up_front():
    with pytest.raises(ValueError):
        VideoTranscoder("theora")
    with pytest.raises(ValueError):
        AudioTranscoder("vorbis")
