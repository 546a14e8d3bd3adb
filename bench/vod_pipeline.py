"""VOD pipeline vs the ffmpeg CLI: wall time and CPU to turn the same 60 s 720p30
H.264/AAC file into the same ladder (720p, 480p, 360p H.264 with the same x264
preset, bit rates and 2 s keyframes; AAC 128k; fMP4 HLS; a fast-start MP4).

Ours is the job's child process (`python -m live.vod.child`), run at normal
priority like ffmpeg: two passes over the source (the lowest rung first, so the
asset is viewable early), then the MP4 remux, the poster and the sprite. ffmpeg
decodes once, splits, scales and encodes in one command, then remuxes the MP4.
CPU is each process tree's user + system time (wait4's rusage). Goal: within
1.2x of ffmpeg.

    flock /tmp/live-bench.lock .venv/bin/python bench/vod_pipeline.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from live.ladder.plan import DEFAULT_RUNGS, parse_rungs  # noqa: E402
from live.vod.child import ChildSpec  # noqa: E402
from live.vod.plan import vod_rungs  # noqa: E402

PRESET = "veryfast"


def make_source(path: Path, seconds: int) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-c:v", "libx264", "-preset", "veryfast", "-b:v", "4M", "-g", "60",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-t", str(seconds), str(path)],
        check=True,
    )  # fmt: skip


def measured(command: list[str], stdin: bytes | None = None, env=None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command and its children."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    assert process.stdin is not None
    if stdin:
        process.stdin.write(stdin)
    process.stdin.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({process.returncode})")
    return wall, usage.ru_utime + usage.ru_stime


def ours(source: Path, out: Path) -> tuple[float, float]:
    spec = ChildSpec(
        source=str(source), size_bytes=source.stat().st_size, out_dir=str(out),
        rungs=parse_rungs(DEFAULT_RUNGS), preset=PRESET, priority="normal",
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return measured([sys.executable, "-m", "live.vod.child"], spec.to_json().encode(), env)


def ffmpeg_cli(source: Path, out: Path) -> tuple[float, float]:
    rungs = vod_rungs(1280, 720, parse_rungs(DEFAULT_RUNGS))
    split = f"[0:v]split={len(rungs)}" + "".join(f"[s{i}]" for i in range(len(rungs)))
    scales = [f"[s{i}]scale={r.width}:{r.height}:flags=bicubic[o{i}]" for i, r in enumerate(rungs)]
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(source),
               "-filter_complex", ";".join([split, *scales])]  # fmt: skip
    for i in range(len(rungs)):
        command += ["-map", f"[o{i}]"]
    command += ["-map", "0:a", "-c:v", "libx264", "-preset", PRESET, "-sc_threshold", "0",
                "-g", "240", "-forced-idr", "1",
                "-force_key_frames", "expr:gte(t,n_forced*2)"]  # fmt: skip
    for i, rung in enumerate(rungs):
        command += [f"-b:v:{i}", str(rung.bitrate), f"-maxrate:v:{i}", str(rung.bitrate * 3 // 2),
                    f"-bufsize:v:{i}", str(rung.bitrate * 2)]  # fmt: skip
    streams = " ".join(f"v:{i}" for i in range(len(rungs))) + " a:0"
    command += ["-c:a", "aac", "-b:a", "128k",
                "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
                "-hls_segment_type", "fmp4", "-hls_segment_filename", str(out / "v%v_%05d.m4s"),
                "-master_pl_name", "index.m3u8", "-var_stream_map", streams,
                str(out / "v%v.m3u8")]  # fmt: skip
    wall, cpu = measured(command)
    mp4 = ["ffmpeg", "-v", "error", "-y", "-i", str(out / "v0.m3u8"), "-i",
           str(out / f"v{len(rungs)}.m3u8"), "-c", "copy", "-movflags", "+faststart",
           str(out / "download.mp4")]  # fmt: skip
    wall_mp4, cpu_mp4 = measured(mp4)
    return wall + wall_mp4, cpu + cpu_mp4


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-vod-"))
    try:
        source = work / "source.mp4"
        make_source(source, args.seconds)
        results = {}
        for name, run in (("ffmpeg CLI", ffmpeg_cli), ("live VOD pipeline", ours)):
            out = work / name.replace(" ", "_")
            out.mkdir()
            wall, cpu = run(source, out)
            results[name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
            print(f"{name:>18}: wall {wall:7.2f} s   CPU {cpu:7.2f} s", flush=True)
        base, us = results["ffmpeg CLI"], results["live VOD pipeline"]
        ratio = {"wall": round(us["wall_s"] / base["wall_s"], 3),
                 "cpu": round(us["cpu_s"] / base["cpu_s"], 3)}  # fmt: skip
        print(f"{'ours / ffmpeg':>18}: wall {ratio['wall']:.2f}x   CPU {ratio['cpu']:.2f}x")
        print(json.dumps({"source_s": args.seconds, "preset": PRESET, **results, "ratio": ratio}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
