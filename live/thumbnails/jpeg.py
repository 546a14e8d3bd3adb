"""Decode one keyframe and encode it as a JPEG, with PyAV.

Runs in a worker thread: decoding a 1080p IDR takes tens of milliseconds, which
the event loop must never wait for.
"""

from __future__ import annotations

from fractions import Fraction

import av

from live.media.packet import MediaPacket, TrackInfo

_DECODERS = {"h264": "h264", "hevc": "hevc"}


class ThumbnailError(RuntimeError):
    """The keyframe could not be decoded or encoded."""


def keyframe_to_jpeg(track: TrackInfo, keyframe: MediaPacket, quality: int = 4) -> bytes:
    """A JPEG of `keyframe` at the track's size. `quality` is MJPEG's qscale
    (2 best .. 31 worst)."""
    name = _DECODERS.get(track.codec)
    if name is None:
        raise ThumbnailError(f"no thumbnail decoder for {track.codec}")
    decoder = av.CodecContext.create(name, "r")
    decoder.extradata = track.extradata
    try:
        frames = decoder.decode(av.Packet(keyframe.data))
        frames += decoder.decode(None)  # flush: a lone IDR may sit in the decoder
    except av.FFmpegError as error:
        raise ThumbnailError(f"cannot decode the keyframe: {error}") from error
    if not frames:
        raise ThumbnailError("the keyframe decoded to no picture")
    return encode_jpeg(frames[0], quality)


def encode_jpeg(frame: av.VideoFrame, quality: int = 4) -> bytes:
    """One picture as a JPEG (MJPEG's qscale `quality`: 2 best .. 31 worst)."""
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = frame.width, frame.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qscale": str(quality)}
    encoder.flags |= av.codec.context.Flags.qscale
    encoder.global_quality = quality * 118  # FF_QP2LAMBDA
    picture = frame.reformat(format="yuvj420p")
    picture.pts = 0
    packets = encoder.encode(picture) + encoder.encode(None)
    if not packets:
        raise ThumbnailError("the JPEG encoder produced nothing")
    return bytes(packets[0])
