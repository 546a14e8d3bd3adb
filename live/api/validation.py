"""Checks of livestream bodies, one field at a time, naming the bad `param`.

Types are strict (JSON true is a bool, 10 is an int, 10.0 and "10" are not), so a
client bug surfaces as a 400 instead of a surprising setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from live.api.errors import invalid, missing
from live.store.models import LATENCY_MODES, SCOPES, TRANSCODES
from live.store.times import parse_rfc3339, utcnow

NAME_MAX = 200
BAN_REASON_MAX = 500
SRT_PASSPHRASE_MIN, SRT_PASSPHRASE_MAX = 10, 79  # what SRT (libsrt) accepts
RECONNECT_WINDOW_MAX = 3600
MAX_DURATION_MAX = 7 * 24 * 3600


def _name(value: Any, param: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid(param, f"{param} must be a non-empty string")
    if len(value) > NAME_MAX:
        raise invalid(param, f"{param} must be at most {NAME_MAX} characters")
    return value


def _bool(param: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise invalid(param, f"{param} must be true or false")
        return value

    return check


def _choice(param: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices or not isinstance(value, str):
            raise invalid(param, f"{param} must be one of: {', '.join(choices)}")
        return value

    return check


def _int_range(param: str, low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise invalid(param, f"{param} must be an integer from {low} to {high}")
        return value

    return check


def _srt_passphrase(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not (SRT_PASSPHRASE_MIN <= len(value) <= SRT_PASSPHRASE_MAX):
        raise invalid(
            "srt_passphrase",
            f"srt_passphrase must be null or a string of {SRT_PASSPHRASE_MIN}"
            f" to {SRT_PASSPHRASE_MAX} characters",
        )
    return value


_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "record": _bool("record"),
    "latency_mode": _choice("latency_mode", LATENCY_MODES),
    "transcode": _choice("transcode", TRANSCODES),
    "reconnect_window_s": _int_range("reconnect_window_s", 0, RECONNECT_WINDOW_MAX),
    "max_duration_s": _int_range("max_duration_s", 1, MAX_DURATION_MAX),
    "srt_passphrase": _srt_passphrase,
}


def _reject_unknown(body: Mapping[str, Any], known: Mapping[str, Any] | tuple[str, ...]) -> None:
    for key in body:
        if key not in known:
            raise invalid(key, f"Unknown parameter: {key}")


def livestream_settings(body: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Validated settings from a POST (`name` required) or PATCH (all optional)."""
    _reject_unknown(body, _SETTINGS)
    if creating and body.get("name") is None:
        raise missing("name")
    return {key: _SETTINGS[key](value) for key, value in body.items()}


def ban_request(body: Mapping[str, Any]) -> tuple[str | None, datetime | None]:
    """(reason, until) of a ban body; `until` must be RFC 3339 and in the future."""
    _reject_unknown(body, ("reason", "until"))
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > BAN_REASON_MAX):
        raise invalid("reason", f"reason must be a string of at most {BAN_REASON_MAX} characters")
    until_text = body.get("until")
    if until_text is None:
        return reason, None
    try:
        until = parse_rfc3339(until_text)
    except (TypeError, ValueError):
        raise invalid(
            "until", "until must be an RFC 3339 time with an offset, e.g. 2026-11-24T00:00:00Z"
        ) from None
    if until <= utcnow():
        raise invalid("until", "until must be in the future")
    return reason, until


def api_key_request(body: Mapping[str, Any]) -> tuple[str, str]:
    """(name, scope) of a new API key; scope defaults to the least power, read."""
    _reject_unknown(body, ("name", "scope"))
    if body.get("name") is None:
        raise missing("name")
    name = _name(body["name"])
    scope = _choice("scope", SCOPES)(body.get("scope", "read"))
    return name, scope
