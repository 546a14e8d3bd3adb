"""Frame-to-part latency: how long after a frame leaves the publisher can a player have it?

A real-time publisher (PyAV: libx264 ultrafast/zerolatency, 640x360 at 30 fps, GOP 30,
no B-frames, plus AAC) notes the moment each video frame has been written to the RTMP
socket. A client that behaves like an LL-HLS player reads the media playlist's
EXT-X-PRELOAD-HINT and GETs the hinted part at once; the server holds that request
until the part is complete, so the moment the body has arrived is the moment the part
became downloadable (plus one loopback transfer). Latency of frame i = arrival of the
part holding it - the moment frame i was sent.

Frames are matched to parts by decode time: frame i has pts i/30 s, and the video
track's tfdt (timescale 90000) counts from the first sample the server kept. The
publisher starts with a keyframe, the first part must start with a sync sample, and
at the end the number of frames the server packaged must equal the number sent; any
mismatch (a dropped first GOP would shift everything by a second) is reported.

A second client does blocking playlist reloads (`_HLS_msn`/`_HLS_part`) for the next
part and notes when a playlist naming it arrives: the latency a player sees when it
learns about parts from the playlist instead of the preload hint.

The publisher is its own process (this script with --publisher) so that encoding never
holds the client's GIL; both sides stamp with CLOCK_MONOTONIC, which is system-wide.

    .venv/bin/python bench/frame_to_part.py [--seconds 30] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, LiveServer, Reaper, exit_on_sigterm, percentile

from live.packaging.bmff import parse_moof, read_track_defaults

FPS = 30
WIDTH, HEIGHT = 640, 360
VIDEO_TIMESCALE = 90000
FRAME_TICKS = VIDEO_TIMESCALE // FPS
GOAL_P50_S = 0.250
GOAL_P90_S = 0.500
SAMPLE_RATE = 48000
AUDIO_FRAME = 1024
# URIs may carry a query (the server's player-session id); it is kept on every request.
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.m4s([^"]*)"')
_MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')
_PART = re.compile(r'#EXT-X-PART:.*URI="part-(\d+)\.m4s([^"]*)"')


# ---------------------------------------------------------------------------- publisher


def publish(url: str, seconds: float, audio_lead: float) -> None:
    """Publish in real time; print `F <frame> <monotonic>` once each video frame is written.

    PyAV muxes with av_interleaved_write_frame, which keeps a video packet queued until
    audio with a later timestamp is queued too. Audio is therefore encoded `audio_lead`
    seconds ahead of video (covering the AAC encoder's delay), so that each video packet
    goes out the moment it is muxed and the stamp is the real send time; flush_packets=1
    makes the FLV muxer hand every packet to the RTMP protocol at once.
    """
    import av

    output = av.open(url, "w", format="flv", container_options={"flush_packets": "1"})
    video = output.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "g": str(FPS),
        "keyint_min": str(FPS),
        "sc_threshold": "0",
        "bf": "0",
    }
    audio = output.add_stream("aac", rate=SAMPLE_RATE)
    audio.layout = "stereo"
    output.start_encoding()  # connect and publish before the clock starts

    patterns = [
        bytes((x * 2 + shift * 8) % 256 for x in range(WIDTH)) * HEIGHT for shift in range(FPS)
    ]
    chroma = bytes([128]) * (WIDTH * HEIGHT // 4)
    frames = int(seconds * FPS)
    samples = 0
    start = time.monotonic()
    for index in range(frames):
        delay = start + index / FPS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        while samples < (index + 1) * SAMPLE_RATE / FPS + audio_lead * SAMPLE_RATE:
            tone = av.AudioFrame(format="fltp", layout="stereo", samples=AUDIO_FRAME)
            for plane in tone.planes:
                plane.update(bytes(plane.buffer_size))
            tone.pts, tone.sample_rate = samples, SAMPLE_RATE
            tone.time_base = Fraction(1, SAMPLE_RATE)
            samples += AUDIO_FRAME
            output.mux(audio.encode(tone))
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(patterns[index % FPS][: frame.planes[0].buffer_size])
        for plane in frame.planes[1:]:
            plane.update(chroma[: plane.buffer_size])
        frame.pts = index
        frame.time_base = Fraction(1, FPS)
        for packet in video.encode(frame):
            output.mux(packet)
            sent = time.monotonic()
            assert packet.pts is not None and packet.time_base is not None
            number = round(packet.pts * packet.time_base * FPS)
            print(f"F {number} {sent:.6f} {int(packet.is_keyframe)}", flush=True)
    for stream in (video, audio):
        output.mux(stream.encode(None))
    output.close()
    print(f"END {frames}", flush=True)


@dataclass
class PublisherLog:
    """What the publisher process reported, filled in by a reader thread."""

    sent: dict[int, float] = field(default_factory=dict)
    keyframes: set[int] = field(default_factory=set)
    total: int | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def read(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            words = line.split()
            if words[:1] == ["F"]:
                self.sent[int(words[1])] = float(words[2])
                if words[3] == "1":
                    self.keyframes.add(int(words[1]))
            elif words[:1] == ["END"]:
                self.total = int(words[1])
        self.done.set()


# ---------------------------------------------------------------------------- clients


@dataclass
class Part:
    """One part as the hint follower got it."""

    arrived: float
    waited: bool  # the GET was made before the part existed (so `arrived` is meaningful)
    video_dts: list[int]
    first_sync: bool


@dataclass
class Observations:
    parts: dict[int, Part] = field(default_factory=dict)
    listed: dict[int, float] = field(default_factory=dict)  # part -> blocking playlist time
    listed_waited: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


async def wait_media_playlist(session: aiohttp.ClientSession, base: str, deadline: float) -> str:
    """The media playlist URL, once the multivariant playlist exists."""
    while time.monotonic() < deadline:
        async with session.get(f"{base}/index.m3u8") as response:
            if response.status == 200:
                text = await response.text()
                uri = next(line for line in text.splitlines() if line and line[0] != "#")
                return f"{base}/{uri}"
        await asyncio.sleep(0.05)
    raise TimeoutError("stream never became playable")


async def follow_hints(
    session: aiohttp.ClientSession, playlist_url: str, obs: Observations, deadline: float
) -> None:
    """GET each preload-hinted part as soon as it is hinted; stamp when its body arrived."""
    rendition = playlist_url.rsplit("/", 1)[0]
    async with session.get(playlist_url) as response:  # waits for the first part
        first = await response.text()
    init_uri = _MAP.search(first)
    if response.status != 200 or init_uri is None:
        raise RuntimeError(f"no usable media playlist ({response.status}):\n{first}")
    async with session.get(f"{rendition}/{init_uri.group(1)}") as response:
        init = await response.read()
        if response.status != 200:
            raise RuntimeError(f"init section: {response.status} {init[:200]!r}")
    defaults, timescales = read_track_defaults(init)
    video_track = next(t for t, scale in timescales.items() if scale == VIDEO_TIMESCALE)
    # Part names are a counter with an arbitrary base; the first playlist a new stream
    # serves starts with the stream's first part.
    listed_first = _PART.search(first)
    if listed_first is None:
        raise RuntimeError(f"the first playlist lists no parts:\n{first}")
    next_part = int(listed_first.group(1))
    query = listed_first.group(2)

    async def fetch(index: int, waited: bool) -> bool:
        async with session.get(f"{rendition}/part-{index}.m4s{query}") as response:
            body = await response.read()
            arrived = time.monotonic()
            if response.status != 200:
                return False
        run = parse_moof(body, defaults).get(video_track)
        dts: list[int] = []
        if run is not None:
            position = run.base_decode_time
            for duration in run.durations:
                dts.append(position)
                position += duration
        obs.parts[index] = Part(arrived, waited, dts, bool(run and run.first_sample_sync))
        return True

    while time.monotonic() < deadline:
        async with session.get(playlist_url) as response:
            text = await response.text()
            if response.status != 200:
                obs.errors.append(f"playlist {response.status}")
                break
        hint = _HINT.search(text)
        listed = [int(n) for n, _ in _PART.findall(text)]
        # Once the stream has ended there is no hint: take what is left.
        ended_at = (max(listed) + 1) if listed else next_part
        last = int(hint.group(1)) if hint is not None else ended_at
        if last - next_part > 100:
            obs.errors.append(f"hint jumped from part {next_part} to {last}")
            break
        for index in range(next_part, last):  # already complete: not a latency sample
            if not await fetch(index, waited=False):
                obs.errors.append(f"part {index} missing")
        next_part = last
        if hint is None or "#EXT-X-ENDLIST" in text:
            break
        if await fetch(last, waited=True):
            next_part = last + 1


async def follow_blocking(
    session: aiohttp.ClientSession, playlist_url: str, obs: Observations, deadline: float
) -> None:
    """Blocking playlist reloads for the part after the last one listed."""
    want: tuple[int, int] | None = None
    while time.monotonic() < deadline:
        joiner = "&" if "?" in playlist_url else "?"
        url = (
            playlist_url
            if want is None
            else (f"{playlist_url}{joiner}_HLS_msn={want[0]}&_HLS_part={want[1]}")
        )
        async with session.get(url) as response:
            text = await response.text()
            arrived = time.monotonic()
            if response.status != 200:
                obs.errors.append(f"blocking playlist {response.status}")
                break
        parts = _parse_parts(text)
        new = [index for _, _, index in parts if index not in obs.listed]
        for index in new:
            obs.listed[index] = arrived
        if want is not None and new:
            # The part this request waited for: (msn, n+1) past the end of a segment
            # is answered by the next segment's first part, so take the first new one.
            obs.listed_waited.add(new[0])
        if "#EXT-X-ENDLIST" in text:
            break
        if not parts:  # nothing to block on yet: poll gently
            await asyncio.sleep(0.05)
            continue
        msn, part, _ = parts[-1]
        closed = _closed_msns(text)
        want = (msn + 1, 0) if msn in closed else (msn, part + 1)


def _parse_parts(text: str) -> list[tuple[int, int, int]]:
    """(msn, part-in-segment, global part index) of every EXT-X-PART, in order."""
    msn, part, found = 0, 0, []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PART:"):
            match = _PART.match(line)
            if match:
                found.append((msn, part, int(match.group(1))))
            part += 1
        elif line.startswith("#EXTINF"):
            msn, part = msn + 1, 0
    return found


def _closed_msns(text: str) -> set[int]:
    msn, closed = 0, set()
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF"):
            closed.add(msn)
            msn += 1
    return closed


async def observe(base: str, seconds: float) -> Observations:
    obs = Observations()
    deadline = time.monotonic() + seconds + 30
    timeout = aiohttp.ClientTimeout(total=15)
    connector = aiohttp.TCPConnector(limit=8)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        playlist_url = await wait_media_playlist(session, base, time.monotonic() + 20)
        await asyncio.gather(
            follow_hints(session, playlist_url, obs, deadline),
            follow_blocking(session, playlist_url, obs, deadline),
        )
    return obs


# ---------------------------------------------------------------------------- analysis


@dataclass
class RunResult:
    hint: list[float]
    playlist: list[float]
    missed_parts: int
    frames_sent: int
    frames_packaged: int
    aligned: bool
    notes: list[str]


def analyse(log: PublisherLog, obs: Observations, skip: float, seconds: float) -> RunResult:
    notes = list(obs.errors)
    first_part = obs.parts[min(obs.parts)] if obs.parts else None
    if first_part is None or not first_part.video_dts:
        raise RuntimeError("the stream's first part was not seen; cannot align frames")
    origin = first_part.video_dts[0]
    if not first_part.first_sync:
        notes.append("the first part does not start with a sync sample")
    frame_part: dict[int, int] = {}
    for index, part in obs.parts.items():
        for dts in part.video_dts:
            frame_part[round((dts - origin) / FRAME_TICKS)] = index
    packaged = max(frame_part) + 1 if frame_part else 0
    total = log.total if log.total is not None else len(log.sent)
    aligned = first_part.first_sync and packaged == total and 0 in log.keyframes
    if packaged != total:
        notes.append(
            f"server packaged {packaged} frames, publisher sent {total}: "
            "frame numbering is not trustworthy"
        )
    start = log.sent[0]
    hint, playlist = [], []
    missed = set()
    for frame, sent in log.sent.items():
        if not skip <= sent - start <= seconds - 1.0:  # skip start-up and the final flush
            continue
        index = frame_part.get(frame)
        if index is None:
            notes.append(f"frame {frame} not found in any part")
            continue
        part = obs.parts[index]
        if part.waited:
            hint.append(part.arrived - sent)
        else:
            missed.add(index)
        if index in obs.listed_waited:
            playlist.append(obs.listed[index] - sent)
    return RunResult(hint, playlist, len(missed), total, packaged, aligned, notes)


def run_once(seconds: float, skip: float, audio_lead: float) -> RunResult:
    reaper = Reaper()
    data_dir = Path(tempfile.mkdtemp(prefix="live-bench-"))
    try:
        server = LiveServer(reaper, data_dir)
        stream = server.create_livestream("frame-to-part")
        log = PublisherLog()
        publisher = reaper.popen(
            [
                str(PYTHON),
                str(Path(__file__).resolve()),
                "--publisher",
                server.rtmp_url(stream["stream_key"]),
                "--seconds",
                str(seconds),
                "--audio-lead",
                str(audio_lead),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=log.read, args=(publisher,), daemon=True).start()
        base = f"{server.http}/live/{stream['playback_id']}"
        obs = asyncio.run(observe(base, seconds))
        publisher.wait(30)
        log.done.wait(5)
        if publisher.returncode != 0:
            raise RuntimeError(f"publisher exited with {publisher.returncode}")
        return analyse(log, obs, skip, seconds)
    finally:
        reaper.end_all()
        shutil.rmtree(data_dir, ignore_errors=True)


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    ms = [v * 1000 for v in values]
    return (
        f"mean {sum(ms) / len(ms):6.1f} ms  "
        f"p50 {percentile(ms, 50):6.1f} ms  p90 {percentile(ms, 90):6.1f} ms  "
        f"p99 {percentile(ms, 99):6.1f} ms  max {max(ms):6.1f} ms  "
        f"min {min(ms):6.1f} ms  n={len(ms)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="publishing time per run (default 30, --quick 12)",
    )
    parser.add_argument("--quick", action="store_true", help="one 12 s run")
    parser.add_argument("--skip", type=float, default=3, help="start-up seconds left out")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--audio-lead",
        type=float,
        default=0.1,
        help="seconds of audio muxed ahead of video (see publish())",
    )
    parser.add_argument("--publisher", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        publish(args.publisher, args.seconds or 30.0, args.audio_lead)
        return
    exit_on_sigterm()
    if args.seconds is None:
        args.seconds = 12.0 if args.quick else 30.0
    if args.quick:
        args.runs = 1

    print(
        f"frame-to-part latency: {WIDTH}x{HEIGHT} {FPS} fps, GOP {FPS}, parts 200 ms, "
        f"{args.seconds:g} s per run, first {args.skip:g} s skipped"
    )
    print(
        f"goal: p50 <= {GOAL_P50_S * 1000:.0f} ms, p90 <= {GOAL_P90_S * 1000:.0f} ms (preload hint)"
    )
    all_hint: list[float] = []
    all_playlist: list[float] = []
    for number in range(1, args.runs + 1):
        result = run_once(args.seconds, args.skip, args.audio_lead)
        all_hint += result.hint
        all_playlist += result.playlist
        print(
            f"run {number}: frames sent {result.frames_sent}, packaged "
            f"{result.frames_packaged}, alignment {'ok' if result.aligned else 'NOT VERIFIED'},"
            f" parts fetched late (not counted) {result.missed_parts}"
        )
        print(f"  preload hint      {summary(result.hint)}")
        print(f"  blocking playlist {summary(result.playlist)}")
        for note in result.notes[:10]:
            print(f"  note: {note}")
    if args.runs > 1:
        print(f"all runs: preload hint      {summary(all_hint)}")
        print(f"all runs: blocking playlist {summary(all_playlist)}")
    if all_hint:
        p50, p90 = percentile(all_hint, 50), percentile(all_hint, 90)
        verdict = "MET" if p50 <= GOAL_P50_S and p90 <= GOAL_P90_S else "NOT MET"
        print(
            f"goal {verdict}: p50 {p50 * 1000:.0f} ms (<= {GOAL_P50_S * 1000:.0f}), "
            f"p90 {p90 * 1000:.0f} ms (<= {GOAL_P90_S * 1000:.0f})"
        )


if __name__ == "__main__":
    main()
