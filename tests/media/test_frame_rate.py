"""Measured frame rates are named as the nominal rates they are near."""

from __future__ import annotations

import pytest

from live.media.frame_rate import nominal_frame_rate


@pytest.mark.parametrize(
    ("measured", "named"),
    [
        (30.048, 30.0), (29.97, 29.97), (29.9701, 29.97), (30000 / 1001, 29.97),
        (23.98, 23.976), (24.05, 24.0), (25.1, 25.0), (49.8, 50.0), (59.94, 59.94),
        (60.2, 60.0), (119.9, 119.88), (14.99, 15.0),
    ],
)  # fmt: skip
def test_a_rate_near_a_nominal_one_is_that_one(measured, named):
    assert nominal_frame_rate(measured) == named


@pytest.mark.parametrize(("measured", "kept"), [(27.3456, 27.346), (40.0, 40.0), (7.5, 7.5)])
def test_other_rates_keep_three_decimals(measured, kept):
    assert nominal_frame_rate(measured) == kept
