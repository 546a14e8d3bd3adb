"""CPU per ingested stream: `live` (RTMP in, LL-HLS out) next to nginx-rtmp (RTMP in, HLS out).

nginx-rtmp is the usual self-hosted baseline, so the project's goal is stated against
it: ingest within 1.5x of nginx-rtmp's CPU while producing LL-HLS (200 ms parts)
instead of plain 1 s HLS. Both servers get the same N publishers (`ffmpeg -re
-stream_loop -1 -c copy` of one 720p30 3 Mbps H.264 + AAC file), one server at a time,
and only the server's own CPU time (utime + stime from /proc, over the server's whole
process tree: nginx master + worker) is counted; the publishers' CPU is excluded
(it is printed for reference). The figure is CPU seconds per stream per second of
media: 0.01 means one stream costs 1% of one core.

A second table adds the kernel's own threads (kworkers, flushers, softirqs) over the
same windows, with a sync before each window (not counted) and one after it
(counted): nginx leaves its fragments to the kernel's flushers, which write them
back 30 s later, outside a short window, where live flushes its recordings every
5 s; with the sync both pay for writing back what they wrote in the window.

A run where the server stops producing output would look cheap, so each window is
checked: for live, every stream's preload hint must have advanced by about one part
per 200 ms and /metrics `live_hls_parts_total` must grow accordingly; for nginx, every
stream's HLS playlist must have gained fragments.

Needs Debian's nginx with the RTMP module:  apt-get install nginx libnginx-mod-rtmp

    .venv/bin/python bench/cpu_vs_nginx.py [--sizes 1,8,16] [--quick] [--rounds K] [--no-record]

`--rounds K` takes K windows of each server at each N in alternating order (live,
nginx, nginx, live, ...) and pools them: run-to-run drift of the machine (10-20 % on
a shared VM) then weighs on both servers alike.
"""

from __future__ import annotations

import argparse
import grp
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    LiveServer,
    Reaper,
    children,
    cpu_seconds,
    exit_on_sigterm,
    free_port,
    process_tree,
)

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
INPUT = CACHE / "input-720p30-3M.flv"
GOAL_RATIO = 1.5
PART_S = 0.2
NGINX_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules")
_HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.m4s')
_NGINX_SEQ = re.compile(r"#EXT-X-MEDIA-SEQUENCE:(\d+)")


@dataclass
class Window:
    """One measurement of one server at one stream count."""

    server: str
    streams: int
    seconds: float
    cpu: float
    publishers_cpu: float
    streams_live: int
    output_note: str
    # The kernel's own threads over the window and a sync after it: the writeback
    # of what the server wrote, which the kernel does for it whenever it happens.
    kernel_cpu: float = 0.0

    @property
    def per_stream_with_kernel(self) -> float:
        return (self.cpu + self.kernel_cpu) / (self.streams * self.seconds)

    @property
    def per_stream(self) -> float:
        """CPU seconds per stream per second of media."""
        return self.cpu / (self.streams * self.seconds)


# ---------------------------------------------------------------------------- input


def make_input() -> Path:
    """20 s of 1280x720 30 fps H.264 (GOP 30, ~3 Mbps) + AAC 128k, made once and cached."""
    if INPUT.exists():
        return INPUT
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = INPUT.with_suffix(".partial.flv")
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "30",
            "-keyint_min",
            "30",
            "-sc_threshold",
            "0",
            "-b:v",
            "3M",
            "-maxrate",
            "3M",
            "-bufsize",
            "3M",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ar",
            "48000",
            "-f",
            "flv",
            str(partial),
        ],
        check=True,
        timeout=300,
    )
    partial.rename(INPUT)
    return INPUT


def start_publishers(reaper: Reaper, urls: list[str], logs: Path) -> list[subprocess.Popen]:
    """One real-time `-c copy` ffmpeg per URL, looping the input forever."""
    publishers = []
    for number, url in enumerate(urls):
        log = (logs / f"publisher-{number}.log").open("w")
        publishers.append(
            reaper.popen(
                [
                    "ffmpeg",
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-nostats",
                    "-re",
                    "-stream_loop",
                    "-1",
                    "-i",
                    str(INPUT),
                    "-c",
                    "copy",
                    "-f",
                    "flv",
                    url,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        )
        log.close()
    return publishers


def check_publishers(publishers: list[subprocess.Popen], logs: Path) -> None:
    dead = [n for n, p in enumerate(publishers) if p.poll() is not None]
    if dead:
        tail = (logs / f"publisher-{dead[0]}.log").read_text()[-500:]
        raise RuntimeError(f"{len(dead)} publisher(s) exited early; first said:\n{tail}")


def total_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pids).values())


