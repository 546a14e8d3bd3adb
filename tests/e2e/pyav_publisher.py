"""A publisher built on PyAV's own FFmpeg (8.x), whose FLV muxer speaks Enhanced
RTMP: HEVC goes out as `0x90 'hvc1'`. Run as a script so a test can end it by PID.

    python pyav_publisher.py URL --codec libx265 --seconds 8 [--silent-after 3]

With --silent-after the connection stays open but nothing more is sent: a
half-dead publisher, as OBS leaves behind when the network drops.
"""

from __future__ import annotations

import argparse
import time

import av
from synthetic import Silence, pattern_frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--codec", default="libx264")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--silent-after", type=float, default=None)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    output = av.open(args.url, "w", format="flv")
    video = output.add_stream(args.codec, rate=args.fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.options = {"g": str(args.fps), "bf": "0"}
    if args.codec == "libx265":
        video.options |= {
            "x265-params": f"log-level=error:keyint={args.fps}",
            "preset": "ultrafast",
        }
    else:
        video.options |= {"preset": "ultrafast", "tune": "zerolatency"}
    audio = output.add_stream("aac", rate=48000)
    audio.layout = "stereo"

    start = time.monotonic()
    frames = int(args.seconds * args.fps)
    silence = Silence("fltp", 1024)
    for index in range(frames):
        media_time = index / args.fps
        if args.silent_after is not None and media_time >= args.silent_after:
            time.sleep(max(0.0, args.seconds - media_time))  # connection open, nothing sent
            break
        for packet in video.encode(pattern_frame(index, width, height, args.fps)):
            output.mux(packet)
        for tone in silence.until(index, args.fps):
            for packet in audio.encode(tone):
                output.mux(packet)
        delay = start + media_time - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    if args.silent_after is None:
        for stream in (video, audio):
            for packet in stream.encode(None):
                output.mux(packet)
    output.close()


if __name__ == "__main__":
    main()
