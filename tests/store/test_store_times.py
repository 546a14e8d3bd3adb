"""Timestamps: the storage form must keep time order as text order, and round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from live.store.times import from_storage, parse_rfc3339, to_rfc3339, to_storage

aware = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)


@given(aware, aware)
def test_storage_text_sorts_like_time(a: datetime, b: datetime) -> None:
    assert (to_storage(a) < to_storage(b)) == (a < b)
    assert from_storage(to_storage(a)) == a


@given(aware)
def test_rfc3339_round_trip_to_the_millisecond(value: datetime) -> None:
    text = to_rfc3339(value)
    assert text.endswith("Z")
    assert parse_rfc3339(text) == value.replace(microsecond=value.microsecond // 1000 * 1000)


def test_rfc3339_forms() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert to_rfc3339(datetime(2026, 11, 23, 12, 0, tzinfo=plus_two)) == "2026-11-23T10:00:00Z"
    assert to_rfc3339(datetime(2026, 1, 1, 0, 0, 0, 5000, tzinfo=UTC)) == "2026-01-01T00:00:00.005Z"
    assert parse_rfc3339("2026-11-24t00:00:00z") == datetime(2026, 11, 24, tzinfo=UTC)
    assert parse_rfc3339("2026-11-24T01:30:00+01:30") == datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["2026-11-24", "2026-11-24T00:00:00", "soon", "", "9999-12-31T23:00:00-02:00"]
)
def test_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_storage_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        to_storage(datetime(2026, 1, 1))
