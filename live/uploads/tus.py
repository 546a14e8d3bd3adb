"""The tus 1.0.0 resumable upload protocol (tus.io; core, creation, expiration,
termination, checksum), sans I/O: request headers in, a decision or the response
headers out. No sockets, no store: `live/uploads/routes.py` drives it.

Every refusal is a `TusError` carrying the status the protocol prescribes (412 for
a version we do not speak, 409 for a wrong offset, 415 for a PATCH that is not
`application/offset+octet-stream`, 460 for a checksum mismatch...). Header values
are read strictly: a length or offset is plain ASCII digits, metadata is
`key base64,key base64` with unique keys, so nothing odd reaches the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from live.uploads.refusal import UploadRefused

VERSION = "1.0.0"
EXTENSIONS = ("creation", "expiration", "termination", "checksum")
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
CHUNK_CONTENT_TYPE = "application/offset+octet-stream"
# Every tus header a browser must be allowed to send or read (CORS).
REQUEST_HEADERS = (
    "Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata",
    "Upload-Checksum", "Upload-Defer-Length", "Upload-Concat",
)  # fmt: skip
RESPONSE_HEADERS = (
    "Location", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size",
    "Tus-Checksum-Algorithm", "Upload-Offset", "Upload-Length", "Upload-Metadata",
    "Upload-Expires",
)  # fmt: skip
METADATA_MAX = 4096  # characters of Upload-Metadata
_DIGITS = re.compile(r"[0-9]{1,19}")
_METADATA_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # visible ASCII but ","
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_MAX_INT = 2**63 - 1


class TusError(UploadRefused):
    """A request the protocol refuses; its answer says `Tus-Resumable` too."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, code, message, {"Tus-Resumable": VERSION, **(headers or {})})


@dataclass(frozen=True, slots=True)
class Creation:
    """A valid `POST` (creation): the upload's length and metadata."""

    length: int
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes

    def verifier(self) -> Any:
        """A hashlib object to feed the chunk to."""
        return hashlib.new(self.algorithm)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A valid `PATCH`: where its bytes go, how many it announces (None when sent
    chunked), and the checksum they must have."""

    offset: int
    content_length: int | None
    checksum: Checksum | None = None


def http_date(moment: datetime) -> str:
    """RFC 9110's IMF-fixdate, as `Upload-Expires` wants it."""
    return format_datetime(moment, usegmt=True)


def check_version(headers: Mapping[str, str]) -> None:
    """Every request but OPTIONS: 412 unless it speaks our version."""
    version = headers.get("Tus-Resumable")
    if version != VERSION:
        raise TusError(
            412,
            "tus_version_unsupported",
            f"Tus-Resumable must be {VERSION}" + (f", not {version!r}" if version else ""),
            {"Tus-Version": VERSION},
        )


