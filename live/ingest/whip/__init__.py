"""WHIP ingest (RFC 9725): WebRTC publishers (OBS, browsers, FFmpeg) over aiortc.

`server` has the HTTP routes, `offer` the checks on an offer, `session` one
publish, `media` the frames → packets pipeline, `sync` audio/video timing, and
`webrtc` everything that reaches inside aiortc/aioice.
"""

from live.ingest.whip.server import (
    IceServer,
    WhipServer,
    WhipSettings,
    parse_ice_servers,
    whip_settings,
)
from live.ingest.whip.webrtc import IceSettings

__all__ = [
    "IceServer",
    "IceSettings",
    "WhipServer",
    "WhipSettings",
    "parse_ice_servers",
    "whip_settings",
]
