"""The `Live-Signature` header: `t=UNIX_TS,v1=HEX`, HEX = HMAC-SHA256 of "{t}.{body}"
with the endpoint's secret.

The timestamp is inside the signed text so a receiver can refuse old replays; the
helpers here are what a receiver (and our tests) use to check a request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "Live-Signature"


def new_secret() -> str:
    """A webhook signing secret, shown once: "whsec_" + 192 random bits."""
    return f"whsec_{secrets.token_urlsafe(24)}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC of one request."""
    message = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for a request sent at `timestamp` (Unix seconds)."""
    return f"t={int(timestamp)},v1={signature(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, *, now: float | None = None, tolerance_s: float = 300
) -> bool:
    """True if `header` signs `body` with `secret` (any v1 value matches) and, when
    `now` is given, its timestamp is within `tolerance_s` of it."""
    fields: dict[str, list[str]] = {}
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if now is not None and abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))