def _integer(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    if not _DIGITS.fullmatch(value) or int(value) > _MAX_INT:
        raise TusError(400, "invalid_header", f"{name} must be a non-negative integer")
    return int(value)


def parse_metadata(text: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs (the value may be
    absent); keys unique; values UTF-8. Anything else is 400."""
    if text is None or not text.strip():
        return {}
    if len(text) > METADATA_MAX:
        raise TusError(400, "invalid_metadata", f"Upload-Metadata over {METADATA_MAX} characters")
    metadata: dict[str, str] = {}
    for pair in text.split(","):
        parts = pair.strip().split(" ")
        if len(parts) > 2 or not _METADATA_KEY.fullmatch(parts[0]):
            raise TusError(400, "invalid_metadata", "Upload-Metadata must be 'key base64' pairs")
        key, encoded = parts[0], parts[1] if len(parts) == 2 else ""
        if key in metadata:
            raise TusError(400, "invalid_metadata", f"Upload-Metadata repeats {key!r}")
        if not _BASE64.fullmatch(encoded) or len(encoded) % 4:
            raise TusError(400, "invalid_metadata", f"Upload-Metadata {key!r} is not base64")
        try:
            metadata[key] = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise TusError(
                400, "invalid_metadata", f"Upload-Metadata {key!r} is not base64 of UTF-8 text"
            ) from None
    return metadata


def encode_metadata(metadata: Mapping[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode('ascii')}" if value else key
        for key, value in metadata.items()
    )


def read_creation(headers: Mapping[str, str], max_size: int) -> Creation:
    """`POST`: `Upload-Length` (deferred lengths are not offered), over `max_size`
    is 413 before a byte is taken."""
    if "Upload-Defer-Length" in headers:
        raise TusError(
            400, "invalid_header", "Upload-Defer-Length is not supported: send Upload-Length"
        )
    length = _integer(headers, "Upload-Length")
    if length is None:
        raise TusError(400, "invalid_header", "Upload-Length is required")
    if length > max_size:
        raise TusError(
            413,
            "payload_too_large",
            f"Upload-Length {length} is over the limit of {max_size} bytes",
        )
    return Creation(length, parse_metadata(headers.get("Upload-Metadata")))


def read_checksum(value: str | None) -> Checksum | None:
    """`Upload-Checksum: ALGO base64digest`; an algorithm we lack is 400."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise TusError(
            400,
            "checksum_algorithm_unsupported",
            f"Upload-Checksum algorithm must be one of {', '.join(CHECKSUM_ALGORITHMS)}",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise TusError(400, "invalid_header", "Upload-Checksum digest is not base64") from None
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise TusError(400, "invalid_header", f"Upload-Checksum is not a {algorithm} digest")
    return Checksum(algorithm, digest)


def read_chunk(headers: Mapping[str, str], offset: int, length: int) -> Chunk:
    """`PATCH` to an upload at `offset` of `length`: 415 for another content type,
    409 for another offset, 413 for a chunk that would pass the length."""
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != CHUNK_CONTENT_TYPE:
        raise TusError(415, "unsupported_media_type", f"Content-Type must be {CHUNK_CONTENT_TYPE}")
    claimed = _integer(headers, "Upload-Offset")
    if claimed is None:
        raise TusError(400, "invalid_header", "Upload-Offset is required")
    if claimed != offset:
        raise TusError(
            409,
            "upload_offset_mismatch",
            f"Upload-Offset {claimed} is not the upload's offset {offset}",
            {"Upload-Offset": str(offset)},
        )
    content_length = _integer(headers, "Content-Length")
    if content_length is not None and offset + content_length > length:
        raise TusError(
            413, "payload_too_large", f"The chunk would pass Upload-Length ({length} bytes)"
        )
    return Chunk(offset, content_length, read_checksum(headers.get("Upload-Checksum")))


def checksum_mismatch() -> TusError:
    return TusError(
        460, "checksum_mismatch", "Upload-Checksum does not match: the chunk is dropped"
    )


def options_headers(max_size: int) -> dict[str, str]:
    """`OPTIONS`: what this server speaks (no Tus-Resumable needed on either side)."""
    return {
        "Tus-Resumable": VERSION,
        "Tus-Version": VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Max-Size": str(max_size),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
    }


def created_headers(location: str, expires: datetime) -> dict[str, str]:
    """`201 Created` for a POST."""
    return {
        "Tus-Resumable": VERSION,
        "Location": location,
        "Upload-Offset": "0",
        "Upload-Expires": http_date(expires),
    }


def head_headers(
    offset: int, length: int, metadata: Mapping[str, str], expires: datetime
) -> dict[str, str]:
    """`HEAD`: where the upload stands; never cached."""
    headers = {
        "Tus-Resumable": VERSION,
        "Upload-Offset": str(offset),
        "Upload-Length": str(length),
        "Upload-Expires": http_date(expires),
        "Cache-Control": "no-store",
    }
    if metadata:
        headers["Upload-Metadata"] = encode_metadata(metadata)
    return headers


def patch_headers(offset: int, expires: datetime) -> dict[str, str]:
    """`204` after a PATCH: the new offset."""
    return {
        "Tus-Resumable": VERSION,
        "Upload-Offset": str(offset),
        "Upload-Expires": http_date(expires),
    }


def terminated_headers() -> dict[str, str]:
    return {"Tus-Resumable": VERSION}
