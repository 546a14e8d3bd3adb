"""The /live URL layout: which stream, player, rendition and file a raw target names."""

from __future__ import annotations

import pytest

from live.hls.paths import LiveTarget, parse_live_target


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/live/pb_1/index.m3u8", LiveTarget("pb_1", "multivariant")),
        ("/live/pb_1/index.m3u8?token=a", LiveTarget("pb_1", "multivariant", query="token=a")),
        ("/live/pb_1/source/index.m3u8", LiveTarget("pb_1", "playlist", "source")),
        (
            "/live/pb_1/pl_Ab-_9/720p/index.m3u8?_HLS_msn=3&_HLS_part=1",
            LiveTarget("pb_1", "playlist", "720p", "pl_Ab-_9", query="_HLS_msn=3&_HLS_part=1"),
        ),
        ("/live/pb_1/pl_x/source/part-12.m4s", LiveTarget("pb_1", "part", "source", "pl_x", 12)),
        ("/live/pb_1/source/seg-0.m4s", LiveTarget("pb_1", "segment", "source", None, 0)),
        ("/live/pb_1/pl_x/audio/init-7000.mp4", LiveTarget("pb_1", "init", "audio", "pl_x", 7000)),
        # percent-escapes are decoded (no player's URL has any)
        ("/live/pb_1/sour%63e/part-1.m4s", LiveTarget("pb_1", "part", "source", None, 1)),
    ],
)
def test_targets_we_serve(raw: str, expected: LiveTarget) -> None:
    assert parse_live_target(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "/live/pb_1",
        "/live/pb_1/",
        "/live//index.m3u8",
        "/live/pb_1/other.m3u8",
        "/live/pb_1/source/",
        "/live/pb_1/source/part-.m4s",
        "/live/pb_1/source/part-1.mp4",
        "/live/pb_1/source/seg-1x.m4s",
        "/live/pb_1/source/part-\u0661.m4s",  # a digit, but not an ASCII one
        "/live/pb_1/source/part-1234567890123456789.m4s",  # beyond 18 digits
        "/live/pb_1/source/thing-1.m4s",
        "/live/pb_1/nobody/source/index.m3u8",  # a third segment must be a player id
        "/live/pb_1/pl_/source/index.m3u8",
        f"/live/pb_1/pl_{'a' * 41}/source/index.m3u8",
        "/live/pb_1/pl_a/extra/source/part-1.m4s",
        "/live/pb_1/pl_a//part-1.m4s",
        "/vod/pb_1/index.m3u8",
    ],
)
def test_targets_that_name_nothing(raw: str) -> None:
    assert parse_live_target(raw) is None
