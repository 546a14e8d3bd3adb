"""HTTP details shared by the /live handlers: CORS, Cache-Control, Accept-Encoding,
errors, and the `Answer` a request gets before either server sends it.

Kept apart from the handlers so the caching policy (HLS B.1 recommendations) reads in
one place. An answer is plain data (status, headers, body) because two servers send
them: aiohttp for requests routed through the application, and the front of the port
(`front.py`) for the `/live` requests it answers itself.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass

from multidict import CIMultiDict

from live.hls.paths import LiveTarget

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"

CORS_HEADERS = {
    # Playback is public: any page may embed the player (API.md).
    "Access-Control-Allow-Origin": "*",
    # hls.js reads Age to tune in behind a CDN.
    "Access-Control-Expose-Headers": "Age",
}

IMMUTABLE = "public, max-age=3600, immutable"
NO_CACHE = "no-cache"
# A multivariant playlist that hands this viewer its own id: no shared cache may
# give it to anyone else.
PER_VIEWER = "private, no-cache"
# A multivariant playlist that is the same for everyone: players always ask again
# (renditions come and go), a caching edge in front may answer for a second.
SHARED_BRIEFLY = "max-age=0, s-maxage=1"


def blocking_playlist_max_age(target_duration: int) -> str:
    return f"max-age={6 * target_duration}"


def playlist_max_age(target_duration: int) -> str:
    """A non-blocking playlist may be reused for half a target duration (at least 1 s)."""
    return f"max-age={max(1, int(0.5 * target_duration))}"


def playlist_error_max_age(target_duration: int) -> str:
    return f"max-age={max(1, target_duration)}"


@functools.lru_cache(maxsize=128)
def accepts_gzip(header: str) -> bool:
    """True when an Accept-Encoding value lists gzip (or *) without q=0. Players send
    one of a few values, so each is parsed once."""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().lower().replace(" ", "")
        return not (q.startswith("q=") and _is_zero(q[2:]))
    return False


def _is_zero(value: str) -> bool:
    try:
        return float(value) == 0
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """Response headers (all but Content-Length, Date and Connection), both as aiohttp
    takes them and as the header lines the front writes. The heads of 200 answers are
    built once per kind and shared by every response."""

    headers: CIMultiDict[str]
    lines: bytes

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> ResponseHead:
        headers = CIMultiDict(pairs)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return cls(headers, lines.encode("latin-1"))


@dataclass(slots=True)
class Answer:
    """What a `/live` request is answered with. `target` is set on the answers the
    request hook is told of once sent (the successful ones)."""

    status: int
    head: ResponseHead
    body: bytes | tuple[bytes, ...]  # a tuple: a segment, sent part by part (no join)
    target: LiveTarget | None = None


def error_answer(
    status: int,
    code: str,
    message: str,
    *,
    cache_control: str = NO_CACHE,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """A JSON error in the API's shape, with the CORS headers every /live answer has."""
    error: dict[str, str] = {"code": code, "message": message}
    if param is not None:
        error["param"] = param
    head = ResponseHead.of(
        {
            **CORS_HEADERS,
            "Content-Type": "application/json; charset=utf-8",
            "Cache-Control": cache_control,
            **(headers or {}),
        }.items()
    )
    return Answer(status, head, json.dumps({"error": error}).encode())
