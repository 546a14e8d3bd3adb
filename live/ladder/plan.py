"""Which renditions a source gets: the configured rungs strictly below its height."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_RUNGS = "1080:6000,720:3000,480:1200,360:700"


@dataclass(frozen=True, slots=True)
class Rung:
    name: str  # "480p": also the rendition's path segment in playback URLs
    width: int
    height: int
    bitrate: int  # bits per second of video


def parse_rungs(text: str) -> list[tuple[int, int]]:
    """ "1080:6000,720:3000" → [(1080, 6_000_000), (720, 3_000_000)] (height, bps)."""
    rungs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        height, _, kbps = item.partition(":")
        if not height.isdigit() or not kbps.isdigit() or int(height) < 2 or int(kbps) < 1:
            raise ValueError(f"a ladder rung is HEIGHT:KBPS, got {item!r}")
        rungs.append((int(height), int(kbps) * 1000))
    return rungs


def plan_ladder(
    width: int, height: int, rungs: list[tuple[int, int]], *, at_source_height: bool = False
) -> list[Rung]:
    """Rungs strictly below the source height (a live ladder passes the source
    through beside them), or at or below it (`at_source_height`: VOD, where every
    rendition is encoded), the source's aspect ratio kept (widths rounded to even
    numbers, as 4:2:0 needs), highest first."""
    if width <= 0 or height <= 0:
        return []
    planned = []
    for rung_height, bitrate in sorted(set(rungs), reverse=True):
        if rung_height > height or (rung_height == height and not at_source_height):
            continue
        rung_width = max(2, round(width * rung_height / height / 2) * 2)
        planned.append(Rung(f"{rung_height}p", rung_width, rung_height - rung_height % 2, bitrate))
    return planned
