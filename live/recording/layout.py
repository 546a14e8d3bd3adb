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
"""

from __future__ import annotations

import re

from live.storage.base import Storage

PLAYLIST = "index.m3u8"
MP4 = "download.mp4"
POSTER = "poster.jpg"
SPRITE = "sprite.jpg"
SPRITE_VTT = "sprite.vtt"

_SEGMENT_MANIFEST = re.compile(r"seg_(\d{5,9})\.json")
_SEGMENT = re.compile(r"seg_(\d{5,9})\.m4s")

# What /vod serves; manifests are the recorder's own.
# ASCII digits only: `\d` would take any script's digits, which no stored name has.
PLAYBACK_NAMES = re.compile(
    r"index\.m3u8|download\.mp4|poster\.jpg|sprite\.jpg|sprite\.vtt|init_[0-9]{1,6}\.mp4"
    r"|seg_[0-9]{5,9}\.m4s"
)
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
    ".json": "application/json",
}


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


async def put(storage: Storage, prefix: str, name: str, data: bytes) -> None:
    """Write one of the asset's objects, with its content type (S3 serves it)."""
    await storage.put(prefix + name, data, content_type=content_type(name))