KTHREADD = 2


def kernel_threads_cpu() -> float:
    """utime + stime of the kernel's threads (kworkers, flushers, softirqs): the
    children of kthreadd."""
    return total_cpu(children(KTHREADD))


class KernelShare:
    """The kernel threads' CPU over a window, the writeback of the bytes written
    in it included: a sync before the window starts (not counted) and one after it
    ends (counted). A server that leaves its writes to the kernel's flushers (nginx:
    30 s later) is then charged like one that syncs during the window (live)."""

    def __enter__(self) -> KernelShare:
        os.sync()
        self.before = kernel_threads_cpu()
        self.cpu = 0.0
        return self

    def __exit__(self, *_exc: object) -> None:
        os.sync()
        self.cpu = kernel_threads_cpu() - self.before


@dataclass
class Measured:
    seconds: float
    cpu: float
    publishers_cpu: float
    kernel_cpu: float


def measure_window(pids: list[int], publisher_pids: list[int], window: float) -> Measured:
    """The CPU of the server's processes, the publishers' and the kernel's threads
    over `window` seconds."""
    with KernelShare() as kernel:
        cpu_before, publishers_before = total_cpu(pids), total_cpu(publisher_pids)
        started = time.monotonic()
        time.sleep(window)
        cpu_after, publishers_after = total_cpu(pids), total_cpu(publisher_pids)
        ended = time.monotonic()
    return Measured(
        ended - started, cpu_after - cpu_before, publishers_after - publishers_before, kernel.cpu
    )


# ---------------------------------------------------------------------------- live


def hint_of(server: LiveServer, playback_id: str) -> int | None:
    status, body = server.get(f"/live/{playback_id}/source/index.m3u8")
    match = _HINT.search(body.decode(errors="replace")) if status == 200 else None
    return int(match.group(1)) if match else None


def measure_live_idle(window: float) -> float:
    """CPU seconds per second of a live server with no streams: its fixed cost."""
    reaper = Reaper()
    temp = Path(tempfile.mkdtemp(prefix="live-bench-idle-"))
    try:
        server = LiveServer(reaper, temp)
        time.sleep(2)
        pids = process_tree(server.pid)
        before, started = total_cpu(pids), time.monotonic()
        time.sleep(window)
        return (total_cpu(pids) - before) / (time.monotonic() - started)
    finally:
        reaper.end_all()
        shutil.rmtree(temp, ignore_errors=True)


def measure_live(count: int, warmup: float, window: float, *, record: bool) -> Window:
    reaper = Reaper()
    temp = Path(tempfile.mkdtemp(prefix="live-bench-cpu-"))
    try:
        (temp / "data").mkdir()
        server = LiveServer(reaper, temp / "data")
        streams = [server.create_livestream(f"cpu-{n}", record=record) for n in range(count)]
        publishers = start_publishers(
            reaper, [server.rtmp_url(s["stream_key"]) for s in streams], temp
        )
        time.sleep(warmup)
        check_publishers(publishers, temp)
        playback = [s["playback_id"] for s in streams]
        hints_before = [hint_of(server, p) for p in playback]
        parts_before = server.metric("live_hls_parts_total") or 0.0

        pids = process_tree(server.pid)
        pub_pids = [p.pid for p in publishers]
        measured = measure_window(pids, pub_pids, window)

        hints_after = [hint_of(server, p) for p in playback]
        parts_after = server.metric("live_hls_parts_total") or 0.0
        check_publishers(publishers, temp)
        elapsed = measured.seconds
        expected = elapsed / PART_S
        live = sum(
            1
            for b, a in zip(hints_before, hints_after, strict=True)
            if b is not None and a is not None and a - b >= 0.8 * expected
        )
        rate = (parts_after - parts_before) / (count * expected)
        warnings = [
            line.strip() for line in server.output if " WARNING " in line or " ERROR " in line
        ]
        note = f"parts {rate:.0%} of expected"
        if warnings:
            note += f", {len(warnings)} warning/error log lines, first: {warnings[0]!r}"
        return Window(
            "live+rec" if record else "live",
            count,
            elapsed,
            measured.cpu,
            measured.publishers_cpu,
            live,
            note,
            measured.kernel_cpu,
        )
    finally:
        reaper.end_all()
        shutil.rmtree(temp, ignore_errors=True)


# ---------------------------------------------------------------------------- nginx


def nginx_module() -> Path:
    for directory in NGINX_MODULE_DIRS:
        candidate = Path(directory) / "ngx_rtmp_module.so"
        if candidate.exists():
            return candidate
    raise SystemExit("nginx-rtmp not found: apt-get install nginx libnginx-mod-rtmp")


