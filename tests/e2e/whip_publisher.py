"""Publish over WHIP with FFmpeg's own WHIP muxer (as built into PyAV): H.264 without
B-frames and Opus, in real time. Run as a script so a test can end it by PID.

    python whip_publisher.py http://HOST:PORT/whip --key KEY --cert C --cert-key K
        [--seconds 60] [--size 640x360] [--fps 30] [--vanish-after S]

FFmpeg's muxer makes a P-224 DTLS certificate that OpenSSL (aiortc) refuses, so
the test hands it a P-256 one. With --vanish-after the process kills itself
without a DELETE or a DTLS close: a publisher whose network went away.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import av
from synthetic import Silence, pattern_frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--key", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--cert-key", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--vanish-after", type=float, default=None)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    output = av.open(
        args.url,
        "w",
        format="whip",
        options={"authorization": args.key, "cert_file": args.cert, "key_file": args.cert_key},
    )
    video = output.add_stream("libx264", rate=args.fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "g": str(args.fps),
        "bf": "0",
        "profile": "baseline",
    }
    audio = output.add_stream("libopus", rate=48000)
    audio.layout = "stereo"

    start = time.monotonic()
    frames = int(args.seconds * args.fps)
    silence = Silence("s16", 960)  # Opus takes 20 ms frames
    for index in range(frames):
        media_time = index / args.fps
        if args.vanish_after is not None and media_time >= args.vanish_after:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        for packet in video.encode(pattern_frame(index, width, height, args.fps)):
            output.mux(packet)
        for tone in silence.until(index, args.fps):
            for packet in audio.encode(tone):
                output.mux(packet)
        delay = start + media_time - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for stream in (video, audio):
        for packet in stream.encode(None):
            output.mux(packet)
    output.close()  # the muxer sends DELETE


if __name__ == "__main__":
    main()
