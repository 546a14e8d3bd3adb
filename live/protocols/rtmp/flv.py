"""FLV audio and video tag bodies (FLV 10.1 Annex E.4, Enhanced RTMP v2).

RTMP audio (type 8) and video (type 9) messages carry exactly an FLV tag body.
These parsers turn one body into codec-neutral items (`SequenceStart`,
`CodedFrame`, `SequenceEnd`) and know nothing of timestamps or connections.

Supported: legacy AVC (CodecID 7) and the common non-standard legacy HEVC
(CodecID 12); legacy AAC and MP3; Enhanced RTMP video (`avc1`, `hvc1`, `av01`,
`vp09`, `vp08`, `vvc1`) and audio (`mp4a`, `Opus`, `fLaC`, `ac-3`, `ec-3`,
`.mp3`), including ModEx prefixes and multitrack packets (only the default track 0
is returned). Command frames, zero-length bodies and metadata packets produce no
items. An unknown codec, FourCC or packet type raises `FlvError`, which the
connection reports as a protocol error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .cursor import Cursor
from .errors import FlvError


@dataclass(frozen=True, slots=True)
class SequenceStart:
    """A decoder configuration record (avcC, hvcC, av1C, vpcC, ASC, ...), verbatim."""

    codec: str
    config: bytes


@dataclass(frozen=True, slots=True)
class CodedFrame:
    """One coded frame. `composition_time` is the signed pts - dts in milliseconds."""

    codec: str
    data: bytes
    composition_time: int = 0
    keyframe: bool = False


@dataclass(frozen=True, slots=True)
class SequenceEnd:
    codec: str


FlvItem = SequenceStart | CodedFrame | SequenceEnd

VIDEO_FOURCC: Final = {
    b"avc1": "h264",
    b"hvc1": "hevc",
    b"av01": "av1",
    b"vp09": "vp9",
    b"vp08": "vp8",
    b"vvc1": "vvc",
}
AUDIO_FOURCC: Final = {
    b"mp4a": "aac",
    b"Opus": "opus",
    b"fLaC": "flac",
    b"ac-3": "ac3",
    b"ec-3": "eac3",
    b".mp3": "mp3",
}
LEGACY_VIDEO_CODECS: Final = {7: "h264", 12: "hevc"}
# Codecs whose CodedFrames packets carry an SI24 composition time offset.
_CTS_CODECS: Final = frozenset({"h264", "hevc", "vvc"})

FRAME_KEY: Final = 1
FRAME_COMMAND: Final = 5

# Enhanced video packet types.
V_SEQUENCE_START: Final = 0
V_CODED_FRAMES: Final = 1
V_SEQUENCE_END: Final = 2
V_CODED_FRAMES_X: Final = 3
V_METADATA: Final = 4
V_MPEG2TS_SEQUENCE_START: Final = 5
V_MULTITRACK: Final = 6
V_MODEX: Final = 7

# Enhanced audio packet types.
A_SEQUENCE_START: Final = 0
A_CODED_FRAMES: Final = 1
A_SEQUENCE_END: Final = 2
A_MULTICHANNEL_CONFIG: Final = 4
A_MULTITRACK: Final = 5
A_MODEX: Final = 7

# Multitrack types.
ONE_TRACK: Final = 0
MANY_TRACKS: Final = 1
MANY_TRACKS_MANY_CODECS: Final = 2

SOUND_MP3: Final = 2
SOUND_EX_HEADER: Final = 9
SOUND_AAC: Final = 10
SOUND_MP3_8KHZ: Final = 14

DEFAULT_TRACK: Final = 0


def parse_video_tag(body: bytes) -> list[FlvItem]:
    """Parse one video tag body into zero or more items (raises `FlvError`)."""
    if not body:
        return []
    cur = Cursor(body, error=FlvError)
    first = cur.u8()
    if first & 0x80:
        return _enhanced_video(cur, first)
    frame_type = first >> 4
    if frame_type == FRAME_COMMAND:
        return []
    codec_id = first & 0x0F
    codec = LEGACY_VIDEO_CODECS.get(codec_id)
    if codec is None:
        raise FlvError(f"unsupported video CodecID {codec_id}")
    packet_type = cur.u8()
    composition_time = cur.s24()
    if packet_type == 0:
        return _sequence_start(codec, cur.rest())
    if packet_type == 1:
        return _coded_frame(codec, cur.rest(), composition_time, frame_type == FRAME_KEY)
    if packet_type == 2:
        return [SequenceEnd(codec)]
    raise FlvError(f"unknown AVCPacketType {packet_type}")


def parse_audio_tag(body: bytes) -> list[FlvItem]:
    """Parse one audio tag body into zero or more items (raises `FlvError`)."""
    if not body:
        return []  # zero-length audio means silence
    cur = Cursor(body, error=FlvError)
    first = cur.u8()
    sound_format = first >> 4
    if sound_format == SOUND_EX_HEADER:
        return _enhanced_audio(cur, first & 0x0F)
    if sound_format == SOUND_AAC:
        packet_type = cur.u8()
        if packet_type == 0:
            return _sequence_start("aac", cur.rest())
        if packet_type == 1:
            return _coded_frame("aac", cur.rest())
        raise FlvError(f"unknown AACPacketType {packet_type}")
    if sound_format in (SOUND_MP3, SOUND_MP3_8KHZ):
        return _coded_frame("mp3", cur.rest())
    raise FlvError(f"unsupported SoundFormat {sound_format}")


def _sequence_start(codec: str, config: bytes) -> list[FlvItem]:
    # An empty configuration carries nothing a decoder could use.
    return [SequenceStart(codec, config)] if config else []


def _coded_frame(
    codec: str, data: bytes, composition_time: int = 0, keyframe: bool = False
) -> list[FlvItem]:
    return [CodedFrame(codec, data, composition_time, keyframe)] if data else []


def _skip_modex(cur: Cursor, packet_type: int, modex: int) -> int:
    """Skip ModEx prefixes (size UI8+1, 256 escaping to UI16+1) to the real packet type.

    The only ModEx defined so far is a nanosecond timestamp offset, which a
    millisecond timeline cannot use, so the data is read past and dropped.
    """
    while packet_type == modex:
        size = cur.u8() + 1
        if size == 256:
            size = cur.u16() + 1
        cur.take(size)
        packet_type = cur.u8() & 0x0F  # high nibble: the ModEx type
    return packet_type


def _enhanced_video(cur: Cursor, first: int) -> list[FlvItem]:
    frame_type = (first >> 4) & 0x07
    packet_type = _skip_modex(cur, first & 0x0F, V_MODEX)
    if packet_type != V_METADATA and frame_type == FRAME_COMMAND:
        return []  # a one-byte video command, no payload
    if packet_type != V_MULTITRACK:
        fourcc = cur.take(4)
        return _video_packet(fourcc, packet_type, frame_type, cur)

    byte = cur.u8()
    multitrack_type, packet_type = byte >> 4, byte & 0x0F
    if multitrack_type > MANY_TRACKS_MANY_CODECS:
        raise FlvError(f"unknown video multitrack type {multitrack_type}")
    if packet_type in (V_MULTITRACK, V_MODEX):
        raise FlvError(f"video packet type {packet_type} inside a multitrack packet")
    fourcc = b"" if multitrack_type == MANY_TRACKS_MANY_CODECS else cur.take(4)
    items: list[FlvItem] = []
    for track_fourcc, track_id, track in _tracks(cur, multitrack_type, fourcc):
        track_items = _video_packet(track_fourcc, packet_type, frame_type, track)
        if track_id == DEFAULT_TRACK:
            items.extend(track_items)
    return items


def _tracks(cur: Cursor, multitrack_type: int, fourcc: bytes) -> list[tuple[bytes, int, Cursor]]:
    """Split a multitrack body into (fourcc, trackId, body cursor) triples."""
    tracks: list[tuple[bytes, int, Cursor]] = []
    while cur.remaining:
        if multitrack_type == MANY_TRACKS_MANY_CODECS:
            fourcc = cur.take(4)
        track_id = cur.u8()
        if multitrack_type == ONE_TRACK:
            tracks.append((fourcc, track_id, Cursor(cur.rest(), error=FlvError)))
            break
        size = cur.u24()
        tracks.append((fourcc, track_id, Cursor(cur.take(size), error=FlvError)))
    return tracks


def _video_packet(fourcc: bytes, packet_type: int, frame_type: int, cur: Cursor) -> list[FlvItem]:
    codec = VIDEO_FOURCC.get(fourcc)
    if codec is None:
        raise FlvError(f"unsupported video FourCC {fourcc!r}")
    if packet_type == V_SEQUENCE_START:
        return _sequence_start(codec, cur.rest())
    if packet_type == V_CODED_FRAMES:
        composition_time = cur.s24() if codec in _CTS_CODECS else 0
        return _coded_frame(codec, cur.rest(), composition_time, frame_type == FRAME_KEY)
    if packet_type == V_CODED_FRAMES_X:
        return _coded_frame(codec, cur.rest(), 0, frame_type == FRAME_KEY)
    if packet_type == V_SEQUENCE_END:
        return [SequenceEnd(codec)]
    if packet_type in (V_METADATA, V_MPEG2TS_SEQUENCE_START):
        return []  # colour metadata / an MPEG-2 TS descriptor: nothing to pass on
    raise FlvError(f"unknown video packet type {packet_type}")


def _enhanced_audio(cur: Cursor, packet_type: int) -> list[FlvItem]:
    packet_type = _skip_modex(cur, packet_type, A_MODEX)
    if packet_type != A_MULTITRACK:
        fourcc = cur.take(4)
        return _audio_packet(fourcc, packet_type, cur)

    byte = cur.u8()
    multitrack_type, packet_type = byte >> 4, byte & 0x0F
    if multitrack_type > MANY_TRACKS_MANY_CODECS:
        raise FlvError(f"unknown audio multitrack type {multitrack_type}")
    if packet_type in (A_MULTITRACK, A_MODEX):
        raise FlvError(f"audio packet type {packet_type} inside a multitrack packet")
    fourcc = b"" if multitrack_type == MANY_TRACKS_MANY_CODECS else cur.take(4)
    items: list[FlvItem] = []
    for track_fourcc, track_id, track in _tracks(cur, multitrack_type, fourcc):
        track_items = _audio_packet(track_fourcc, packet_type, track)
        if track_id == DEFAULT_TRACK:
            items.extend(track_items)
    return items


def _audio_packet(fourcc: bytes, packet_type: int, cur: Cursor) -> list[FlvItem]:
    codec = AUDIO_FOURCC.get(fourcc)
    if codec is None:
        raise FlvError(f"unsupported audio FourCC {fourcc!r}")
    if packet_type == A_SEQUENCE_START:
        return _sequence_start(codec, cur.rest())
    if packet_type == A_CODED_FRAMES:
        return _coded_frame(codec, cur.rest())
    if packet_type == A_SEQUENCE_END:
        return [SequenceEnd(codec)]
    if packet_type == A_MULTICHANNEL_CONFIG:
        return []  # channel order/count: the codec configuration is authoritative
    raise FlvError(f"unknown audio packet type {packet_type}")
