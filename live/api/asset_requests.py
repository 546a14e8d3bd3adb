"""Checks of `POST /v1/assets` bodies (API.md "Uploads and imports"), one field at a
time, naming the bad `param`, with the same strict types as livestream bodies.

The poster arrives as a `data:` URL; it is decoded here so that a broken one is a
400 before anything is stored, and handed on as bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from live.api.errors import ApiError, invalid, missing
from live.api.validation import NAME_MAX
from live.store.models import ASSET_TRANSCODES

URL_MAX = 2048
HEADERS_MAX = 8192
CLIP_MAX_S = 7 * 24 * 3600.0
POSTER_MAX_BYTES = 5 * 1024 * 1024

_KNOWN = (
    "name",
    "origin_url",
    "origin_http_headers",
    "clip_start_s",
    "clip_duration_s",
    "transcode",
    "poster",
    "size_bytes",
)
# RFC 9110 field names are tokens; values are visible characters, spaces and tabs.
_HEADER_LINE = re.compile(
    r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*([\x21-\x7e\x80-\xff][\x20-\x7e\x80-\xff\t]*)?"
)
_DATA_URL = re.compile(r"data:image/(jpeg|png);base64,([A-Za-z0-9+/=\s]+)")
_IMAGE_MAGIC = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}


@dataclass(frozen=True, slots=True)
class Poster:
    """An uploaded poster image, checked to be the JPEG or PNG it claims."""

    data: bytes
    kind: str  # "jpeg" or "png"


@dataclass(frozen=True, slots=True)
class AssetRequest:
    name: str
    origin_url: str | None
    origin_http_headers: str | None
    clip_start_s: float | None
    clip_duration_s: float | None
    transcode: str
    poster: Poster | None
    size_bytes: int | None


def asset_request(body: Mapping[str, Any], *, max_upload_bytes: int) -> AssetRequest:
    """A validated creation request. A `size_bytes` over `max_upload_bytes` is 413
    `payload_too_large` at once: no byte of such a file is ever accepted."""
    for key in body:
        if key not in _KNOWN:
            raise invalid(key, f"Unknown parameter: {key}")
    if body.get("name") is None:
        raise missing("name")
    name = body["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
        raise invalid("name", f"name must be a non-empty string of at most {NAME_MAX} characters")
    origin_url = _origin_url(body.get("origin_url"))
    headers = _headers(body.get("origin_http_headers"))
    if headers is not None and origin_url is None:
        raise invalid("origin_http_headers", "origin_http_headers needs an origin_url")
    transcode = body.get("transcode", "ladder")
    if not isinstance(transcode, str) or transcode not in ASSET_TRANSCODES:
        raise invalid("transcode", f"transcode must be one of: {', '.join(ASSET_TRANSCODES)}")
    size = body.get("size_bytes")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise invalid("size_bytes", "size_bytes must be null or a positive integer")
        if size > max_upload_bytes:
            raise ApiError(
                413,
                "payload_too_large",
                f"size_bytes {size} is over the limit of {max_upload_bytes} bytes",
                "size_bytes",
            )
    return AssetRequest(
        name=name,
        origin_url=origin_url,
        origin_http_headers=headers,
        clip_start_s=_seconds(body.get("clip_start_s"), "clip_start_s", low=0.0),
        clip_duration_s=_seconds(body.get("clip_duration_s"), "clip_duration_s", low=None),
        transcode=transcode,
        poster=_poster(body.get("poster")),
        size_bytes=size,
    )


def _origin_url(value: Any) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > URL_MAX
        or not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value, re.IGNORECASE)
    ):
        raise invalid(
            "origin_url", f"origin_url must be an http or https URL of at most {URL_MAX} characters"
        )
    return value


def _headers(value: Any) -> str | None:
    """`Name: value` lines (CRLF or LF); no line may smuggle another header in."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > HEADERS_MAX:
        raise invalid(
            "origin_http_headers",
            f"origin_http_headers must be a string of at most {HEADERS_MAX} characters",
        )
    lines = [line for line in value.replace("\r\n", "\n").split("\n") if line.strip()]
    for line in lines:
        if not _HEADER_LINE.fullmatch(line.rstrip()):
            raise invalid(
                "origin_http_headers",
                "origin_http_headers must be lines of the form 'Name: value'",
            )
    return "\n".join(line.rstrip() for line in lines)


def _seconds(value: Any, param: str, *, low: float | None) -> float | None:
    """A number of seconds: `low` inclusive, or strictly positive when `low` is None."""
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and value <= CLIP_MAX_S and (value >= low if low is not None else value > 0)
    if not ok:
        bound = "at least 0" if low is not None else "more than 0"
        raise invalid(param, f"{param} must be null or a number of seconds, {bound}")
    return float(value)


def _poster(value: Any) -> Poster | None:
    if value is None:
        return None
    match = _DATA_URL.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise invalid("poster", "poster must be a data: URL of a JPEG or PNG image (base64)")
    kind = match.group(1)
    try:
        data = base64.b64decode(re.sub(r"\s", "", match.group(2)), validate=True)
    except (binascii.Error, ValueError):
        raise invalid("poster", "poster is not valid base64") from None
    if len(data) > POSTER_MAX_BYTES:
        raise invalid("poster", f"poster must be at most {POSTER_MAX_BYTES} bytes")
    if not data.startswith(_IMAGE_MAGIC[kind]):
        raise invalid("poster", f"poster does not hold a {kind.upper()} image")
    return Poster(data, kind)
