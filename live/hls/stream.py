"""What the HTTP side serves: streams by playback id, each with its renditions.

The packager owns the windows and may add renditions or update their bandwidth and
codecs while the stream is live; the handlers read these objects on every request, so
such changes show up in the next playlist without any notification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from live.hls.window import HlsWindow

LatencyMode = Literal["low", "standard"]


@dataclass(eq=False)
class Rendition:
    """One variant stream: its window plus what EXT-X-STREAM-INF says about it."""

    name: str  # "source", "720p", ...; also the URL path component
    window: HlsWindow
    bandwidth: int  # peak bits per second
    average_bandwidth: int | None = None
    codecs: str = ""  # "avc1.64001f,mp4a.40.2"
    resolution: tuple[int, int] | None = None
    frame_rate: float | None = None
    audio_only: bool = False


@dataclass(eq=False)
class HlsStream:
    """A live stream as viewers see it; `latency_mode` picks LL-HLS or plain HLS."""

    playback_id: str
    renditions: list[Rendition] = field(default_factory=list)
    latency_mode: LatencyMode = "low"

    @property
    def ended(self) -> bool:
        """Its session is over (ENDLIST): the playlist only lingers for late viewers."""
        return bool(self.renditions) and all(r.window.ended for r in self.renditions)

    def rendition(self, name: str) -> Rendition | None:
        for r in self.renditions:
            if r.name == name:
                return r
        return None


class HlsRegistry:
    """Playback id → stream, for the handlers. Lives on the event loop thread."""

    def __init__(self) -> None:
        self._streams: dict[str, HlsStream] = {}

    def register(self, stream: HlsStream) -> None:
        """Add or replace the stream served under its playback id."""
        self._streams[stream.playback_id] = stream

    def unregister(self, playback_id: str) -> HlsStream | None:
        """Stop serving a stream. Its windows are ended so blocked viewers answer now
        instead of holding until their timeout."""
        stream = self._streams.pop(playback_id, None)
        if stream is not None:
            for r in stream.renditions:
                r.window.end()
        return stream

    def get(self, playback_id: str) -> HlsStream | None:
        return self._streams.get(playback_id)

    def __contains__(self, playback_id: object) -> bool:
        return playback_id in self._streams

    def __len__(self) -> int:
        return len(self._streams)
