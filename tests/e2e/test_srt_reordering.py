"""SRT through a link that reorders, duplicates and loses: the recording is intact.

An ffmpeg caller publishes through a UDP relay on loopback that swaps 2 % of
neighbouring datagrams, sends 1 % twice and drops 1 %, both ways. Every datagram
must be placed once and in order, so the recorded MP4 decodes without one error."""

from __future__ import annotations

import subprocess
import time

import pytest
from test_recording import download, wait_ready
from test_srt import srt_counters, srt_publish
from udp_relay import Impairment, UdpRelay

pytestmark = pytest.mark.e2e

SECONDS = 12


@pytest.fixture
def relay(live):
    relay = UdpRelay(
        live.ports["SRT ingest"], Impairment(swap=0.02, duplicate=0.01, drop=0.01), seed=7
    )
    yield relay
    relay.close()


def test_reordered_duplicated_and_lost_datagrams_record_without_a_decoding_error(
    live, processes, relay, tmp_path
):
    stream = live.create_livestream(reconnect_window_s=0)
    # linger: libsrt's live mode would otherwise drop what is still unacknowledged
    # at close; latency as in the field report this test reproduces
    url = f"srt://127.0.0.1:{relay.port}?streamid={stream['stream_key']}&latency=300000&linger=5"
    started = time.monotonic()
    publisher = srt_publish(processes, url, seconds=SECONDS, bitrate="1500k")
    live.wait_playable(stream["playback_id"], timeout=20)
    # The last 1.5 s pass clean: a loss among the very last datagrams is one no
    # later datagram reveals, so no receiver could ask for it again.
    time.sleep(max(0.0, started + SECONDS - 1.5 - time.monotonic()))
    relay.stop_impairing()
    assert publisher.wait(SECONDS + 20) == 0, publisher.stderr.read()
    (asset,) = wait_ready(live, stream["id"])
    up = relay.upstream.counts
    assert up.swapped > 25 and up.duplicated > 10 and up.dropped > 10, up
    assert relay.downstream.counts.swapped > 0, relay.downstream.counts
    counters = srt_counters(live)
    seen = " ".join(f"{k}={v:g}" for k, v in sorted(counters.items()))
    assert counters["packets_lost"] > 10 and counters["packets_dropped"] == 0, seen
    assert counters["packets_recovered"] == counters["packets_lost"], seen
    assert counters.get("ts_packets_corrupt", 0) == 0, seen
    recording = download(live, asset["mp4_url"], tmp_path / "recording.mp4")
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(recording), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decode.returncode == 0 and decode.stderr == "", (decode.stderr, seen, up)
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(recording)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert int(frames.stdout.strip()) >= SECONDS * 30 - 10, frames.stdout  # 30 fps
