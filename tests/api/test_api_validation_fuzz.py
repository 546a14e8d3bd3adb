"""Any JSON body gives either settings or an ApiError naming a 4xx: never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from live.api.errors import ApiError
from live.api.validation import api_key_request, ban_request, livestream_settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=90),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
field_names = st.sampled_from(
    ["name", "record", "latency_mode", "transcode", "reconnect_window_s", "max_duration_s",
     "srt_passphrase", "reason", "until", "scope", "other"]
)  # fmt: skip
bodies = st.dictionaries(field_names, json_values, max_size=5)


def _check(call: Any, body: dict[str, Any]) -> None:
    try:
        call(body)
    except ApiError as exc:
        assert 400 <= exc.status < 500
        assert exc.param is not None


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_livestream_bodies(body: dict[str, Any]) -> None:
    _check(lambda b: livestream_settings(b, creating=True), body)
    _check(lambda b: livestream_settings(b, creating=False), body)


@settings(max_examples=200, deadline=None)
@given(bodies)
def test_ban_and_api_key_bodies(body: dict[str, Any]) -> None:
    _check(ban_request, body)
    _check(api_key_request, body)
