"""What a source file holds, read with PyAV, and whether we can play it.

A file is refused with an error code an app can branch on (API.md): one PyAV
cannot open, or whose codecs it cannot decode, is `unsupported_media`; one with
neither video nor audio is `no_video_or_audio`. Decoding the first frames is part
of the probe: a header can name a codec whose data is garbage.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import av

from live.store.models import AssetErrorCode


class MediaRejected(Exception):
    """The source cannot become an asset: `code` and `message` are its `error`."""

    def __init__(self, code: AssetErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SourceInfo:
    duration_s: float
    start_s: float  # the first timestamp: clip offsets count from here
    size_bytes: int
    video: dict[str, Any] | None  # shaped like a session's `video` (API.md)
    audio: dict[str, Any] | None
    video_extradata: bytes = b""
    audio_extradata: bytes = b""

    @property
    def original(self) -> dict[str, Any]:
        return {"size_bytes": self.size_bytes, "video": self.video, "audio": self.audio}


def probe(path: str, size_bytes: int) -> SourceInfo:
    try:
        container = av.open(path)
    except (av.FFmpegError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)  # without the server's path
        if _looks_like_mp4(path):
            message = f"the MP4/MOV file cannot be read: it is cut short or damaged ({reason})"
        else:
            message = f"the file is not a video or audio file we can read ({reason})"
        raise MediaRejected("unsupported_media", message) from None
    with container:
        video_stream = next(iter(container.streams.video), None)
        audio_stream = next(iter(container.streams.audio), None)
        if video_stream is None and audio_stream is None:
            raise MediaRejected("no_video_or_audio", "the file has neither video nor audio")
        for stream in (video_stream, audio_stream):
            if stream is not None and stream.codec_context is None:  # no decoder at all
                raise MediaRejected(
                    "unsupported_media", f"the {stream.type} is in a codec we cannot decode"
                )
        duration = _duration(container, video_stream or audio_stream)
        if duration <= 0:
            raise MediaRejected("unsupported_media", "the file has no playable duration")
        video = audio = None
        if video_stream is not None:
            _decodes(container, video_stream)
            video = {
                "codec": video_stream.codec_context.name,
                "width": video_stream.codec_context.width,
                "height": video_stream.codec_context.height,
                "fps": round(float(video_stream.average_rate or video_stream.guessed_rate or 0), 3),
                "bitrate_kbps": _kbps(video_stream.codec_context.bit_rate or video_stream.bit_rate),
            }
        if audio_stream is not None:
            _decodes(container, audio_stream)
            audio = {
                "codec": audio_stream.codec_context.name,
                "sample_rate": audio_stream.codec_context.sample_rate,
                "channels": audio_stream.codec_context.channels,
                "bitrate_kbps": _kbps(audio_stream.codec_context.bit_rate or audio_stream.bit_rate),
            }
        start = container.start_time / 1_000_000 if container.start_time is not None else 0.0
        return SourceInfo(
            duration_s=duration,
            start_s=start,
            size_bytes=size_bytes,
            video=video,
            audio=audio,
            video_extradata=bytes(video_stream.codec_context.extradata or b"")
            if video_stream is not None
            else b"",
            audio_extradata=bytes(audio_stream.codec_context.extradata or b"")
            if audio_stream is not None
            else b"",
        )


def _looks_like_mp4(path: str) -> bool:
    """An ISO BMFF file starts with a box whose type is ftyp (or a few others)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")


def _duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    if container.duration:
        return container.duration / 1_000_000
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def _decodes(container: av.container.InputContainer, stream: av.stream.Stream) -> None:
    """The stream's first frame decodes (a few packets' worth of tries), or the file
    is refused: its codec is one we cannot decode, or its data is not that codec."""
    kind = stream.type
    with contextlib.suppress(av.FFmpegError):
        container.seek(0, backward=True, any_frame=False)
    try:
        for count, packet in enumerate(container.demux(stream)):
            if packet.size and packet.decode():
                return
            if count > 300:
                break
        if stream.codec_context.decode(None):
            return
    except av.FFmpegError as error:
        message = f"the {kind} ({stream.codec_context.name}) cannot be decoded: {error}"
        raise MediaRejected("unsupported_media", message) from None
    raise MediaRejected(
        "unsupported_media", f"no {kind} frame could be decoded ({stream.codec_context.name})"
    )


def _kbps(bits_per_second: int | None) -> int | None:
    return round(bits_per_second / 1000) if bits_per_second else None
