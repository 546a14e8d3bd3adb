"""The VOD media playlist of a finished recording (HLS §4.4, §6.2.1 for VOD).

Immutable once written: PLAYLIST-TYPE:VOD, ENDLIST, and since the whole recording
is known, TARGETDURATION is simply the longest segment rounded (§4.4.3.1).
"""

from __future__ import annotations

import math

from live.recording.layout import init_key, segment_key
from live.recording.manifest import RecordingIndex


def render_vod_playlist(index: RecordingIndex) -> str:
    segments = index.segments
    longest = max((segment.duration for segment in segments), default=1.0)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max(1, math.floor(longest + 0.5))}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    current_init = None
    for position, segment in enumerate(segments):
        if position > 0 and (segment.discontinuity or segment.init != current_init):
            lines.append("#EXT-X-DISCONTINUITY")
        if segment.init != current_init:
            lines.append(f'#EXT-X-MAP:URI="{init_key(segment.init)}"')
            current_init = segment.init
        lines.append(f"#EXTINF:{segment.duration:.5f},")
        lines.append(segment_key(segment.number))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
