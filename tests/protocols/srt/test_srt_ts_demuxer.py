"""The TS demuxer bridge: a bounded queue in front of PyAV in a thread."""

from __future__ import annotations

import asyncio
import subprocess

from live.ingest.mpegts import BoundedByteQueue, TsDemuxer
from live.media.packet import MediaPacket, TrackInfo


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


async def test_demuxes_a_real_stream_fed_in_srt_sized_chunks(tmp_path):
    path = tmp_path / "av.ts"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
         "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "2",
         "-c:v", "libx264", "-g", "30", "-c:a", "aac", "-f", "mpegts", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    items, error, demuxer = await _run(path.read_bytes())
    assert error is None and demuxer.dropped_bytes == 0
    tracks = {i.kind: i for i in items if isinstance(i, TrackInfo)}
    assert tracks["video"].codec == "h264" and tracks["audio"].codec == "aac"
    video = [i for i in items if isinstance(i, MediaPacket) and i.kind == "video"]
    assert len(video) == 60 and video[0].keyframe


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
