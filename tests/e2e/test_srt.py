"""SRT in (the ffmpeg CLI and srt-live-transmit, both on libsrt), LL-HLS out.

Also the refusals a caller must see at the handshake, and a stream surviving a
lossy, reordering link (a UDP relay run by the test on loopback)."""

from __future__ import annotations

import random
import select
import socket
import subprocess
import threading
import time
import urllib.parse

import m3u8
import pytest
from harness import Processes, ffprobe_streams, wait_for
from media_fixtures import gop_args

pytestmark = pytest.mark.e2e


def srt_publish(
    processes: Processes, url: str, *, seconds: float = 6, size: str = "640x360",
    bitrate: str | None = None,
) -> subprocess.Popen:  # fmt: skip
    """ffmpeg publishing a real-time test pattern + tone as MPEG-TS over SRT."""
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostats", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", *gop_args(30, 0),
    ]  # fmt: skip
    if bitrate:
        command += ["-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate]
    command += ["-c:a", "aac", "-b:a", "96k", "-f", "mpegts", url]
    return processes.popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def refused(process: subprocess.Popen) -> str:
    """Wait for a caller that should be rejected; return what it printed."""
    _out, err = process.communicate(timeout=20)
    assert process.returncode != 0, err
    assert "REJECT" in err and "Connection" in err, err
    return err


def ended_playlist(live, media_url: str) -> m3u8.M3U8:
    def ended():
        text = live.get(media_url)[1].decode()
        return "#EXT-X-ENDLIST" in text and text

    return m3u8.loads(wait_for(ended, 15, message="ENDLIST"), uri=media_url)


def srt_counters(live) -> dict[str, float]:
    text = live.get("/metrics")[1].decode()
    counters = {}
    for line in text.splitlines():
        if line.startswith("live_srt_total{"):
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            counters[kind] = float(line.rsplit(" ", 1)[1])
    return counters


def test_ffmpeg_publishes_with_the_api_ingest_url_and_it_plays(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    url = stream["ingest"]["srt"]
    assert url == f"srt://127.0.0.1:{live.ports['SRT ingest']}?streamid={stream['stream_key']}"
    publisher = srt_publish(processes, url, seconds=6)
    media_url = live.wait_playable(stream["playback_id"])
    kinds = {s["codec_type"]: s for s in ffprobe_streams(media_url)}
    assert kinds["video"]["codec_name"] == "h264"
    assert (kinds["video"]["width"], kinds["video"]["height"]) == (640, 360)
    assert kinds["audio"]["codec_name"] == "aac"
    current = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]
    session = current["current_session"]
    assert current["status"] == "live" and session["protocol"] == "srt"
    assert 20 <= session["ingest_health"]["fps"] <= 40
    assert publisher.wait(30) == 0, publisher.stderr.read()
    final = ended_playlist(live, media_url)
    assert final.preload_hint is None
    (entry,) = live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]["data"]
    assert entry["protocol"] == "srt" and entry["end_reason"] == "publisher_disconnected"
    assert entry["video"]["codec"] == "h264" and entry["audio"]["codec"] == "aac"


