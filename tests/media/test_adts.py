"""ADTS → raw AAC + AudioSpecificConfig, on bytes and on a real AAC encoder's TS."""

from __future__ import annotations

import io
import itertools
import subprocess

import av
import pytest

from live.ingest.mpegts import TsToMedia
from live.media import adts
from live.media.codecs import parse_audio_specific_config
from live.media.packet import MediaPacket, TrackInfo


def header(payload_length: int, *, rate_index=3, channels=2, profile=1, crc=False) -> bytes:
    size = 9 if crc else 7
    length = size + payload_length
    data = bytearray(7)
    data[0] = 0xFF
    data[1] = 0xF0 | (0 if crc else 1)
    data[2] = profile << 6 | rate_index << 2 | channels >> 2
    data[3] = (channels & 3) << 6 | length >> 11
    data[4] = (length >> 3) & 0xFF
    data[5] = (length & 7) << 5 | 0x1F
    data[6] = 0xFC
    return bytes(data) + (b"\xaa\xbb" if crc else b"")


def test_one_frame_and_its_audio_specific_config():
    (frame,) = adts.parse_adts(header(4) + b"\x01\x02\x03\x04")
    assert frame.payload == b"\x01\x02\x03\x04"
    assert (frame.object_type, frame.sample_rate, frame.channel_config) == (2, 48000, 2)
    assert frame.audio_specific_config == bytes([0x11, 0x90])  # AAC-LC, 48 kHz, stereo
    asc = parse_audio_specific_config(frame.audio_specific_config)
    assert (asc.object_type, asc.sample_rate, asc.channels) == (2, 48000, 2)


def test_several_frames_and_crc_headers():
    data = header(2, crc=True) + b"ab" + header(3, rate_index=4, channels=1) + b"cde"
    frames = adts.parse_adts(data)
    assert [f.payload for f in frames] == [b"ab", b"cde"]
    assert frames[1].sample_rate == 44100 and frames[1].channel_config == 1


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00\x01\x02\x03\x04\x05\x06",  # no sync word
        header(10) + b"short",  # length past the end
        header(2)[:5],  # truncated header
        header(2, rate_index=13) + b"ab",  # reserved rate
    ],
)
def test_malformed_adts_raises(bad):
    with pytest.raises(adts.AdtsError):
        adts.parse_adts(bad)


def test_real_aac_in_ts_decodes_from_our_config(tmp_path):
    path = tmp_path / "aac.ts"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=48000", "-t", "1", "-c:a", "aac",
         "-f", "mpegts", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    converter = TsToMedia()
    items = []
    with av.open(io.BytesIO(path.read_bytes()), format="mpegts") as container:
        for packet in container.demux():
            if packet.size:
                items += converter.convert("aac", packet.pts, packet.dts, bytes(packet))
    (track,) = [i for i in items if isinstance(i, TrackInfo)]
    packets = [i for i in items if isinstance(i, MediaPacket)]
    assert (track.codec, track.sample_rate, track.channels) == ("aac", 48000, 1)
    assert track.codec_string == "mp4a.40.2"
    assert all(p.data[:2] != b"\xff\xf1" for p in packets)  # headers gone
    steps = {b.dts - a.dts for a, b in itertools.pairwise(packets)}
    assert steps == {1920}  # 1024 samples at 48 kHz in 90 kHz ticks
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = track.extradata
    samples = sum(f.samples for p in packets for f in decoder.decode(av.Packet(p.data)))
    assert samples >= 46 * 1024
