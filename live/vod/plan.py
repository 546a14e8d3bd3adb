"""What a job makes of a source: the renditions, in which passes, and whether the
source can be repackaged as it is.

The lowest rung is a pass of its own, with the audio, beside a second pass that
makes the other rungs; both run at once (`child.py`), and the first, a fraction of
the work (a 360p rung is about a seventh of a 720p ladder's pixels), ends long
before the second, so the asset is `viewable` while the rest is encoded. The price
is decoding the source twice, small beside encoding; the gain is a playable asset
early in a long job, and a restart point: a job that dies after the first pass
keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from live.ladder.plan import Rung, plan_ladder
from live.vod.probe import SourceInfo

AUDIO = "audio"  # the audio rendition's name (its playlist is audio.m3u8)
AUDIO_BITRATE = 128_000
AUDIO_CODEC = "mp4a.40.2"  # AAC-LC, what the ladder encodes
PASSTHROUGH_VIDEO = ("h264", "hevc")
PASSTHROUGH_AUDIO = ("aac",)


@dataclass(frozen=True, slots=True)
class EncodePass:
    rungs: tuple[Rung, ...]
    audio: bool  # encode the audio rendition in this pass
    last: bool  # the pass that ends the job: the MP4 and pictures come after it
    weight: float  # its share of the job's work, for `progress`


@dataclass(frozen=True, slots=True)
class VodPlan:
    passthrough: bool
    rungs: tuple[Rung, ...] = ()  # highest first
    passes: tuple[EncodePass, ...] = field(default=())


def can_pass_through(source: SourceInfo, clipped: bool) -> bool:
    """Repackaging needs codecs HLS carries, and no cut: a cut must be exact to
    the frame, which only re-encoding gives."""
    if clipped:
        return False
    video_ok = source.video is None or source.video["codec"] in PASSTHROUGH_VIDEO
    audio_ok = source.audio is None or source.audio["codec"] in PASSTHROUGH_AUDIO
    return video_ok and audio_ok


def plan_job(
    source: SourceInfo,
    rungs: list[tuple[int, int]],
    *,
    passthrough: bool,
    clipped: bool,
) -> VodPlan:
    if passthrough and can_pass_through(source, clipped):
        return VodPlan(passthrough=True)
    if source.video is None:
        return VodPlan(False, (), (EncodePass((), True, True, 1.0),))
    planned = vod_rungs(source.video["width"], source.video["height"], rungs)
    lowest, others = planned[-1], tuple(planned[:-1])
    if not others:
        return VodPlan(False, (lowest,), (EncodePass((lowest,), True, True, 1.0),))
    total = sum(_pixels(rung) for rung in planned)
    first = max(0.05, _pixels(lowest) / total)
    return VodPlan(
        False,
        tuple(planned),
        (EncodePass((lowest,), True, False, first), EncodePass(others, False, True, 1 - first)),
    )


def vod_rungs(width: int, height: int, rungs: list[tuple[int, int]]) -> list[Rung]:
    """The configured rungs at or below the source height; a source smaller than
    every rung gets one rendition at its own size, at the lowest rung's bitrate."""
    planned = plan_ladder(width, height, rungs, at_source_height=True)
    if planned:
        return planned
    bitrate = min(bitrate for _, bitrate in rungs)
    even_height = max(2, height - height % 2)
    return [Rung(f"{even_height}p", max(2, width - width % 2), even_height, bitrate)]


def _pixels(rung: Rung) -> int:
    return rung.width * rung.height
