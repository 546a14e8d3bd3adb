"""What the player page polls to know whether a stream is on air, without loading its
playlist (which would count the page as a viewer every time it looked)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from live.hls.stream import HlsRegistry


def stream_status(
    hls: HlsRegistry, viewers: Callable[[str], int], playback_id: str
) -> dict[str, Any]:
    """`live` once the stream has a part to play and until its playlist has ENDLIST
    (a publisher inside its reconnect window is still live: viewers keep waiting)."""
    stream = hls.get(playback_id)
    windows = [r.window for r in stream.renditions] if stream is not None else []
    live = bool(windows) and not any(w.ended for w in windows) and windows[0].has_parts
    return {
        "playback_id": playback_id,
        "live": live,
        "viewers": viewers(playback_id) if live else 0,
        "latency_mode": stream.latency_mode if stream is not None else None,
    }