def nginx_config(temp: Path, port: int) -> str:
    # As root, nginx switches its workers to an unprivileged user, which must be able
    # to write the HLS directory.
    user = ""
    if os.geteuid() == 0:
        group = next((g for g in ("nogroup", "nobody") if _group_exists(g)), "root")
        user = f"user nobody {group};"
    return f"""
{user}
daemon off;
master_process on;
worker_processes 1;
pid {temp}/nginx.pid;
error_log {temp}/error.log warn;
load_module {nginx_module()};
events {{ worker_connections 1024; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
            hls on;
            hls_path {temp}/hls;
            hls_fragment 1s;
        }}
    }}
}}
"""


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nginx did not start listening")


def nginx_sequences(hls: Path, count: int) -> list[int | None]:
    """EXT-X-MEDIA-SEQUENCE + fragment count of each stream's playlist (None if absent)."""
    found: list[int | None] = []
    for number in range(count):
        try:
            text = (hls / f"cpu-{number}.m3u8").read_text()
        except OSError:
            found.append(None)
            continue
        match = _NGINX_SEQ.search(text)
        found.append(int(match.group(1)) + text.count("#EXTINF") if match else None)
    return found


def end_nginx_workers(workers: list[int]) -> None:
    """Workers normally leave with their master; end any that did not, by PID."""
    for pid in workers:
        try:
            if b"nginx" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, 9)
        except OSError:
            pass


