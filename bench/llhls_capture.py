"""What one viewer fetched from a live origin, kept as files, and a viewer that replays it.

The load tool's static mode prices our origin against a static file server doing the
same job: the same number of viewers making the same requests a second for the same
bytes. A static server cannot hold a blocking playlist reload until the next part
exists, so the replay is driven by the clock instead of by the server:

- `CaptureViewer` is the ordinary viewer (`llhls_client.Viewer`) that also keeps every
  body as it came on the wire (gzipped playlists stay gzipped) with the time it had it,
  and whether it was still joining (multivariant, first playlist, init, hold-back
  parts) or in its loop (a blocking reload and a part per part);
- `static_path` names the file that stands for each request: the path without its
  query, with the `_HLS_*` delivery directives folded into the name, so every distinct
  blocking reload is a distinct file (`index.m3u8?_HLS_msn=42&_HLS_part=3&_HLS_skip=YES`
  becomes `index.msn42.part3.skipYES.m3u8`) and the player id of `?pl=` is dropped;
- `plan` turns the capture into a `Schedule`: what a viewer fetches once on joining,
  and the loop's requests at their offsets in a cycle as long as the parts captured;
- `ReplayViewer` fetches the joining files, then each loop file when its time in the
  (repeating) cycle comes: playlists on one connection and parts on the other, like
  the live viewer. Cycles are aligned on CLOCK_MONOTONIC, which all worker processes
  share, so every viewer asks for a part at the same moment, as the live origin
  releases a part to all its waiting viewers at once.
"""

from __future__ import annotations

import asyncio
import bisect
import posixpath
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from llhls_client import (
    HttpConnection,
    MediaPlaylist,
    Response,
    Tally,
    Target,
    Viewer,
    part_name,
)

DIRECTIVES = ("_HLS_msn", "_HLS_part", "_HLS_skip")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9]{1,20}$")


@dataclass(slots=True)
class Captured:
    """One response the capturing viewer had."""

    what: str  # multivariant, playlist, init or part
    target: str  # the path and query it asked for
    body: bytes  # as sent (gzipped if `gzip`)
    gzip: bool
    at: float  # time.monotonic() of its last byte
    joining: bool  # fetched before the viewer's loop began


def static_path(target: str) -> str:
    """The file path (from the server's root) standing for the response to `target`.

    The query is dropped except for the delivery directives, which become part of the
    name before its extension, in a fixed order. Raises ValueError for what is no file
    path under a root (a relative path, `/`, `//host`) or a directive value that is not
    plain letters and digits; `..` cannot climb above an absolute path's `/`.
    """
    path, _, query = target.partition("?")
    values = dict(parse_qsl(query, keep_blank_values=True))
    tag = ""
    for key in DIRECTIVES:
        if key in values:
            if not _SAFE_VALUE.match(values[key]):
                raise ValueError(f"unexpected {key} value in {target!r}")
            tag += f".{key.removeprefix('_HLS_')}{values[key]}"
    clean = posixpath.normpath(path)
    if not clean.startswith("/") or clean.startswith("//") or clean == "/":
        raise ValueError(f"not a file path under the root: {target!r}")
    if tag:
        directory, name = clean.rsplit("/", 1)
        stem, dot, extension = name.rpartition(".")
        name = f"{stem}{tag}.{extension}" if dot else f"{name}{tag}"
        clean = f"{directory}/{name}"
    return clean


@dataclass(frozen=True)
class Schedule:
    """What a replaying viewer fetches: `joining` once, in order; then `steps` (offset
    in seconds into a cycle, what, path), sorted by offset, every `period` seconds."""

    joining: tuple[tuple[str, str], ...]
    steps: tuple[tuple[float, str, str], ...]
    period: float
    gzip: bool  # some responses were gzipped: serve the `.gz` beside each file


