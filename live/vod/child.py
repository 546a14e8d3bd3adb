"""The child process that does a job's media work: `python -m live.vod.child`.

Why a process and not a thread: it can run at a lower CPU priority than the
live streams (`priority.py`), a hostile file that crashes a decoder takes down
only the child, and a deleted asset's work stops at once (the parent kills it).

It reads one JSON spec (`ChildSpec`) on stdin and writes its outputs into
`out_dir`, telling the parent what it did as JSON lines on stdout:
    {"event": "probed", "original": {...}, "duration_s": 30.0}
    {"event": "progress", "percent": 42}                  at most twice a second
    {"event": "renditions", "dir": "pass0", "renditions": [...], "audio": {...},
     "last": false}                     a pass is done: its files, in `out_dir/dir`,
                                        are the parent's to take
    {"event": "finished", "duration_s": 30.0, "files": ["download.mp4", ...]}
    {"event": "failed", "code": "unsupported_media", "message": "..."}
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from live.recording import layout
from live.vod.codecs import rendition_codec
from live.vod.encode import Clip, EncodeSettings, encode_pass
from live.vod.pictures import make_pictures
from live.vod.plan import AUDIO, EncodePass, VodPlan, plan_job
from live.vod.priority import die_with_parent, lower_priority
from live.vod.probe import MediaRejected, SourceInfo, probe
from live.vod.remux import build_mp4, pass_through

_PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class ChildSpec:
    source: str
    size_bytes: int
    out_dir: str
    rungs: list[tuple[int, int]]
    transcode: str = "ladder"
    clip_start_s: float | None = None
    clip_duration_s: float | None = None
    poster_source: str | None = None
    preset: str = "veryfast"
    priority: str = "idle"
    # The first pass's renditions are stored already (a job resumed after a restart).
    first_pass_done: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))


_EMIT_LOCK = threading.Lock()  # the passes' threads share stdout


def _emit(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, **fields}) + "\n"
    with _EMIT_LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()


class _Progress:
    """Percent of the whole job from each pass's own fraction (the passes run at
    once), sent at most twice a second."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = weights
        self.fractions = [0.0] * len(weights)
        self._sent_at = 0.0

    def of_pass(self, number: int) -> Callable[[float], None]:
        def report(fraction: float) -> None:
            self.fractions[number] = fraction
            now = time.monotonic()
            if now - self._sent_at >= _PROGRESS_EVERY_S:
                self._sent_at = now
                done = sum(w * f for w, f in zip(self.weights, self.fractions, strict=True))
                _emit("progress", percent=min(99, int(100 * done)))

        return report


def run(spec: ChildSpec) -> None:
    out_dir = Path(spec.out_dir)
    source = probe(spec.source, spec.size_bytes)
    _emit("probed", original=source.original, duration_s=source.duration_s)
    clipped = bool(spec.clip_start_s) or spec.clip_duration_s is not None
    plan = plan_job(
        source, spec.rungs, passthrough=spec.transcode == "passthrough", clipped=clipped
    )
    if plan.passthrough:
        video_name = _source_name(source)
        pass_dir = _pass_dir(out_dir, 0)
        pass_through(spec.source, pass_dir, video_name, segment_s=EncodeSettings().segment_s)
        duration = source.duration_s
        build_mp4(pass_dir, video_name, source.audio is not None, out_dir / layout.MP4)
        _emit(
            "renditions",
            dir=pass_dir.name,
            renditions=_describe(pass_dir, source, video_name),
            audio=_audio(pass_dir, source.audio is not None),
            last=True,
        )
    else:
        progress = _Progress([step.weight for step in plan.passes])
        # The passes run at once, each in a thread over its own decoder, so the cores
        # stay busy as a single ffmpeg command keeps them; the first, lighter one
        # still ends first and makes the asset viewable.
        steps = [
            (number, step) for number, step in enumerate(plan.passes)
            if not (number == 0 and spec.first_pass_done and not step.last)
        ]  # fmt: skip
        for number, _ in enumerate(plan.passes):
            if number not in dict(steps):
                progress.fractions[number] = 1.0
        with ThreadPoolExecutor(len(steps)) as pool:
            runs = [
                pool.submit(_run_pass, spec, source, plan, number, step, out_dir,
                            progress.of_pass(number))
                for number, step in steps
            ]  # fmt: skip
            duration = max(run.result() for run in runs)
    mp4 = out_dir / layout.MP4
    poster = Path(spec.poster_source) if spec.poster_source else None
    files = [layout.MP4, *make_pictures(mp4, poster, out_dir)]
    _emit("finished", duration_s=round(duration, 3), files=files)


def _run_pass(
    spec: ChildSpec,
    source: SourceInfo,
    plan: VodPlan,
    number: int,
    step: EncodePass,
    out_dir: Path,
    progress: Callable[[float], None],
) -> float:
    """One pass, then its renditions announced (the last pass makes the MP4 first)."""
    # The last pass always makes the audio too: the MP4 needs it here.
    audio = (step.audio or step.last) and source.audio is not None
    step = EncodePass(step.rungs, audio, step.last, step.weight)
    # A directory per pass: the parent takes a pass's files while the other runs.
    pass_dir = _pass_dir(out_dir, number)
    duration = encode_pass(
        spec.source, source, step, pass_dir,
        clip=Clip(spec.clip_start_s or 0.0, spec.clip_duration_s),
        settings=EncodeSettings(preset=spec.preset), progress=progress,
    )  # fmt: skip
    if step.last:  # before the parent takes the renditions' files away
        top = plan.rungs[0].name if plan.rungs else None
        build_mp4(pass_dir, top, source.audio is not None, out_dir / layout.MP4)
    made = [
        {"name": r.name, "width": r.width, "height": r.height,
         "bitrate_kbps": r.bitrate // 1000,
         "codec": rendition_codec(pass_dir / layout.rendition_init(r.name))}
        for r in step.rungs
    ]  # fmt: skip
    _emit("renditions", dir=pass_dir.name, renditions=made, audio=_audio(pass_dir, audio),
          last=step.last)  # fmt: skip
    return duration


def _pass_dir(out_dir: Path, number: int) -> Path:
    path = out_dir / f"pass{number}"
    path.mkdir()
    return path


def _source_name(source: SourceInfo) -> str | None:
    return f"{source.video['height']}p" if source.video is not None else None


def _describe(out_dir: Path, source: SourceInfo, video_name: str | None) -> list[dict[str, Any]]:
    if video_name is None or source.video is None:
        return []
    return [{
        "name": video_name, "width": source.video["width"], "height": source.video["height"],
        "bitrate_kbps": source.video["bitrate_kbps"],
        "codec": rendition_codec(out_dir / layout.rendition_init(video_name)),
    }]  # fmt: skip


def _audio(out_dir: Path, made: bool) -> dict[str, Any] | None:
    if not made:
        return None
    return {"name": AUDIO, "codec": rendition_codec(out_dir / layout.rendition_init(AUDIO))}


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    die_with_parent()
    fields = json.loads(sys.stdin.read())
    fields["rungs"] = [tuple(rung) for rung in fields["rungs"]]  # JSON has no tuples
    spec = ChildSpec(**fields)
    lower_priority(spec.priority)  # type: ignore[arg-type]
    try:
        run(spec)
    except MediaRejected as rejected:
        _emit("failed", code=rejected.code, message=rejected.message)
    except Exception as error:  # anything else is ours, not the file's: say what
        logging.exception("VOD processing failed")
        _emit("failed", code="processing_failed", message=f"processing failed: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
