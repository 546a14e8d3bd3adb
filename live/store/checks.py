"""Argument checks every store implementation makes the same way, so that bad input
is refused with the same ValueError whichever backend runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from live.store.models import (
    ASSET_ERROR_CODES,
    ASSET_MUTABLE,
    ASSET_STATUSES,
    DELIVERY_STATES,
    SCOPES,
    STATUSES,
)


def check_page(page: int, page_size: int) -> None:
    if page < 1 or page_size < 1:
        raise ValueError("page and page_size start at 1")


def check_fields(changes: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise ValueError(f"fields that cannot be changed: {', '.join(unknown)}")


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")


def check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")


def check_asset_statuses(statuses: Iterable[str]) -> None:
    unknown = set(statuses) - set(ASSET_STATUSES)
    if unknown:
        raise ValueError(f"unknown asset status {sorted(unknown)}")


def check_delivery_state(state: str | None) -> None:
    if state is not None and state not in DELIVERY_STATES:
        raise ValueError(f"unknown delivery state {state!r}")


def check_asset_changes(changes: Mapping[str, Any]) -> None:
    """Only mutable fields, a known status, and `error` as `models.asset_error` makes
    it: a bare string would reach API clients that branch on `error.code`."""
    check_fields(changes, ASSET_MUTABLE)
    if "status" in changes:
        check_asset_statuses([changes["status"]])
    error = changes.get("error")
    if error is not None and (
        not isinstance(error, dict)
        or set(error) != {"code", "message"}
        or error["code"] not in ASSET_ERROR_CODES
    ):
        raise ValueError(f"an asset error is {{'code', 'message'}}, not {error!r}")
