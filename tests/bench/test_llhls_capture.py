"""The load tool's static mode: which file stands for which request, and the replay's
timing (`bench/llhls_capture.py`).

Every distinct blocking reload must be its own file (else nginx would serve one
playlist for all and do less work than the origin), the player id must not matter,
and the replay cycle must put one part duration between its last reload and the
first of the next cycle.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from llhls_capture import Captured, plan, static_path, write_capture


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/live/abc/index.m3u8", "/live/abc/index.m3u8"),
        ("/live/abc/720p/part-42.m4s?pl=Xy_9", "/live/abc/720p/part-42.m4s"),
        (
            "/live/abc/720p/index.m3u8?pl=Xy&_HLS_msn=42&_HLS_part=3&_HLS_skip=YES",
            "/live/abc/720p/index.msn42.part3.skipYES.m3u8",
        ),
        # The order of the directives in the query does not matter; the name's does.
        ("/p/index.m3u8?_HLS_part=0&_HLS_msn=7", "/p/index.msn7.part0.m3u8"),
        ("/p/playlist?_HLS_msn=7", "/p/playlist.msn7"),
        ("/p/./x/../init.mp4", "/p/init.mp4"),
        ("/../etc/passwd", "/etc/passwd"),  # under the capture's root, as any path
    ],
)
def test_static_path(target: str, path: str) -> None:
    assert static_path(target) == path


@pytest.mark.parametrize(
    "target",
    ["/", "relative/index.m3u8", "/p/index.m3u8?_HLS_msn=../x", "//host/x"],
)
def test_static_path_refuses_what_is_no_file_under_the_root(target: str) -> None:
    with pytest.raises(ValueError):
        static_path(target)


def captured(what: str, target: str, at: float, *, joining: bool = False) -> Captured:
    return Captured(what, target, b"x", False, at, joining)


def test_plan_cycles_one_part_after_the_last_reload() -> None:
    media = "/live/abc/720p/index.m3u8?pl=1"
    schedule = plan(
        [
            captured("multivariant", "/live/abc/index.m3u8", 9.0, joining=True),
            captured("playlist", media, 9.1, joining=True),
            captured("part", "/live/abc/720p/part-1.m4s?pl=1", 9.2, joining=True),
            captured("part", "/live/abc/720p/part-2.m4s?pl=1", 9.98),  # the hinted part
            captured("playlist", media + "&_HLS_msn=1&_HLS_part=0", 10.0),
            captured("part", "/live/abc/720p/part-3.m4s?pl=1", 10.2),
            captured("playlist", media + "&_HLS_msn=1&_HLS_part=1", 10.2),
            captured("part", "/live/abc/720p/part-4.m4s?pl=1", 10.4),
            captured("playlist", media + "&_HLS_msn=1&_HLS_part=2", 10.4),
        ]
    )
    assert schedule.joining == (
        ("multivariant", "/live/abc/index.m3u8"),
        ("playlist", "/live/abc/720p/index.m3u8"),
        ("part", "/live/abc/720p/part-1.m4s"),
    )
    assert schedule.period == pytest.approx(0.6)  # three reloads, 200 ms apart
    offsets = [round(offset, 3) for offset, _, _ in schedule.steps]
    assert offsets == [0.0, 0.02, 0.22, 0.22, 0.42, 0.42]
    assert [path for _, what, path in schedule.steps if what == "playlist"] == [
        "/live/abc/720p/index.msn1.part0.m3u8",
        "/live/abc/720p/index.msn1.part1.m3u8",
        "/live/abc/720p/index.msn1.part2.m3u8",
    ]
    assert not schedule.gzip


def test_plan_needs_two_reloads() -> None:
    with pytest.raises(ValueError, match="too short"):
        plan([captured("playlist", "/p/index.m3u8?_HLS_msn=1&_HLS_part=0", 1.0)])


def test_write_capture_keeps_gzip_as_sent_and_unzipped(tmp_path: Path) -> None:
    text = b"#EXTM3U\n#EXT-X-VERSION:9\n"
    responses = [
        Captured("playlist", "/p/index.m3u8?_HLS_msn=1&_HLS_part=0", gzip.compress(text), True,
                 1.0, False),
        Captured("playlist", "/p/index.m3u8?_HLS_msn=1&_HLS_part=1", gzip.compress(text), True,
                 1.2, False),
        Captured("part", "/p/part-1.m4s?pl=a", b"\0" * 10, False, 1.2, False),
    ]  # fmt: skip
    schedule = write_capture(responses, tmp_path)
    assert schedule.gzip
    assert (tmp_path / "p/index.msn1.part0.m3u8").read_bytes() == text
    assert (tmp_path / "p/index.msn1.part0.m3u8.gz").read_bytes() == responses[0].body
    assert (tmp_path / "p/part-1.m4s").read_bytes() == b"\0" * 10
    assert not (tmp_path / "p/part-1.m4s.gz").exists()
