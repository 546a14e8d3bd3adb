"""Annex B → MP4 form: NAL splitting, samples, avcC/hvcC, checked on bytes and on
what real encoders (libx264, libx265 through the mpegts muxer) produce."""

from __future__ import annotations

import io
import subprocess

import av
import pytest

from live.ingest.mpegts import TsToMedia
from live.media import annexb
from live.media.codecs import avc_codec_string, avc_dimensions, hevc_dimensions
from live.media.packet import MediaPacket, TrackInfo


def test_split_handles_3_and_4_byte_start_codes():
    stream = b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x65\x88\x00"
    assert annexb.split_nal_units(stream) == [b"\x09\xf0", b"\x67\x42", b"\x65\x88\x00"]
    assert annexb.split_nal_units(b"no start code") == []


def test_h264_sample_drops_parameter_sets_aud_and_filler():
    units = [b"\x09\xf0", b"\x67\x42\x00\x1e", b"\x68\xce", b"\x06\x05", b"\x65\x88", b"\x0c\xff"]
    sample, keyframe = annexb.h264_sample(units)
    assert sample == b"\x00\x00\x00\x02\x06\x05\x00\x00\x00\x02\x65\x88"
    assert keyframe
    assert annexb.h264_sample([b"\x41\x9a"]) == (b"\x00\x00\x00\x02\x41\x9a", False)


def test_avcc_bytes_for_baseline():
    sps = bytes.fromhex("6742c01e d9005005 bb011000 00030010 00000303 c0f1622e 48")
    pps = bytes.fromhex("68cb8cb2")
    avcc = annexb.avcc_from_parameter_sets(sps, pps)
    assert avcc == (
        bytes([1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps
        + b"\x01" + len(pps).to_bytes(2, "big") + pps
    )  # fmt: skip
    assert avc_codec_string(avcc) == "avc1.42c01e"


def test_hevc_sample_keyframes_are_irap():
    idr = bytes([19 << 1, 1, 0xAF])
    trail = bytes([1 << 1, 1, 0xD0])
    vps = bytes([32 << 1, 1, 0x0C])
    assert annexb.hevc_sample([vps, idr]) == (b"\x00\x00\x00\x03" + idr, True)
    assert annexb.hevc_sample([trail])[1] is False


def _encode_ts(tmp_path, codec: str, extra: list[str]) -> bytes:
    path = tmp_path / f"{codec}.ts"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-t", "1",
         "-c:v", codec, "-g", "15", "-bf", "2", *extra, "-f", "mpegts", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path.read_bytes()


def _convert(data: bytes) -> list[TrackInfo | MediaPacket]:
    converter = TsToMedia()
    out: list[TrackInfo | MediaPacket] = []
    with av.open(io.BytesIO(data), format="mpegts") as container:
        for packet in container.demux():
            if packet.size:
                name = packet.stream.codec_context.name
                out += converter.convert(name, packet.pts, packet.dts, bytes(packet))
    return out


def _decode_all(track: TrackInfo, packets: list[MediaPacket]) -> int:
    codec = av.CodecContext.create(track.codec, "r")
    codec.extradata = track.extradata
    frames = 0
    for packet in packets:
        frames += len(codec.decode(av.Packet(packet.data)))
    frames += len(codec.decode(None))
    return frames


@pytest.mark.parametrize(
    ("encoder", "extra", "codec"),
    [
        ("libx264", ["-profile:v", "high"], "h264"),
        ("libx264", ["-profile:v", "baseline"], "h264"),
        ("libx265", ["-x265-params", "log-level=error"], "hevc"),
    ],
)
def test_real_encoder_output_decodes_from_our_config_and_samples(tmp_path, encoder, extra, codec):
    items = _convert(_encode_ts(tmp_path, encoder, extra))
    tracks = [i for i in items if isinstance(i, TrackInfo)]
    packets = [i for i in items if isinstance(i, MediaPacket)]
    (track,) = tracks
    assert track.codec == codec and (track.width, track.height) == (320, 180)
    dimensions = avc_dimensions if codec == "h264" else hevc_dimensions
    assert dimensions(track.extradata) == (320, 180)
    assert len(packets) == 30
    assert [p.keyframe for p in packets].count(True) == 2  # GOP 15
    assert packets[0].keyframe
    # samples are pure length-prefixed NAL units: no start codes, no parameter sets
    for packet in packets:
        offset = 0
        while offset < len(packet.data):
            offset += 4 + int.from_bytes(packet.data[offset : offset + 4], "big")
        assert offset == len(packet.data)
    if "baseline" not in extra:
        assert any(p.pts != p.dts for p in packets)  # B-frames keep their pts
    # a decoder given only our record and samples decodes every frame
    assert _decode_all(track, packets) == 30
