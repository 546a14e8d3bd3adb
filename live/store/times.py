"""Time helpers shared by the store and the API.

Every timestamp in the system is a timezone-aware UTC datetime. Answers use
RFC 3339 with a "Z" suffix, the form JavaScript's Date and most clients parse.
The store keeps a fixed-width form whose text order is time order, so that a
plain string comparison (in SQL, or a Redis sorted set later) compares times.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def to_rfc3339(value: datetime) -> str:
    """Format for API answers: whole seconds when exact, else milliseconds, always "Z"."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp that names its offset; naive times are refused.

    Raises ValueError for anything else, so callers can turn it into a 400.
    """
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError("not an RFC 3339 timestamp")
    value = datetime.fromisoformat(text.strip().upper())
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp has no UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-02:00 is past what datetime holds
        raise ValueError("timestamp out of range") from None


def to_storage(value: datetime) -> str:
    """Fixed-width UTC text (microseconds, "Z"): sorts lexically in time order."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_storage(text: str) -> datetime:
    """Inverse of `to_storage`."""
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