def measure_nginx(count: int, warmup: float, window: float) -> Window:
    reaper = Reaper()
    temp = Path(tempfile.mkdtemp(prefix="live-bench-nginx-"))
    workers: list[int] = []
    try:
        hls = temp / "hls"
        hls.mkdir()
        os.chmod(temp, 0o755)
        os.chmod(hls, 0o777)
        port = free_port()
        (temp / "nginx.conf").write_text(nginx_config(temp, port))
        master = reaper.popen(
            [
                "nginx",
                "-p",
                str(temp),
                "-c",
                str(temp / "nginx.conf"),
                "-e",
                str(temp / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_listening(port, master)
        publishers = start_publishers(
            reaper, [f"rtmp://127.0.0.1:{port}/live/cpu-{n}" for n in range(count)], temp
        )
        time.sleep(warmup)
        check_publishers(publishers, temp)
        before = nginx_sequences(hls, count)

        pids = process_tree(master.pid)
        workers = [pid for pid in pids if pid != master.pid]
        pub_pids = [p.pid for p in publishers]
        measured = measure_window(pids, pub_pids, window)

        after = nginx_sequences(hls, count)
        check_publishers(publishers, temp)
        elapsed = measured.seconds
        # 1 s fragments, cut on keyframes: expect about one per second of window.
        live = sum(
            1
            for b, a in zip(before, after, strict=True)
            if b is not None and a is not None and a - b >= 0.6 * elapsed
        )
        gained = sum((a or 0) - (b or 0) for b, a in zip(before, after, strict=True))
        note = f"{gained / (count * elapsed):.2f} fragments/s per stream"
        return Window(
            "nginx-rtmp",
            count,
            elapsed,
            measured.cpu,
            measured.publishers_cpu,
            live,
            note,
            measured.kernel_cpu,
        )
    finally:
        reaper.end_all()
        end_nginx_workers(workers)
        shutil.rmtree(temp, ignore_errors=True)


# ---------------------------------------------------------------------------- main


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    return f"{os.cpu_count()} CPUs ({model}), load average {os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,8,16", help="stream counts, e.g. 1,8,16")
    parser.add_argument("--quick", action="store_true", help="3 s warm-up, 8 s windows")
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument("--window", type=float, default=None)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="windows per server and N, taken in alternating order; the figures pool them",
    )
    parser.add_argument(
        "--no-record",
        dest="record",
        action="store_false",
        help="skip the extra run of live with recording on",
    )
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else (3.0 if args.quick else 5.0)
    window = args.window if args.window is not None else (8.0 if args.quick else 20.0)
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    exit_on_sigterm()
    if shutil.which("nginx") is None:
        raise SystemExit("nginx not found: apt-get install nginx libnginx-mod-rtmp")
    nginx_module()
    make_input()

    print(f"machine: {machine()}")
    print(
        f"input: {INPUT.name}, publishers: ffmpeg -re -stream_loop -1 -c copy; "
        f"warm-up {warmup:g} s, window {window:g} s"
    )
    print(
        "counted: the server's own CPU (utime+stime of its process tree); "
        "publishers' CPU excluded (shown for reference)"
    )
    idle = measure_live_idle(window)
    print(
        f"  live idle (no streams): {idle:.4f} CPU s/s ({idle * 100:.2f}% of a core); "
        "included in the figures below"
    )
    results: list[dict[str, Window]] = []
    names = ("live", "live+rec", "nginx") if args.record else ("live", "nginx")
    for count in sizes:
        windows: dict[str, list[Window]] = {name: [] for name in names}
        for round_number in range(args.rounds):
            # Alternate the order (A B, B A, ...): a machine that drifts during the run
            # weighs on both servers alike instead of on whichever ran last.
            for name in names if round_number % 2 == 0 else names[::-1]:
                if name == "nginx":
                    result = measure_nginx(count, warmup, window)
                else:
                    result = measure_live(count, warmup, window, record=name == "live+rec")
                windows[name].append(result)
                print(
                    f"  {result.server:<10} N={count:<3} cpu {result.cpu:6.2f} s in "
                    f"{result.seconds:.1f} s = {result.per_stream:.4f} s/stream/s "
                    f"({result.per_stream * 100:.2f}% of a core per stream); streams live "
                    f"{result.streams_live}/{count}; {result.output_note}; publishers' cpu "
                    f"{result.publishers_cpu:.2f} s (excluded); kernel threads "
                    f"{result.kernel_cpu:.2f} s",
                    flush=True,
                )
        if args.rounds > 1:
            rounds = [
                ratio(ours, theirs)
                for ours, theirs in zip(windows["live"], windows["nginx"], strict=True)
            ]
            print(
                f"  N={count}: live / nginx per round: "
                + ", ".join(f"{value:.2f}x" for value in rounds),
                flush=True,
            )
        results.append({name: pooled(found) for name, found in windows.items()})

    print()
    print("CPU seconds per stream per second of media (lower is better):")
    print()
    header = "| N | live | nginx-rtmp | live / nginx |"
    rule = "|---|---|---|---|"
    if args.record:
        header += " live + recording | (live + recording) / nginx |"
        rule += "---|---|"
    print(header + " streams OK (live / nginx) |")
    print(rule + "---|")
    for row in results:
        live, nginx = row["live"], row["nginx"]
        line = (
            f"| {live.streams} | {live.per_stream:.4f} | {nginx.per_stream:.4f} | "
            f"{ratio(live, nginx):.1f}x |"
        )
        if "live+rec" in row:
            line += f" {row['live+rec'].per_stream:.4f} | {ratio(row['live+rec'], nginx):.1f}x |"
        ok = f"{live.streams_live}/{live.streams} / {nginx.streams_live}/{nginx.streams}"
        print(f"{line} {ok} |")
    print()
    print(
        "With the kernel threads' CPU over the same windows (writeback, softirqs; a "
        "sync before and after each window):"
    )
    print()
    print(
        "| N | live | live + recording | nginx-rtmp | live / nginx | (live + recording) / nginx |"
    )
    print("|---|---|---|---|---|---|")
    for row in results:
        live, nginx = row["live"], row["nginx"]
        recorded = row.get("live+rec")
        base = nginx.per_stream_with_kernel
        print(
            f"| {live.streams} | {live.per_stream_with_kernel:.4f} | "
            + (f"{recorded.per_stream_with_kernel:.4f}" if recorded else "-")
            + f" | {base:.4f} | {live.per_stream_with_kernel / base:.1f}x | "
            + (f"{recorded.per_stream_with_kernel / base:.1f}x" if recorded else "-")
            + " |"
        )
    print()
    for row in results:
        value = ratio(row["live"], row["nginx"])
        verdict = "within" if value <= GOAL_RATIO else "NOT within"
        print(
            f"N={row['live'].streams}: live (LL-HLS, no recording) uses {value:.1f}x "
            f"nginx-rtmp's CPU per stream: {verdict} the {GOAL_RATIO}x goal"
        )


def pooled(windows: list[Window]) -> Window:
    """Several windows of one server at one N as one long window."""
    first = windows[0]
    return Window(
        first.server,
        first.streams,
        sum(w.seconds for w in windows),
        sum(w.cpu for w in windows),
        sum(w.publishers_cpu for w in windows),
        min(w.streams_live for w in windows),
        "; ".join(sorted({w.output_note for w in windows})),
        sum(w.kernel_cpu for w in windows),
    )


def ratio(ours: Window, nginx: Window) -> float:
    return ours.per_stream / nginx.per_stream if nginx.per_stream > 0 else float("inf")


if __name__ == "__main__":
    main()
