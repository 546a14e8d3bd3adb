"""The fuzz targets: their recorded seeds reach deep into each core, and a short
coverage-guided run of each (a few thousand executions) finds nothing.

The long run is `bench/fuzz_long_run.py`; its figures are in bench/BENCHMARKS.md.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from fuzz import CORPUS, TARGETS, command
from fuzz import mpegts as mpegts_target
from fuzz import rtmp as rtmp_target
from fuzz import srt as srt_target
from fuzz import whip as whip_target
from live.ingest.mpegts import converter_for, demux_items, open_ts
from live.ingest.whip.offer import choose, parse_offer
from live.media.packet import MediaPacket
from live.protocols.rtmp import PublishRequested, VideoConfig, VideoFrame

REPO = Path(__file__).resolve().parents[2]
# Executions per target in CI: seconds each, enough to mutate every seed many times.
SHORT_RUNS = {"rtmp": 3000, "srt": 1000, "mpegts": 500, "whip": 5000}
# The same mutations every time: a test that fails fails again, with the same input.
SEED = 1


def seeds(target: str) -> list[bytes]:
    found = [path.read_bytes() for path in sorted((CORPUS / target).iterdir())]
    assert found, f"no seeds for {target}: python -m fuzz.capture records them"
    return found


@pytest.mark.parametrize("target", TARGETS)
def test_a_short_fuzzing_run_finds_nothing(target, tmp_path):
    scratch, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    scratch.mkdir()
    artifacts.mkdir()
    result = subprocess.run(
        command(target, SHORT_RUNS[target], scratch, artifacts, timeout_s=30, seed=SEED),
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # set order too: the same run each time
    )  # fmt: skip
    found = sorted(path.name for path in artifacts.iterdir())
    assert result.returncode == 0 and not found, (found, result.stderr[-4000:])
    assert f"#{SHORT_RUNS[target]}\tDONE" in result.stderr


def test_each_rtmp_seed_publishes_video_and_the_hevc_one_in_enhanced_tags():
    codecs = set()
    for seed in seeds("rtmp"):
        events = rtmp_target.feed([seed])
        assert any(isinstance(e, PublishRequested) for e in events)
        assert any(isinstance(e, VideoFrame) and e.keyframe for e in events)
        codecs |= {e.codec for e in events if isinstance(e, VideoConfig)}
        rtmp_target.check(seed)
    assert codecs == {"h264", "hevc"}


def test_each_srt_seed_connects_and_delivers_the_transport_stream():
    for seed in seeds("srt"):
        delivered = srt_target.run(seed)
        assert delivered and delivered[0][:1] == b"\x47"  # a TS sync byte: decrypted


def test_each_ts_seed_gives_video_packets():
    for seed in seeds("mpegts"):
        container = open_ts(io.BytesIO(seed))
        try:
            items = [i for batch in demux_items(container, converter_for(container)) for i in batch]
        finally:
            container.close()
        video = [i for i in items if isinstance(i, MediaPacket) and i.kind == "video"]
        assert video and video[0].keyframe
        for packet in video:
            mpegts_target.check_nal_units(packet.data)


def test_each_whip_seed_is_an_offer_we_answer():
    for seed in seeds("whip"):
        choice = choose(parse_offer(seed.decode()), "auto")
        assert "video" in choice.kinds
        whip_target.check(seed)
