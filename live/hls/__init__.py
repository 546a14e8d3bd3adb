"""Low-Latency HLS output: the in-memory window per rendition, playlists, HTTP handlers.

The packager feeds one `HlsWindow` per rendition; `setup_hls_routes` serves every
registered `HlsStream` under `/live/{playback_id}/...`.
"""

from live.hls.handlers import HlsLimits, setup_hls_routes
from live.hls.snapshot import PartInfo, SegmentInfo, WindowSnapshot
from live.hls.stream import HlsRegistry, HlsStream, LatencyMode, Rendition
from live.hls.window import HlsWindow

__all__ = [
    "HlsLimits",
    "HlsRegistry",
    "HlsStream",
    "HlsWindow",
    "LatencyMode",
    "PartInfo",
    "Rendition",
    "SegmentInfo",
    "WindowSnapshot",
    "setup_hls_routes",
]