def plan(captured: list[Captured]) -> Schedule:
    """The schedule of a capture. The cycle is as many part durations long as the loop
    made blocking reloads (the duration being their mean interval), so the first reload
    of the next cycle comes one part after the last one of this cycle."""
    loop = [c for c in captured if not c.joining]
    reloads = [c.at for c in loop if c.what == "playlist"]
    if len(reloads) < 2:
        raise ValueError("capture too short: fewer than two blocking reloads")
    interval = (reloads[-1] - reloads[0]) / (len(reloads) - 1)
    if interval <= 0:
        raise ValueError("blocking reloads all answered at once")
    period = len(reloads) * interval
    origin = min(c.at for c in loop)
    steps = sorted(((c.at - origin) % period, c.what, static_path(c.target)) for c in loop)
    return Schedule(
        joining=tuple((c.what, static_path(c.target)) for c in captured if c.joining),
        steps=tuple(steps),
        period=period,
        gzip=any(c.gzip for c in captured),
    )


def write_capture(captured: list[Captured], root: Path) -> Schedule:
    """Write each response under `root` at its `static_path` (a gzipped one both as sent,
    with `.gz`, and unzipped) and return the schedule that replays them."""
    schedule = plan(captured)
    for response in captured:
        file = root / static_path(response.target).lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        if response.gzip:
            file.with_name(file.name + ".gz").write_bytes(response.body)
            file.write_bytes(zlib.decompress(response.body, 31))
        else:
            file.write_bytes(response.body)
    return schedule


# ---------------------------------------------------------------------------- viewers


class CaptureViewer(Viewer):
    """The live viewer, keeping every body it had (parts too) and when it had it."""

    def __init__(self, target: Target, tally: Tally) -> None:
        super().__init__(target, tally)
        self.captured: list[Captured] = []
        self._joining = True

    async def _get(
        self, connection: HttpConnection, path: str, what: str, *, keep_body: bool = True
    ) -> Response | None:
        return await super()._get(connection, path, what, keep_body=True)

    def _checked(self, response: Response, path: str, what: str) -> Response | None:
        checked = super()._checked(response, path, what)
        if checked is not None:
            self.captured.append(
                Captured(what, path, checked.body or b"", checked.gzip, checked.finished_at,
                         self._joining)
            )  # fmt: skip
        return checked

    async def _step(self, playlist: MediaPlaylist, media_path: str) -> MediaPlaylist | None:
        self._joining = False
        return await super()._step(playlist, media_path)


async def capture(target: Target, seconds: float) -> list[Captured]:
    """What one viewer of `target` fetched in `seconds` (raises if anything failed)."""
    viewer = CaptureViewer(target, Tally())
    await viewer.run(time.monotonic() + seconds)
    if viewer.tally.errors:
        raise RuntimeError(f"capture failed: {viewer.tally.error_samples}")
    return viewer.captured


class ReplayViewer(Viewer):
    """Fetches a `Schedule` from a static server: the joining files at once, then each
    step at its time in the cycle (late steps go as soon as the previous one is done,
    as a player behind would)."""

    def __init__(self, target: Target, tally: Tally, *, schedule: Schedule) -> None:
        super().__init__(target, tally)
        self.schedule = schedule

    async def run(self, until: float) -> None:
        try:
            for what, path in self.schedule.joining:
                connection = self.playlists if what in ("multivariant", "playlist") else self.media
                if await self._get(connection, path, what, keep_body=False) is None:
                    return
            playlists = [s for s in self.schedule.steps if s[1] == "playlist"]
            media = [s for s in self.schedule.steps if s[1] != "playlist"]
            await asyncio.gather(
                self._follow(self.playlists, playlists, until),
                self._follow(self.media, media, until),
            )
        finally:
            self.playlists.close()
            self.media.close()

    async def _follow(
        self, connection: HttpConnection, steps: list[tuple[float, str, str]], until: float
    ) -> None:
        if not steps:
            return
        period = self.schedule.period
        cycle = int(time.monotonic() // period)
        index = bisect.bisect_left([s[0] for s in steps], time.monotonic() - cycle * period)
        while True:
            if index == len(steps):
                index, cycle = 0, cycle + 1
            offset, what, path = steps[index]
            at = cycle * period + offset
            if at >= until:
                return
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            response = await self._get(connection, path, what, keep_body=False)
            if response is not None and what == "part":
                # A part of each cycle counts as its own part for the delay figures.
                self.tally.arrivals[f"{cycle}:{part_name(path)}"].append(response.finished_at)
            elif response is not None and ".skip" in path:  # named so by `static_path`
                self.tally.delta_playlists += 1
            index += 1
