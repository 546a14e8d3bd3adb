"""Public URLs that API answers hand out for ingest and playback.

They are built from `public_url` (or the listen addresses) so that a server behind
NAT or a proxy tells broadcasters and viewers the address they can reach.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PublicUrls:
    http_base: str  # "http://host:8080", no trailing slash
    rtmp_base: str  # "rtmp://host:1935/live"
    srt_base: str  # "srt://host:9000"
    rtmps_base: str | None = None  # "rtmps://host:1936/live" when TLS is configured

    def ingest(self, stream_key: str) -> dict[str, str | None]:
        return {
            "rtmp": f"{self.rtmp_base}/{stream_key}",
            "rtmps": f"{self.rtmps_base}/{stream_key}" if self.rtmps_base else None,
            "srt": f"{self.srt_base}?streamid={stream_key}",
            "whip": f"{self.http_base}/whip",
        }

    def playback(self, playback_id: str) -> dict[str, str]:
        return {
            "hls": f"{self.http_base}/live/{playback_id}/index.m3u8",
            "player": f"{self.http_base}/play/{playback_id}",
        }
