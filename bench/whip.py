"""WHIP ingest cost: CPU per stream and added latency, H.264 passthrough vs VP8 → H.264.

1. CPU per stream. `live serve` runs as its own process; a WHIP publisher (aiortc,
   this script with --publish, in another process) sends a moving test pattern at
   640x360 and 1280x720, 30 fps, as H.264 or VP8, plus Opus. We read the server's
   CPU time (/proc, all threads) over a window once the stream is live, minus the
   idle server's, and the frame rate the server measured (`ingest_health.fps`).
   The publisher shares the machine's cores, so read the figures as upper bounds.

2. Added latency. In-process, `WhipMedia` is fed pre-encoded frames in real time
   (as its frame taps would) and measures, per video frame, the time from leaving
   the depacketiser to reaching the Publisher: what each path adds before
   packaging. aiortc's jitter buffer adds one frame interval more on both paths
   (a frame is complete when the next one starts).

    .venv/bin/python bench/whip.py [--seconds 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import PYTHON, LiveServer, Reaper, cpu_seconds, exit_on_sigterm, percentile

SIZES = {"360p": (640, 360), "720p": (1280, 720)}
FPS = 30


# -- the publisher (a separate process) ---------------------------------------------------


def _pattern(width: int, height: int, count: int):
    import av

    frames = []
    for index in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        row = bytes((x + index * 8) % 256 for x in range(width))
        frame.planes[0].update((row * height)[: frame.planes[0].buffer_size])
        for plane in frame.planes[1:]:
            plane.update(bytes([(index * 4) % 256]) * plane.buffer_size)
        frames.append(frame)
    return frames


async def publish(url: str, key: str, codec: str, width: int, height: int, seconds: float):
    from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

    from live.ingest.whip.webrtc import IceSettings, apply_ice_settings, install_codecs

    install_codecs()
    frames = _pattern(width, height, FPS)

    class Pattern(VideoStreamTrack):
        index = 0

        async def recv(self):
            pts, time_base = await self.next_timestamp()
            frame = frames[self.index % len(frames)]
            self.index += 1
            frame.pts, frame.time_base = pts, time_base
            return frame

    pc = RTCPeerConnection()
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    video = pc.addTransceiver(Pattern(), direction="sendonly")
    video.setCodecPreferences(
        [
            c
            for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType.lower() == f"video/{codec.lower()}"
        ][:1]
    )
    apply_ice_settings(pc, IceSettings(bind_host="127.0.0.1"))
    await pc.setLocalDescription(await pc.createOffer())
    request = urllib.request.Request(
        url,
        data=pc.localDescription.sdp.encode(),
        method="POST",
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        answer = response.read().decode()
        location = response.headers["Location"]
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await asyncio.sleep(seconds)
    base = url.rsplit("/whip", 1)[0]
    urllib.request.urlopen(urllib.request.Request(base + location, method="DELETE"), timeout=10)
    await pc.close()


# -- 1. CPU per stream ----------------------------------------------------------------------


def _api(server: LiveServer, path: str) -> dict:
    request = urllib.request.Request(server.http + path, headers={"X-API-Key": server.api_key})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _process_cpu(pid: int) -> float:
    return cpu_seconds([pid]).get(pid, 0.0)


def cpu_run(codec: str, size: str, seconds: float) -> dict:
    reaper = Reaper()
    try:
        with tempfile.TemporaryDirectory() as data:
            server = LiveServer(
                reaper,
                Path(data),
                env={
                    "LIVE_WHIP_UDP_HOST": "127.0.0.1",
                    "LIVE_WHIP_CANDIDATE_HOST": "127.0.0.1",
                },
            )
            stream = server.create_livestream("bench", record=False)
            time.sleep(1)
            idle_start, idle_wall = _process_cpu(server.pid), time.monotonic()
            time.sleep(3)
            idle = (_process_cpu(server.pid) - idle_start) / (time.monotonic() - idle_wall)
            width, height = SIZES[size]
            publisher = reaper.popen(
                [
                    str(PYTHON),
                    __file__,
                    "--publish",
                    f"{server.http}/whip",
                    "--key",
                    stream["stream_key"],
                    "--codec",
                    codec,
                    "--size",
                    f"{width}x{height}",
                    "--seconds",
                    str(seconds + 8),
                ]
            )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if server.get(f"/live/{stream['playback_id']}/index.m3u8")[0] == 200:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"{codec} {size}: never playable\n" + "".join(server.output))
            time.sleep(2)
            start_cpu, start = _process_cpu(server.pid), time.monotonic()
            time.sleep(seconds)
            used = _process_cpu(server.pid) - start_cpu
            wall = time.monotonic() - start
            session = _api(server, f"/v1/livestreams/{stream['id']}")["current_session"] or {}
            publisher.wait(30)
            return {
                "codec": codec,
                "size": size,
                "server_cpu_pct": round(100 * (used / wall - idle), 1),
                "idle_cpu_pct": round(100 * idle, 1),
                "fps_received": (session.get("ingest_health") or {}).get("fps"),
                "output": (session.get("video") or {}).get("codec"),
            }
    finally:
        reaper.end_all()


# -- 2. added latency -----------------------------------------------------------------------


class _Sink:
    def set_track(self, track) -> None:
        pass

    def push(self, packet) -> None:
        pass


def _encode(codec: str, width: int, height: int, count: int) -> list[bytes]:
    import av

    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.bit_rate = 2_000_000 if height >= 720 else 800_000
    encoder.options = (
        {"preset": "veryfast", "tune": "zerolatency", "g": str(FPS)}
        if codec == "libx264"
        else {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "g": str(FPS)}
    )
    encoder.open()
    out = []
    for index, frame in enumerate(_pattern(width, height, count)):
        frame.pts = index
        out += [bytes(p) for p in encoder.encode(frame)]
    return out


async def latency_run(codec: str, size: str, seconds: float) -> dict:
    from live.ingest.whip.media import WhipMedia
    from live.transcode.video import H264Settings

    width, height = SIZES[size]
    frames = _encode("libx264" if codec == "h264" else "libvpx", width, height, FPS * 4)
    media = WhipMedia(
        _Sink(),
        video_codec=codec,
        audio_codec=None,  # type: ignore[arg-type]
        video_settings=H264Settings(),
    )
    media.on_report("video", time.time(), 0)
    count = int(seconds * FPS)
    started = time.perf_counter()
    for index in range(count):
        media.on_frame("video", codec, frames[index % len(frames)], index * 3000)
        media.tick()
        delay = started + (index + 1) / FPS - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
    await asyncio.sleep(0.5)
    wall = time.perf_counter() - started
    latencies = list(media.stats.video_latency_s)
    busy = media.codec_busy_s
    await media.close()
    return {
        "codec": codec,
        "size": size,
        "added_ms_p50": round(1000 * statistics.median(latencies), 2),
        "added_ms_p95": round(1000 * percentile(latencies, 95), 2),
        "codec_busy_pct": round(100 * busy / wall, 1),
        "frames": len(latencies),
        "dropped": media.stats.dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--publish")
    parser.add_argument("--key")
    parser.add_argument("--codec", default="H264")
    parser.add_argument("--size", default="640x360")
    args = parser.parse_args()
    if args.publish:
        width, height = (int(v) for v in args.size.split("x"))
        asyncio.run(publish(args.publish, args.key, args.codec, width, height, args.seconds))
        return
    exit_on_sigterm()
    seconds = 8 if args.quick else args.seconds
    print("added latency (in-process, depacketised frame -> Publisher):")
    for size in SIZES:
        for codec in ("h264", "vp8"):
            print(" ", json.dumps(asyncio.run(latency_run(codec, size, seconds))))
    print("CPU per stream (server process, minus idle; publisher is aiortc):")
    for size in SIZES:
        for codec in ("H264", "VP8"):
            print(" ", json.dumps(cpu_run(codec, size, seconds)), flush=True)


if __name__ == "__main__":
    main()
