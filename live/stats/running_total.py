"""A Prometheus counter summed over objects that come and go.

Per-session figures (bytes a publisher sent, parts a packager made) live on objects
that end with their session, and a new session's object starts again from zero.
Summing only the objects alive at scrape time would make a `_total` counter fall
when a session ends, which Prometheus reads as a process restart (and `rate()`
turns into nonsense). `RunningTotal` keeps what every object it has seen had
counted, so the sum never goes down while the process lives.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class RunningTotal(Generic[T]):
    def __init__(self, count: Callable[[T], int]) -> None:
        self._count = count
        self._retired = 0  # what sources no longer listed had counted
        self._last: dict[int, tuple[weakref.ref[T], int]] = {}

    def update(self, sources: Iterable[T]) -> int:
        """The total over every source ever seen, given the ones listed now."""
        current: dict[int, tuple[weakref.ref[T], int]] = {}
        for source in sources:
            value = self._count(source)
            key = id(source)
            seen = self._last.pop(key, None)
            if seen is not None and seen[0]() is not source:
                self._retire(*seen)  # a new object that reuses a dead one's id
            elif seen is not None and value < seen[1]:
                self._retired += seen[1]  # it started over: keep what it had
            current[key] = (weakref.ref(source), value)
        for ref, value in self._last.values():
            self._retire(ref, value)
        self._last = current
        return self._retired + sum(value for _ref, value in current.values())

    def _retire(self, ref: weakref.ref[T], last_value: int) -> None:
        """A source that is gone: its final count if it is still around to read
        (what came after the last scrape), else what it had then."""
        source = ref()
        self._retired += max(last_value, self._count(source)) if source is not None else last_value
