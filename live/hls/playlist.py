"""Playlist text: pure functions of a window snapshot (and, for the multivariant, of
the renditions), so every tag rule can be tested without a server or an event loop.

Conventions that matter to players:
- URIs are relative. The multivariant puts the player's id (if any) in front of each
  media playlist URI as a path segment (`paths.py`), so every URI inside that playlist
  carries it without the playlist itself naming it: one body serves every player. The
  request's own query (minus `_HLS_*`, say a CDN token) is copied onto each URI.
- DISCONTINUITY, MAP and PROGRAM-DATE-TIME come before a segment's first EXT-X-PART
  (§4.4.4.9), and MAP is repeated at the top of the listed segments and after changes.
- TARGETDURATION never changes for a window; PART-HOLD-BACK is 3 x PART-TARGET (AppleAS
  §14.3 makes that a MUST, the RFC only a SHOULD); CAN-SKIP-UNTIL is 6 x TD.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from live.hls.snapshot import SegmentInfo, WindowSnapshot

if TYPE_CHECKING:
    from live.hls.stream import Rendition

LOW_LATENCY_VERSION = 9  # EXT-X-SKIP needs 9 (§8)
STANDARD_VERSION = 6  # EXT-X-MAP without I-FRAMES-ONLY needs 6
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class RenditionReport:
    """Where another rendition stands, for `#EXT-X-RENDITION-REPORT` (§4.4.5.4)."""

    name: str
    last_msn: int
    last_part: int


def part_hold_back(part_target: float) -> float:
    return 3 * part_target


def can_skip_until(target_duration: int) -> float:
    return 6.0 * target_duration


def with_query(uri: str, query: str) -> str:
    return f"{uri}?{query}" if query else uri


def format_pdt(value: datetime) -> str:
    """ISO 8601 with milliseconds and a Z, as players parse it most reliably."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def delta_skip_count(snap: WindowSnapshot) -> int:
    """How many leading segments a delta update may replace with EXT-X-SKIP (§6.2.5.1).

    Only whole closed segments that end before the Skip Boundary (playlist duration
    minus CAN-SKIP-UNTIL) qualify. Skipping stops before the first segment carrying a
    DISCONTINUITY: a delta without that tag would leave a client that counts
    discontinuities from the visible tags with the wrong sequence number. 0 means
    "serve the full playlist".
    """
    if snap.ended:
        return 0
    total = sum(s.duration for s in snap.segments)
    boundary = total - can_skip_until(snap.target_duration)
    count = 0
    elapsed = 0.0
    for seg in snap.segments:
        elapsed += seg.duration
        if not seg.closed or seg.discontinuity or elapsed > boundary + _EPS:
            break
        count += 1
    return count


def render_media_playlist(
    snap: WindowSnapshot,
    *,
    low_latency: bool = True,
    query: str = "",
    skip: bool = False,
    reports: Iterable[RenditionReport] = (),
) -> str:
    """The media playlist of one rendition.

    `skip` asks for a delta update; it is honoured only in low-latency mode, without
    ENDLIST, and when at least one segment can be skipped. `reports` lists the *other*
    renditions; they are written only in low-latency mode.
    """
    td = snap.target_duration
    lines = ["#EXTM3U"]
    if low_latency:
        lines += [
            f"#EXT-X-VERSION:{LOW_LATENCY_VERSION}",
            f"#EXT-X-TARGETDURATION:{td}",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
            f"PART-HOLD-BACK={part_hold_back(snap.part_target):.3f},"
            f"CAN-SKIP-UNTIL={can_skip_until(td):.3f}",
            f"#EXT-X-PART-INF:PART-TARGET={snap.part_target:.3f}",
        ]
        segments: Sequence[SegmentInfo] = snap.segments
    else:
        lines += [f"#EXT-X-VERSION:{STANDARD_VERSION}", f"#EXT-X-TARGETDURATION:{td}"]
        segments = snap.closed_segments
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{snap.media_sequence}")
    if snap.discontinuity_sequence > 0:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{snap.discontinuity_sequence}")

    skipped = delta_skip_count(snap) if (low_latency and skip) else 0
    if skipped:
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")

    current_init: int | None = None
    for seg in segments[skipped:]:
        if seg.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if seg.init_id != current_init:
            lines.append(f'#EXT-X-MAP:URI="{with_query(f"init-{seg.init_id}.mp4", query)}"')
            current_init = seg.init_id
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(seg.program_date_time)}")
        if low_latency and seg.parts is not None:
            lines.extend(_part_line(p.index, p.duration, p.independent, query) for p in seg.parts)
        if seg.closed:
            lines.append(f"#EXTINF:{seg.duration:.5f},")
            lines.append(with_query(f"seg-{seg.msn}.m4s", query))

    if low_latency and not snap.ended and snap.has_parts:
        if snap.pending_init_id is not None:
            uri = with_query(f"init-{snap.pending_init_id}.mp4", query)
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=MAP,URI="{uri}"')
        uri = with_query(f"part-{snap.next_part}.m4s", query)
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{uri}"')
    if low_latency:
        for report in reports:
            uri = with_query(f"../{quote(report.name, safe='')}/index.m3u8", query)
            lines.append(
                f'#EXT-X-RENDITION-REPORT:URI="{uri}",'
                f"LAST-MSN={report.last_msn},LAST-PART={report.last_part}"
            )
    if snap.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _part_line(index: int, duration: float, independent: bool, query: str) -> str:
    uri = with_query(f"part-{index}.m4s", query)
    line = f'#EXT-X-PART:DURATION={duration:.5f},URI="{uri}"'
    return line + ",INDEPENDENT=YES" if independent else line


def render_multivariant(
    renditions: Sequence[Rendition], *, player_id: str | None = None, query: str = ""
) -> str:
    """The multivariant playlist: one EXT-X-STREAM-INF per rendition, in the given order.

    Every segment starts with an IDR (B.1), hence INDEPENDENT-SEGMENTS. `player_id`
    becomes the first path segment of each media playlist URI.
    """
    lines = ["#EXTM3U", "#EXT-X-INDEPENDENT-SEGMENTS"]
    prefix = f"{player_id}/" if player_id else ""
    for r in renditions:
        attrs = [f"BANDWIDTH={int(r.bandwidth)}"]
        if r.average_bandwidth is not None:
            attrs.append(f"AVERAGE-BANDWIDTH={int(r.average_bandwidth)}")
        if r.codecs:
            attrs.append(f'CODECS="{r.codecs}"')
        if r.resolution is not None and not r.audio_only:
            attrs.append(f"RESOLUTION={r.resolution[0]}x{r.resolution[1]}")
        if r.frame_rate is not None and not r.audio_only:
            attrs.append(f"FRAME-RATE={r.frame_rate:.3f}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(with_query(f"{prefix}{quote(r.name, safe='')}/index.m3u8", query))
    return "\n".join(lines) + "\n"
