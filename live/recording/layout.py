"""The objects of a recorded asset, all under `assets/{asset_id}/`, each written once:

init_1.mp4       an init section (one per version: a new one after a codec or
init_1.json      resolution change), and its tracks
seg_00001.m4s    a complete VOD segment (its CMAF parts, moof+mdat each)
seg_00001.json   its manifest (see manifest.py), written after the segment
index.m3u8       the VOD playlist          } written by finalisation, from the
download.mp4     the fast-start MP4        } manifests and segments that exist
poster.jpg       a frame from the video    }
sprite.jpg       thumbnails for scrubbing, }
sprite.vtt       and their WebVTT track    }

An upload or import is processed into renditions instead of one playlist, each a
fMP4 HLS media playlist with its init and segments, named after the rendition
("720p", "360p", "audio"); `index.m3u8` is then the multivariant playlist over
them, and the MP4, poster and sprite are as above:
720p.m3u8        a rendition's media playlist
720p_init.mp4    its init section
720p_00000.m4s   its segments, numbered from 0

It also keeps, next to its playback objects:
source           the file as it was received (never served)
poster_source    the poster the uploader sent, JPEG or PNG (never served)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from live.storage.base import Storage

PLAYLIST = "index.m3u8"
MP4 = "download.mp4"
POSTER = "poster.jpg"
SPRITE = "sprite.jpg"
SPRITE_VTT = "sprite.vtt"
SOURCE = "source"
POSTER_SOURCE = "poster_source"

_SEGMENT_MANIFEST = re.compile(r"seg_(\d{5,9})\.json")
_SEGMENT = re.compile(r"seg_(\d{5,9})\.m4s")

# A processed upload's rendition names, and the objects of one rendition.
# ASCII digits only: `\d` would take any script's digits, which no stored name has.
RENDITION_NAME = r"(?:[0-9]{1,5}p|audio)"
_RENDITION_OBJECT = RENDITION_NAME + r"(?:\.m3u8|_init\.mp4|_[0-9]{5,9}\.m4s)"
# What /vod serves; manifests are the recorder's own. One path segment of letters,
# digits, "_" and one "." before the extension: nothing can climb out of the asset.
PLAYBACK_NAMES = re.compile(
    r"index\.m3u8|download\.mp4|poster\.jpg|sprite\.jpg|sprite\.vtt|init_[0-9]{1,6}\.mp4"
    r"|seg_[0-9]{5,9}\.m4s"
    "|" + _RENDITION_OBJECT
)
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
    ".json": "application/json",
}


def rendition_playlist(name: str) -> str:
    return f"{name}.m3u8"


def rendition_init(name: str) -> str:
    return f"{name}_init.mp4"


def rendition_segments(name: str) -> str:
    """The segment names of a rendition, as a printf pattern (ffmpeg's HLS muxer)."""
    return f"{name}_%05d.m4s"


def asset_prefix(asset_id: str) -> str:
    return f"assets/{asset_id}/"


def init_key(number: int) -> str:
    return f"init_{number}.mp4"


def init_manifest_key(number: int) -> str:
    return f"init_{number}.json"


def segment_key(number: int) -> str:
    return f"seg_{number:05d}.m4s"


def segment_manifest_key(number: int) -> str:
    return f"seg_{number:05d}.json"


def segment_manifest_number(name: str) -> int | None:
    """The segment a manifest's name belongs to (None for any other name)."""
    match = _SEGMENT_MANIFEST.fullmatch(name)
    return int(match.group(1)) if match else None


def segment_number(name: str) -> int | None:
    match = _SEGMENT.fullmatch(name)
    return int(match.group(1)) if match else None


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(name[name.rfind(".") :], "application/octet-stream")


async def put(
    storage: Storage, prefix: str, name: str, data: bytes, *, durable: bool = True
) -> None:
    """Write one of the asset's objects, with its content type (S3 serves it)."""
    await storage.put(prefix + name, data, content_type=content_type(name), durable=durable)


async def put_file(
    storage: Storage, prefix: str, name: str, path: Path, *, durable: bool = True
) -> None:
    """Move the local file `path` into storage as one of the asset's objects."""
    await storage.put_file(prefix + name, path, content_type=content_type(name), durable=durable)


async def put_parts(
    storage: Storage, prefix: str, name: str, parts: Sequence[bytes], *, durable: bool = True
) -> int:
    """`put` of the concatenation of `parts` (a segment's moof+mdat parts); its size."""
    return await storage.put_parts(
        prefix + name, parts, content_type=content_type(name), durable=durable
    )
