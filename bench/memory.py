"""Memory per live stream: the server's RSS with N 3.2 Mbps publishers, against the
media its LL-HLS window holds, and whether it grows over the run.

One `live serve` (default settings: 200 ms parts, 1 s segments, 7-segment window);
its RSS (whole process tree, /proc VmRSS) is read idle, then N publishers
(`ffmpeg -re -stream_loop -1 -c copy` of the 720p30 3.2 Mbps input of
`cpu_vs_nginx.py`) start and RSS is sampled every --every seconds for --seconds.
Reported: MB per stream over idle (mean of the second half of the samples), the
media one stream's window holds (the bytes of the segments and parts its media
playlist lists, fetched from the server), their ratio (goal: at most 1.5), and the
growth from the first sample after warm-up to the last (goal: none); runs of two
minutes or more also print the mean of each minute. The spool of segments that have
left their playlists (`<data_dir>/hls-spool`, on disk, not in the RSS) is reported
at the end.

    flock /tmp/live-bench.lock .venv/bin/python bench/memory.py [--streams 8] \\
        [--seconds 60] [--record]

With --tracemalloc FILE the server traces its allocations from the moment the
publishers start (slower) and writes two snapshots, one after warm-up and one at the
end, to FILE.1 and FILE.2 for `tracemalloc.Snapshot.load` (what holds the memory,
what grew).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LiveServer, Reaper, exit_on_sigterm, process_tree
from cpu_vs_nginx import check_publishers, make_input, start_publishers

GOAL_RATIO = 1.5
_URI_LINE = re.compile(r'^(?:#EXT-X-PART:.*URI="([^"]+)"|([^#\s][^\s]*))$', re.M)

# Installed into the server through PYTHONPATH. The first SIGUSR1 starts tracemalloc
# (from the start, it slows imports so much that the server misses its start-up
# deadline), each later one writes a snapshot. Parts live seconds, so a minute after
# it starts nearly everything the streams hold has been allocated under tracing.
_SITECUSTOMIZE = """
import os, signal, tracemalloc
_target = os.environ.get("LIVE_BENCH_TRACEMALLOC")
if _target:
    _taken = []
    def _on_signal(signum, frame):
        if not tracemalloc.is_tracing():
            tracemalloc.start(4)
            return
        _taken.append(1)
        tracemalloc.take_snapshot().dump(f"{_target}.{len(_taken)}")
    signal.signal(signal.SIGUSR1, _on_signal)
"""


def rss_mb(pid: int) -> float:
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(match.group(1)) if match else 0
    return total / 1024


def window_bytes(server: LiveServer, playback_id: str) -> int:
    """The bytes one stream's window lists: its closed segments (each one's parts
    joined) and the parts of the open one, fetched as a player would."""
    base = f"/live/{playback_id}/source/"
    status, body = server.get(base + "index.m3u8", timeout=30)
    if status != 200:
        raise RuntimeError(f"playlist of {playback_id}: HTTP {status}")
    text = body.decode()
    after_last_segment = text.rsplit("#EXTINF:", 1)[-1]
    uris = [m.group(2) for m in _URI_LINE.finditer(text) if m.group(2)]  # segments
    uris += [m.group(1) for m in _URI_LINE.finditer(after_last_segment) if m.group(1)]  # open
    total = 0
    for uri in uris:
        status, data = server.get(base + uri, timeout=30)
        total += len(data) if status == 200 else 0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="sampled, after warm-up")
    parser.add_argument("--warmup", type=float, default=12.0, help="the window fills up")
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--record", action="store_true", help="livestreams with record: true")
    parser.add_argument("--tracemalloc", type=Path, help="snapshot files' stem (see above)")
    args = parser.parse_args()
    exit_on_sigterm()
    make_input()
    reaper = Reaper()
    temp = Path(tempfile.mkdtemp(prefix="live-bench-memory-"))
    try:
        # Its viewers all come from 127.0.0.1: the per-address limit is lifted.
        env = {"LIVE_HLS_MAX_BLOCKING_PER_ADDRESS": "1000000"}
        if args.tracemalloc:
            (temp / "site").mkdir()
            (temp / "site" / "sitecustomize.py").write_text(_SITECUSTOMIZE)
            repo = Path(__file__).resolve().parent.parent
            env |= {"PYTHONPATH": f"{temp / 'site'}:{repo}",
                   "LIVE_BENCH_TRACEMALLOC": str(args.tracemalloc.resolve())}  # fmt: skip
        (temp / "data").mkdir()
        server = LiveServer(reaper, temp / "data", env)
        time.sleep(3)
        idle = rss_mb(server.pid)
        streams = [
            server.create_livestream(f"mem-{n}", record=args.record) for n in range(args.streams)
        ]
        publishers = start_publishers(
            reaper, [server.rtmp_url(s["stream_key"]) for s in streams], temp
        )
        if args.tracemalloc:
            server.process.send_signal(signal.SIGUSR1)  # start tracing
        time.sleep(args.warmup)
        check_publishers(publishers, temp)
        if args.tracemalloc:
            server.process.send_signal(signal.SIGUSR1)  # snapshot 1
        samples: list[float] = []
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            samples.append(rss_mb(server.pid))
            time.sleep(args.every)
        samples.append(rss_mb(server.pid))
        spool = [p.stat().st_size for p in (temp / "data" / "hls-spool").glob("*/*.m4s")]
        check_publishers(publishers, temp)
        if args.tracemalloc:
            server.process.send_signal(signal.SIGUSR1)
            time.sleep(3)
        windows = [window_bytes(server, s["playback_id"]) for s in streams]
    finally:
        reaper.end_all()
        shutil.rmtree(temp, ignore_errors=True)

    settled = statistics.fmean(samples[len(samples) // 2 :])
    per_stream = (settled - idle) / args.streams
    window_mb = statistics.fmean(windows) / 2**20
    ratio = per_stream / window_mb
    print(f"idle RSS {idle:.1f} MB; with {args.streams} streams (record: {args.record}): "
          f"{settled:.1f} MB")  # fmt: skip
    print("samples (MB): " + ", ".join(f"{s:.0f}" for s in samples))
    print(f"per stream: {per_stream:.2f} MB over idle; one window lists {window_mb:.2f} MB of "
          f"media: {ratio:.2f}x ({'within' if ratio <= GOAL_RATIO else 'NOT within'} "
          f"the {GOAL_RATIO}x goal)")  # fmt: skip
    print(f"growth from the first sample to the last: {samples[-1] - samples[0]:+.1f} MB "
          f"over {args.seconds:.0f} s")  # fmt: skip
    per_minute = max(1, round(60 / args.every))
    if len(samples) >= 2 * per_minute:
        minutes = [statistics.fmean(samples[i : i + per_minute])
                   for i in range(0, len(samples) - per_minute + 1, per_minute)]  # fmt: skip
        print("mean of each minute (MB): " + ", ".join(f"{m:.1f}" for m in minutes))
        print(f"growth from the first minute to the last: {minutes[-1] - minutes[0]:+.1f} MB")
    print(f"spool at the end: {len(spool)} segment files, {sum(spool) / 2**20:.1f} MB on disk")


if __name__ == "__main__":
    main()
