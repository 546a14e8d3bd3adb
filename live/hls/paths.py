"""The `/live` URL layout, read straight from the raw request target.

    /live/{playback_id}/index.m3u8                          multivariant (fixed by API.md)
    /live/{playback_id}/{player_id}/{rendition}/{file}      what the multivariant hands out
    /live/{playback_id}/{rendition}/{file}                  the same without a player id

`{file}` is `index.m3u8`, `part-{n}.m4s`, `seg-{n}.m4s` or `init-{n}.mp4`. The player id
is a path segment so that the relative URIs of one media playlist body carry every
player's own id, and a caching edge can cut it out of its cache key.

Parsing works on the raw target because every viewer's URLs are distinct (its id):
routing them through aiohttp's router means decoding and caching a URL object per
request that is never seen again. A target with percent-escapes is decoded first; no
player's URL has any.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple
from urllib.parse import unquote

Kind = Literal["multivariant", "playlist", "part", "segment", "init"]

PLAYER_ID = re.compile(r"pl_[A-Za-z0-9_-]{1,40}")
MAX_INDEX_DIGITS = 18
_FILES: dict[str, tuple[Kind, str]] = {
    "part-": ("part", ".m4s"),
    "seg-": ("segment", ".m4s"),
    "init-": ("init", ".mp4"),
}


class LiveTarget(NamedTuple):
    """One `/live` request: which stream, player, rendition and file it asks for (a
    named tuple: made for every request, and three times cheaper to build than a
    frozen dataclass)."""

    playback_id: str
    kind: Kind
    rendition: str | None = None
    player_id: str | None = None
    index: int | None = None  # n of part-n, seg-n, init-n
    query: str = ""  # the raw query string, still percent-encoded


def parse_live_target(raw_target: str) -> LiveTarget | None:
    """The target of a `/live/...` request, or None when it names nothing we serve."""
    path, _, query = raw_target.partition("?")
    if "%" in path:
        path = unquote(path)
    segments = path.split("/")
    count = len(segments)
    if count < 4 or count > 6 or segments[1] != "live" or not segments[2]:
        return None
    playback_id, name = segments[2], segments[-1]
    if count == 4:
        if name != "index.m3u8":
            return None
        return LiveTarget(playback_id, "multivariant", query=query)
    rendition = segments[-2]
    player_id = None
    if count == 6:
        player_id = segments[3]
        if not PLAYER_ID.fullmatch(player_id):
            return None
    if not rendition:
        return None
    if name == "index.m3u8":
        return LiveTarget(playback_id, "playlist", rendition, player_id, query=query)
    prefix = name[: name.find("-") + 1]
    known = _FILES.get(prefix)
    if known is None:
        return None
    kind, suffix = known
    digits = name[len(prefix) : -len(suffix)]
    if (
        not name.endswith(suffix)
        or not (digits.isascii() and digits.isdigit())  # no look-alike digits
        or not digits.isascii()
        or len(digits) > MAX_INDEX_DIGITS
    ):
        return None
    return LiveTarget(playback_id, kind, rendition, player_id, int(digits), query)
