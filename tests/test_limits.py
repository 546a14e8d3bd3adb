"""LimitHits: every refusal counted, the log spared a flood."""

from __future__ import annotations

import logging

from live.limits import LimitHits


def test_every_refusal_is_counted_and_a_flood_logs_a_line_per_interval(caplog):
    now = [0.0]
    hits = LimitHits(log_every_s=10.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="live.limits")
    for _ in range(50):
        hits.hit("max_viewers", "viewer refused")
    hits.hit("max_publishers", "publish refused", level=logging.INFO)
    now[0] = 10.0
    hits.hit("max_viewers", "viewer refused")
    assert hits.counts == {"max_viewers": 51, "max_publishers": 1}
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "viewer refused [max_viewers]"),
        (logging.INFO, "publish refused [max_publishers]"),
        (
            logging.WARNING,
            "viewer refused [max_viewers] (50 refused by max_viewers since the last report)",
        ),
    ]