def test_srt_live_transmit_with_the_access_control_stream_id(live, processes):
    stream = live.create_livestream(reconnect_window_s=0)
    stream_id = f"#!::r=live/{stream['stream_key']},m=publish,u=alice"
    port = live.ports["SRT ingest"]
    encoder = processes.popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
         "-i", "testsrc2=size=320x180:rate=30", "-t", "8", "-c:v", "libx264",
         "-preset", "ultrafast", *gop_args(30, 0), "-f", "mpegts", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    transmit = processes.popen(
        ["srt-live-transmit", "-q", "file://con",
         f"srt://127.0.0.1:{port}?streamid={urllib.parse.quote(stream_id, safe='')}"],
        stdin=encoder.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    encoder.stdout.close()
    media_url = live.wait_playable(stream["playback_id"])
    (video,) = ffprobe_streams(media_url)
    assert (video["codec_name"], video["width"]) == ("h264", 320)
    session = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["current_session"]
    assert session["protocol"] == "srt"
    assert encoder.wait(30) == 0
    time.sleep(0.5)
    transmit.terminate()  # it keeps its connection open after its input ends
    transmit.wait(10)
    ended_playlist(live, media_url)


def test_passphrase_protected_stream(live, processes):
    secret = "a long enough secret"
    stream = live.create_livestream(reconnect_window_s=0, srt_passphrase=secret)
    other = live.create_livestream(reconnect_window_s=0)
    key = stream["stream_key"]

    wrong = srt_publish(processes, live.srt_url(key, passphrase="not the secret"), seconds=3)
    assert "Incorrect passphrase" in refused(wrong)
    missing = srt_publish(processes, live.srt_url(key), seconds=3)
    assert "Incorrect passphrase" in refused(missing)
    # an encrypted caller to a stream without a passphrase: encryption mismatch (1011)
    unexpected = srt_publish(
        processes, live.srt_url(other["stream_key"], passphrase=secret), seconds=3
    )
    err = refused(unexpected)
    assert "Incorrect passphrase" not in err
    assert live.api("GET", f"/v1/livestreams/{other['id']}/history")[1]["total"] == 0

    good = srt_publish(
        processes, live.srt_url(f"publish:live/{key}", passphrase=secret, pbkeylen="32"),
        seconds=5,
    )  # fmt: skip
    media_url = live.wait_playable(stream["playback_id"])
    kinds = {s["codec_type"] for s in ffprobe_streams(media_url)}
    assert kinds == {"video", "audio"}
    assert good.wait(30) == 0, good.stderr.read()
    history = live.api("GET", f"/v1/livestreams/{stream['id']}/history")[1]
    assert history["total"] == 1  # the refused callers never opened a session
    assert srt_counters(live).get("packets_undecryptable", 0) == 0
    logged = "".join(live.output)
    assert secret not in logged and "not the secret" not in logged and key not in logged


def test_unknown_key_and_second_publisher_are_refused(live, processes):
    unknown = srt_publish(processes, live.srt_url("sk_no_such_key"), seconds=3)
    refused(unknown)
    stream = live.create_livestream(reconnect_window_s=0)
    first = srt_publish(processes, live.srt_url(stream["stream_key"]), seconds=10)
    live.wait_playable(stream["playback_id"])
    second = srt_publish(processes, live.srt_url(stream["stream_key"]), seconds=3)
    refused(second)
    assert first.poll() is None  # the first one is untouched
    session = live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["current_session"]
    assert session["protocol"] == "srt"
    metrics = live.get("/metrics")[1].decode()
    assert 'live_publish_refused_total{reason="busy"} 1.0' in metrics
    assert 'live_publish_refused_total{reason="unknown_key"} 1.0' in metrics
    assert first.wait(30) == 0
    logged = "".join(live.output)  # keys, right or wrong, are secrets: never logged
    assert stream["stream_key"] not in logged and "sk_no_such_key" not in logged


class LossyRelay:
    """UDP relay between one caller and the server: drops and reorders datagrams
    until `clean()` is called, then forwards everything as it comes."""

    def __init__(self, server_port: int, loss: float, reorder: float, seed: int = 1) -> None:
        self.outer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.outer.bind(("127.0.0.1", 0))
        self.inner = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inner.connect(("127.0.0.1", server_port))
        self.port = self.outer.getsockname()[1]
        self.loss, self.reorder = loss, reorder
        self.random = random.Random(seed)
        self.caller: tuple[str, int] | None = None
        self.counts = {"forwarded": 0, "dropped": 0, "reordered": 0}
        self._lossy = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        held: list[tuple[float, socket.socket, bytes, tuple | None]] = []
        while not self._stop.is_set():
            ready, _, _ = select.select([self.outer, self.inner], [], [], 0.002)
            for sock in ready:
                data, addr = sock.recvfrom(65536)
                if sock is self.outer:
                    self.caller = addr
                    out, target = self.inner, None
                else:
                    out, target = self.outer, self.caller
                draw = self.random.random() if self._lossy else 1.0
                if draw < self.loss:
                    self.counts["dropped"] += 1
                elif draw < self.loss + self.reorder:  # overtaken by what follows
                    self.counts["reordered"] += 1
                    held.append((time.monotonic() + 0.004, out, data, target))
                else:
                    self._send(out, data, target)
            now = time.monotonic()
            for item in [h for h in held if h[0] <= now]:
                held.remove(item)
                self._send(*item[1:])

    def clean(self) -> None:
        self._lossy = False

    def _send(self, sock: socket.socket, data: bytes, target) -> None:
        self.counts["forwarded"] += 1
        if target is None:
            sock.send(data)
        else:
            sock.sendto(data, target)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.outer.close()
        self.inner.close()


@pytest.fixture
def relay(live):
    relay = LossyRelay(live.ports["SRT ingest"], loss=0.05, reorder=0.03)
    yield relay
    relay.close()


def test_twenty_seconds_through_a_lossy_link_arrive_intact(live, processes, relay, tmp_path):
    stream = live.create_livestream(reconnect_window_s=0)
    # linger: in live mode libsrt's close otherwise throws away what is still queued
    # to send, cutting the last frame short
    url = f"srt://127.0.0.1:{relay.port}?streamid={stream['stream_key']}&latency=200000&linger=5"
    publisher = srt_publish(processes, url, seconds=20, size="640x360", bitrate="1500k")
    media_url = live.wait_playable(stream["playback_id"], timeout=30)
    segments: dict[int, bytes] = {}
    init = b""
    deadline = time.monotonic() + 60
    # The last seconds go through clean. A loss among a stream's very last packets
    # is one no later packet reveals, so no receiver can ask for it again, and
    # libsrt's live mode sender drops it after a second; and the shutdown message
    # itself is sent once.
    clean_at = time.monotonic() + 16
    while time.monotonic() < deadline:
        if time.monotonic() > clean_at:
            relay.clean()
        status, body, _ = live.get(media_url)
        assert status == 200
        playlist = m3u8.loads(body.decode(), uri=media_url)
        if not init and playlist.segment_map:
            init = live.get(playlist.segment_map[0].absolute_uri)[1]
        for number, segment in enumerate(playlist.segments, start=playlist.media_sequence):
            if segment.uri and number not in segments:
                segments[number] = live.get(segment.absolute_uri)[1]
        if playlist.is_endlist:
            break
        time.sleep(0.5)
    assert publisher.wait(30) == 0, publisher.stderr.read()
    assert relay.counts["dropped"] > 100 and relay.counts["reordered"] > 50
    counters = srt_counters(live)
    seen = " ".join(f"{k}={v:g}" for k, v in sorted(counters.items()))
    assert counters["packets_lost"] > 50, seen
    assert counters["packets_recovered"] >= counters["packets_lost"] * 0.99, seen
    assert counters["packets_dropped"] == 0, seen
    assert counters.get("ts_packets_corrupt", 0) == 0, seen + "".join(live.output[-20:])
    numbers = sorted(segments)
    assert numbers == list(range(numbers[0], numbers[-1] + 1))  # none missed
    recording = tmp_path / "received.mp4"
    recording.write_bytes(init + b"".join(segments[n] for n in numbers))
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(recording), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decode.returncode == 0 and decode.stderr == "", decode.stderr
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(recording)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert int(probe.stdout.strip()) >= 590, (numbers, probe.stdout)  # 20 s at 30 fps: 600
    audio = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "a:0",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(recording)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert int(audio.stdout.strip()) >= 920, audio.stdout  # 20 s of 1024-sample frames: 937
