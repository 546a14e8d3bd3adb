"""SRT ingest cost: CPU per stream at 3 and 20 Mbps beside RTMP, and the highest
single-stream bitrate the server sustains on one core without losing data.

One encoded clip per bitrate (libx264 + AAC, GOP 1 s) is made once, as MPEG-TS (for
SRT) and remuxed to FLV (for RTMP), so both protocols carry the same bytes. ffmpeg
publishes it with `-re -stream_loop -1 -c copy` (no encoding during the measure).
A fresh server runs each case; its CPU time (process tree, /proc) is read over a
window that starts once the stream is playable. "Loss" is what the server could not
recover: SRT packets given up at their delivery time, TS bytes the demuxer refused,
or media time falling behind wall time (the server no longer keeps up).

The ceiling search sends a high-bitrate clip faster than real time (`-readrate`),
which multiplies the bitrate without re-encoding.

    .venv/bin/python bench/srt_cpu.py [--seconds 15] [--quick]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LiveServer, Reaper, cpu_seconds, exit_on_sigterm, process_tree

_SRT_LINE = re.compile(r"^\s+SRT ingest.*\(port (\d+)\)")


def make_clip(directory: Path, name: str, size: str, bitrate: str, seconds: int,
              noise: int = 0) -> tuple[Path, Path]:  # fmt: skip
    ts, flv = directory / f"{name}.ts", directory / f"{name}.flv"
    if ts.exists():
        return ts, flv
    video = f"testsrc2=size={size}:rate=30" + (f",noise=alls={noise}:allf=t" if noise else "")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", "sine=sample_rate=48000",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
         "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate, "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", str(ts)],
        check=True, timeout=600,
    )  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(ts), "-c", "copy",
         "-f", "flv", str(flv)],
        check=True, timeout=120,
    )  # fmt: skip
    return ts, flv


def srt_port(server: LiveServer) -> int:
    for line in server.output:
        match = _SRT_LINE.match(line)
        if match:
            return int(match.group(1))
    raise RuntimeError("no SRT port in the server's output")


def srt_counters(server: LiveServer) -> dict[str, float]:
    _status, body = server.get("/metrics")
    counters = {}
    for line in body.decode().splitlines():
        if line.startswith("live_srt_total{"):
            counters[line.split('kind="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    return counters


def media_seconds(server: LiveServer, playback_id: str) -> float:
    """Media time packaged so far: the window's first segment number (every segment
    is 1 s here: 1 s GOP, 1 s segment target) plus the durations listed after it."""
    status, body = server.get(f"/live/{playback_id}/source/index.m3u8")
    if status != 200:
        return 0.0
    first, listed = 0, 0.0
    for line in body.decode().splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            first = int(line.split(":")[1])
        elif line.startswith("#EXTINF:"):
            listed += float(line.split(":")[1].split(",")[0])
    return first + listed


def run_case(reaper: Reaper, work: Path, protocol: str, clip: Path, seconds: float,
             readrate: float = 1.0) -> dict:  # fmt: skip
    server = LiveServer(reaper, work / f"data-{protocol}-{clip.stem}-{readrate}")
    try:
        stream = server.create_livestream("bench")
        if protocol == "srt":
            url = f"srt://127.0.0.1:{srt_port(server)}?streamid={stream['stream_key']}"
            url += "&latency=200000&pkt_size=1316"
            fmt = "mpegts"
        else:
            url, fmt = server.rtmp_url(stream["stream_key"]), "flv"
        publisher = reaper.popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostats",
             "-readrate", str(readrate), "-stream_loop", "-1", "-i", str(clip),
             "-c", "copy", "-f", fmt, url],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while server.get(f"/live/{stream['playback_id']}/index.m3u8")[0] != 200:
            if time.monotonic() > deadline or publisher.poll() is not None:
                raise RuntimeError(f"{protocol} {clip.name} never became playable")
            time.sleep(0.2)
        time.sleep(2)
        pids = process_tree(server.pid)
        before, start = cpu_seconds(pids), time.monotonic()
        media_before = media_seconds(server, stream["playback_id"])
        counters_before = srt_counters(server)
        time.sleep(seconds)
        after, elapsed = cpu_seconds(pids), time.monotonic() - start
        media_after = media_seconds(server, stream["playback_id"])
        counters = srt_counters(server)
        alive = publisher.poll() is None
        reaper.end(publisher)
        cpu = sum(after.get(p, 0) - before.get(p, 0) for p in before)
        delta = {k: counters.get(k, 0) - counters_before.get(k, 0) for k in counters}
        return {
            "protocol": protocol,
            "clip": clip.stem,
            "readrate": readrate,
            "cpu_percent": 100 * cpu / elapsed,
            "media_rate": (media_after - media_before) / elapsed,
            "publisher_alive": alive,
            "lost": delta.get("packets_lost", 0),
            "recovered": delta.get("packets_recovered", 0),
            "dropped": delta.get("packets_dropped", 0),
            "ts_dropped": delta.get("ts_bytes_dropped", 0),
            "packets": delta.get("packets_received", 0),
        }
    finally:
        reaper.end(server.process)


def mbps(clip: Path, readrate: float) -> float:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=bit_rate", "-of", "csv=p=0",
         str(clip)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(probe.stdout.strip()) * readrate / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--quick", action="store_true", help="short runs, fewer ceiling steps")
    args = parser.parse_args()
    exit_on_sigterm()
    seconds = 6 if args.quick else args.seconds
    reaper = Reaper()
    with tempfile.TemporaryDirectory(prefix="srt-bench-") as tmp:
        work = Path(tmp)
        try:
            clips = {
                "3 Mbps 720p": make_clip(work, "c3", "1280x720", "3M", 10),
                "20 Mbps 1080p": make_clip(work, "c20", "1920x1080", "20M", 10, noise=12),
            }
            print("| stream | protocol | server CPU (% of one core) | media s per s | "
                  "lost / recovered / dropped |")  # fmt: skip
            print("| --- | --- | --- | --- | --- |")
            for label, (ts, flv) in clips.items():
                for protocol, clip in (("rtmp", flv), ("srt", ts)):
                    r = run_case(reaper, work, protocol, clip, seconds)
                    losses = (f"{r['lost']:.0f} / {r['recovered']:.0f} / {r['dropped']:.0f}"
                              if protocol == "srt" else "n/a")  # fmt: skip
                    print(f"| {label} | {protocol} | {r['cpu_percent']:.1f} | "
                          f"{r['media_rate']:.2f} | {losses} |", flush=True)  # fmt: skip
            ts, _ = make_clip(work, "c40", "1920x1080", "40M", 10, noise=30)
            print("\nceiling (SRT, one stream, clip sent faster than real time):")
            print("| Mbps | server CPU % | media s per s | lost / recovered / dropped "
                  "| TS bytes dropped | |")  # fmt: skip
            print("| --- | --- | --- | --- | --- | --- |")
            for readrate in (1, 2, 4) if args.quick else (1, 2, 4, 6, 8, 10, 12):
                r = run_case(reaper, work, "srt", ts, seconds, readrate=readrate)
                lost = r["dropped"] > 0 or r["ts_dropped"] > 0 or not r["publisher_alive"]
                behind = r["media_rate"] < 0.9 * readrate
                # behind without loss and with CPU to spare: the sender is the limit
                verdict = "LOSS" if lost else "ok" if not behind else (
                    "server-limited" if r["cpu_percent"] >= 90 else "sender-limited"
                )  # fmt: skip
                ok = verdict == "ok"
                print(
                    f"| {mbps(ts, readrate):.0f} | {r['cpu_percent']:.0f} | "
                    f"{r['media_rate']:.2f} | {r['lost']:.0f} / {r['recovered']:.0f} / "
                    f"{r['dropped']:.0f} | {r['ts_dropped']:.0f} | {verdict} |",
                    flush=True,
                )
                if not ok:
                    break
        finally:
            reaper.end_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
