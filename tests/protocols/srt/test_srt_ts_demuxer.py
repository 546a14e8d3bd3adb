"""The TS demuxer bridge: a bounded queue in front of PyAV in a thread."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from pathlib import Path

import pytest

from live.ingest.mpegts import BoundedByteQueue, TsDemuxer
from live.ingest.ts_guard import TsGuard
from live.media.packet import MediaPacket, TrackInfo

REPO = Path(__file__).resolve().parents[3]


def test_queue_refuses_bytes_beyond_its_limit_and_reads_in_order():
    queue = BoundedByteQueue(limit=10)
    assert queue.feed(b"abcd") and queue.feed(b"efgh")
    assert not queue.feed(b"ijk")  # 11 > 10: refused, nothing kept
    assert queue.read(3) == b"abc"
    assert queue.read(100) == b"defgh"
    assert queue.feed(b"ijk")
    queue.close()
    assert queue.read(100) == b"ijk"
    assert queue.read(100) == b""  # end of stream
    assert not queue.feed(b"late")


async def _run(data: bytes, chunk: int = 1316) -> tuple[list, str | None, TsDemuxer]:
    items: list = []
    result: list[str | None] = []
    demuxer = TsDemuxer(asyncio.get_running_loop(), items.extend, result.append)
    demuxer.start()
    for i in range(0, len(data), chunk):
        demuxer.feed(data[i : i + chunk])
    demuxer.close()
    await asyncio.wait_for(demuxer.done.wait(), 20)
    return items, result[0], demuxer


def _make_ts(path) -> bytes:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
         "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "2",
         "-c:v", "libx264", "-g", "30", "-c:a", "aac", "-f", "mpegts", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path.read_bytes()


async def test_demuxes_a_real_stream_fed_in_srt_sized_chunks(tmp_path):
    items, error, demuxer = await _run(_make_ts(tmp_path / "av.ts"))
    assert error is None and demuxer.dropped_bytes == 0
    tracks = {i.kind: i for i in items if isinstance(i, TrackInfo)}
    assert tracks["video"].codec == "h264" and tracks["audio"].codec == "aac"
    video = [i for i in items if isinstance(i, MediaPacket) and i.kind == "video"]
    assert len(video) == 60 and video[0].keyframe
    # several ADTS frames share a PES and its one PTS: each is timed 1024 samples on
    audio = [i for i in items if isinstance(i, MediaPacket) and i.kind == "audio"]
    assert len(audio) == 95
    assert {b.dts - a.dts for a, b in itertools.pairwise(audio)} == {1920}


async def test_garbage_ends_with_an_error_not_a_hang():
    items, error, _ = await _run(b"\x00" * 50_000)
    assert items == [] and error


async def test_a_stalled_demuxer_makes_feed_drop_instead_of_buffering():
    demuxer = TsDemuxer(asyncio.get_running_loop(), lambda _: None, lambda _: None,
                        buffer_bytes=4096)  # fmt: skip
    # not started: nothing reads, as if PyAV were stuck
    for _ in range(10):
        demuxer.feed(b"\x47" * 1316)
    assert demuxer.dropped_bytes == 7 * 1316  # 3 chunks fit in 4096 bytes


def test_packets_wait_until_every_announced_track_is_configured():
    from live.ingest.mpegts import TsToMedia

    sps = bytes.fromhex("6742c01ed900500 5bb0110000003001000000303c0f1622e48".replace(" ", ""))
    pps = bytes.fromhex("68cb8cb2")
    idr = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps + b"\x00\x00\x01\x65\x88\x84"
    adts_frame = bytes.fromhex("fff15080011ffc") + b"\x21"  # AAC-LC 44.1 kHz stereo, 1 byte
    converter = TsToMedia({"video", "audio"})
    assert converter.convert("h264", 0, 0, idr) == []  # audio not configured yet
    out = converter.convert("aac", 100, 100, adts_frame)
    assert [type(i).__name__ for i in out] == [
        "TrackInfo",
        "TrackInfo",
        "MediaPacket",
        "MediaPacket",
    ]
    assert {out[0].kind, out[1].kind} == {"video", "audio"}
    assert out[2].kind == "video" and out[2].keyframe
    later = converter.convert("h264", 3000, 3000, b"\x00\x00\x01\x41\x9a")
    assert [i.kind for i in later] == ["video"]


def _without_a_packet_inside_video_frame(data: bytes, frame: int) -> bytes:
    """`data` with one TS packet cut from the middle of the `frame`-th video PES."""
    packets = [data[i : i + 188] for i in range(0, len(data), 188)]
    video_pid = 0x100  # FFmpeg's first elementary stream
    starts = 0
    for index, packet in enumerate(packets):
        pid = (packet[1] & 0x1F) << 8 | packet[2]
        if pid != video_pid or not packet[1] & 0x40:
            continue
        starts += 1
        if starts < frame:
            continue
        following = [i for i in range(index + 1, len(packets)) if _pid(packets[i]) == video_pid]
        if len(following) >= 2 and not any(packets[i][1] & 0x40 for i in following[:2]):
            del packets[following[0]]  # the PES goes on after it: a hole, not an end
            return b"".join(packets)
    raise AssertionError("no video frame spans three TS packets")


def _pid(packet: bytes) -> int:
    return (packet[1] & 0x1F) << 8 | packet[2]


async def test_a_frame_that_lost_a_ts_packet_is_dropped_with_what_refers_to_it(tmp_path):
    damaged = _without_a_packet_inside_video_frame(_make_ts(tmp_path / "av.ts"), frame=6)
    items, error, demuxer = await _run(damaged)
    assert error is None and demuxer.corrupt_packets == 1
    video = [i for i in items if isinstance(i, MediaPacket) and i.kind == "video"]
    audio = [i for i in items if isinstance(i, MediaPacket) and i.kind == "audio"]
    # the frames before the damaged one pass; what follows waits for the next keyframe
    assert len(video) + demuxer.skipped_frames + 1 == 60 and demuxer.skipped_frames >= 20
    resumed = next(i for i, p in enumerate(video) if i and p.keyframe)
    assert (
        resumed >= 3
        and video[resumed].dts - video[resumed - 1].dts == (demuxer.skipped_frames + 2) * 3000
    )
    assert len(audio) == 95  # audio frames stand alone: none are held back


def test_video_that_never_brings_its_parameter_sets_holds_audio_back_one_second_only():
    """GStreamer's `mpegtsmux ! srtsink` without alignment=7 loses every keyframe
    (with its SPS/PPS): the audio starts after a second, not after 600 packets, and
    the undecodable video frames are skipped until a keyframe brings them."""
    from live.ingest.mpegts import TsToMedia

    sps = bytes.fromhex("6742c01ed9005005bb0110000003001000000303c0f1622e48")
    pps = bytes.fromhex("68cb8cb2")
    adts_frame = bytes.fromhex("fff15080011ffc") + b"\x21"  # AAC-LC 44.1 kHz stereo
    converter = TsToMedia({"video", "audio"})
    out, at = [], 0
    while not out:
        if at % 3000 == 0:  # a P frame every 1/30 s, and never a keyframe
            out += converter.convert("h264", at, at, b"\x00\x00\x01\x41\x9a")
        out += converter.convert("aac", at, at, adts_frame)
        at += 1000
    assert 90000 <= at <= 93000  # a second of media (90 kHz clock), not 600 packets
    assert out[0].kind == "audio" and {i.kind for i in out} == {"audio"}
    assert converter.skipped_frames == 31
    assert converter.convert("h264", at, at, b"\x00\x00\x01\x41\x9a") == []
    keyframe = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps + b"\x00\x00\x01\x65\x88"
    joined = converter.convert("h264", at + 3000, at + 3000, keyframe)
    assert [type(i).__name__ for i in joined] == ["TrackInfo", "MediaPacket"]
    assert joined[1].keyframe


# Found by fuzzing (fuzz/mpegts.py): one TS packet of a PES whose stream id FFmpeg
# does not know. PyAV gives it a stream without a codec context, and reading its
# codec name raised AttributeError in the demuxer thread, ending the whole ingest.
_UNNAMED_STREAM_PACKET = bytes.fromhex(
    "47410136014000000118817f87109050253fa5d657ffb73a34dfd33c5dcf505bbb4777049725a394"
    "d7b156580757948d44b7a5a392ef5747770ecb396e89de2f4b47298b5747772a59cac7219af63460"
    "c2cce5f070a59cbc4989af6204004e8e4f2eb57279744fffc5935ebd2ddc2970f2ddca6ce5a397ff"
    "f16c401e9ffc013e33889472e28f3552ff3f5ef7c2e49244912224420e66b73d1732a879ccb396e0"
    "a15d06e0a15d0e4146461c872a594d30bdf6cd6dc25cf59fcd401733"
)


async def test_a_stream_ffmpeg_cannot_name_is_skipped_not_fatal():
    assert len(_UNNAMED_STREAM_PACKET) == 188
    items, error, _ = await _run(_UNNAMED_STREAM_PACKET)
    assert (items, error) == ([], None)


async def test_a_stream_that_appears_after_the_start_is_skipped_not_fatal():
    # Found by fuzzing (fuzz/mpegts.py): a PMT that adds a PID once demuxing has
    # begun. PyAV cannot look the new stream up (IndexError), which ended the ingest.
    data = (REPO / "fuzz" / "regressions" / "mpegts-stream-after-start.ts").read_bytes()
    _, error, demuxer = await _run(data)
    assert (error, demuxer.late_stream_packets) == (None, 1)


_CODEC_CHANGE = REPO / "fuzz" / "regressions" / "mpegts-pmt-changes-codec-ffmpeg-abort.ts"


def test_the_guard_stops_a_pmt_that_changes_the_codec_of_a_pid():
    # Found by fuzzing (fuzz/mpegts.py): five TS packets whose second PMT declares
    # PID 0x100 H.264 after the first declared it HEVC. FFmpeg's demuxer aborts the
    # process on an assertion there (libavformat 62, demux.c), taking every stream
    # on the server with it; the guard in front of it stops the stream instead.
    data = _CODEC_CHANGE.read_bytes()
    passed, reason = TsGuard().feed(data)
    assert reason and "PID 256" in reason and "0x24 → 0x1b" in reason
    assert data.startswith(passed) and len(passed) < data.index(bytes.fromhex("0002b017"))


@pytest.mark.parametrize(
    "name",
    [
        "mpegts-pmt-changes-codec-ffmpeg-abort.ts",
        # the changing PMT follows bytes out of sync: FFmpeg resyncs and reads it
        "mpegts-codec-change-after-bytes-out-of-sync.ts",
        # the first PMT comes before the PAT: FFmpeg reads it when it starts over
        "mpegts-codec-change-pmt-before-pat.ts",
        # ... and before a broken PAT that names other PIDs, then a good one
        "mpegts-codec-change-pmt-before-a-later-pat.ts",
    ],
)
async def test_a_stream_that_changes_codec_ends_with_the_reason_and_the_process_lives(name):
    data = (REPO / "fuzz" / "regressions" / name).read_bytes()
    _, error, demuxer = await _run(data, chunk=1316)
    assert error == demuxer.refused and "may not change its codec" in error


def test_the_guard_passes_a_real_stream_whole_and_drops_bytes_out_of_sync():
    stream = sorted((REPO / "fuzz" / "corpus" / "mpegts").glob("ffmpeg-h264-aac-*"))[0]
    data = stream.read_bytes()
    guard = TsGuard()
    assert b"".join(guard.feed(data[i : i + 1000])[0] for i in range(0, len(data), 1000)) == data
    garbled = data[:188] + b"\x00\x01\x02" + data[188:]
    assert TsGuard().feed(garbled) == (data, None)
