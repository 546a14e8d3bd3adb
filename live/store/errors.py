"""Errors the store raises beyond ValueError for bad arguments."""

from __future__ import annotations


class StaleFence(Exception):
    """A session write carried a fence lower than one already seen for its stream:
    the writer lost the stream's lease to a newer owner, and nothing was changed."""

    def __init__(self, highest: int, given: int | None) -> None:
        super().__init__(f"fence {given} is older than {highest}, the stream's newest owner")
        self.highest = highest
        self.given = given


class StoreUnavailable(Exception):
    """The store cannot be reached now (a cluster's Redis is down or restarting). The
    API answers 503 `unavailable` with Retry-After; nothing was changed, or the change
    is unknown, so a client may retry."""
