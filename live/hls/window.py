"""The rolling in-memory LL-HLS window of one rendition.

The packager appends CMAF parts; viewers read playlists, parts, segments and init
sections from here. Everything lives in memory (but segments that have left the
playlist, below) so that a playlist is rendered from one consistent state (HLS §6.2.1
wants atomic updates) and so that one copy of each part serves every viewer.

Naming: parts are numbered by a global counter (`part-{n}.m4s`), not by (msn, index).
The packager only learns that a segment ended when the next keyframe arrives, so the
PRELOAD-HINT for the next part must be right whether or not that part opens a new
segment; a global counter makes `part-{next}.m4s` right in both cases.

Retention is measured in media time, not wall time: a segment's EXT-X-PART tags are
listed while its start is within 3 x TD of the playlist's end (§4.4.4.9 SHOULD), its part
files stay for another 3 x TD (§6.2.2 MUST), then they are dropped. Segments leave the
playlist after `window_segments` newer ones (never shrinking it below 3 x TD) and stay
requestable for about one more playlist's worth. When the publisher stalls nothing is
dropped, which only ever keeps data longer than required.

A segment that has left the playlist and whose part files are gone is handed to the
injected `SegmentSpill` (on disk in production, `live.hls.spool`), which keeps it
until it stops being requestable: only a player far behind asks for it, and without
the spill it would be half of what the window holds. A spill that cannot take a
segment leaves it in memory.

All methods must be called from the event loop thread: waiters are asyncio futures.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from live.hls.snapshot import PartInfo, SegmentInfo, WindowSnapshot
from live.hls.spill import MemorySpill, SegmentSpill

log = logging.getLogger(__name__)

_EPS = 1e-6
PART_TAGS_TD = 3.0  # EXT-X-PART tags listed for segments within this many TD of the end
PART_FILES_TD = 6.0  # part files kept while within this many TD of the end

# Waiter keys: ("pl", msn, part | None) for blocking playlist reloads, ("part", n) for the
# preload-hinted part file.
_WaitKey = tuple


class _Part:
    __slots__ = ("data", "duration", "independent", "index")

    def __init__(self, index: int, data: bytes, duration: float, independent: bool) -> None:
        self.index = index
        self.data = data  # immutable: every viewer is sent this very object
        self.duration = duration
        self.independent = independent


class Gate:
    """What every request waiting for one thing (a playlist update, a part) shares.

    One future per awaited key, not one per waiter: the change that satisfies it wakes
    all of them with one `set_result`, and a waiter that gives up only leaves
    (`HlsWindow.leave`), never cancelling the others' future.
    """

    __slots__ = ("future", "key", "waiting")

    def __init__(self, key: _WaitKey, future: asyncio.Future[None]) -> None:
        self.key = key
        self.future = future
        self.waiting = 0


class _Segment:
    __slots__ = (
        "closed",
        "data",
        "discontinuity",
        "duration",
        "init_id",
        "msn",
        "parts",
        "pdt",
        "spilled",
        "start_time",
    )

    def __init__(self, msn: int, pdt: datetime, discontinuity: bool, start_time: float) -> None:
        self.msn = msn
        self.pdt = pdt
        self.discontinuity = discontinuity
        self.start_time = start_time  # media time since the window began
        self.init_id = -1  # bound when the first part arrives
        self.parts: list[_Part] = []
        self.duration = 0.0
        self.closed = False
        self.data: tuple[bytes, ...] | None = None  # its parts' bytes, once closed
        self.spilled: object | None = None  # the spill's handle, once `data` moved there


class HlsWindow:
    """Parts, segments and init sections of one rendition, plus blocking-reload waiters."""

    def __init__(
        self,
        *,
        target_duration: int,
        part_target: float = 0.2,
        window_segments: int = 7,
        clock: Callable[[], float] = time.time,
        first_number: int = 0,
        spill: SegmentSpill | None = None,
    ) -> None:
        """`first_number` is where MSNs, part numbers and init numbers start. Parts,
        segments and inits are served as immutable, so a later window under the same
        playback id should start past every number an earlier one used (for example at
        `int(time.time())`); otherwise caches may hand out the old session's bytes.
        `spill` keeps segments that have left the playlist (default: in memory);
        `close` frees what it still holds."""
        if int(target_duration) != target_duration or target_duration < 1:
            raise ValueError("target_duration must be a positive integer")
        if not 0 < part_target <= target_duration:
            raise ValueError("part_target must be in (0, target_duration]")
        if window_segments < 1:
            raise ValueError("window_segments must be >= 1")
        if first_number < 0:
            raise ValueError("first_number must be >= 0")
        self._td = int(target_duration)
        self._part_target = float(part_target)
        self._window_segments = window_segments
        self._clock = clock
        self._spill: SegmentSpill = spill if spill is not None else MemorySpill()

        self._inits: dict[int, bytes] = {}
        self._next_init_id = first_number
        self._current_init: int | None = None
        self._last_init: int | None = None  # init of the newest segment that has parts

        self._open: _Segment | None = None
        self._closed: deque[_Segment] = deque()  # retained closed segments, oldest first
        self._by_msn: dict[int, _Segment] = {}
        self._with_part_files: deque[_Segment] = deque()  # closed, part files still kept
        self._unspilled: deque[_Segment] = deque()  # closed, not handed to the spill yet
        self._parts: dict[int, _Part] = {}

        self._first_number = first_number
        self._next_msn = first_number
        self._next_part = first_number
        self._media_sequence = first_number
        self._discontinuity_sequence = 0
        self._media_end = 0.0
        self._last_msn = first_number - 1
        self._last_part = -1  # -1 until the first part: "no part yet"
        self._last_closed_msn = first_number - 1

        self._ended = False
        self._version = 0
        self._snapshot: WindowSnapshot | None = None
        self._gates: dict[_WaitKey, Gate] = {}
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ packager side

    def set_init(self, data: bytes) -> None:
        """Register a new init section; the next segment starts with an EXT-X-MAP of it.

        The same bytes again (encoders may repeat their codec configuration) change
        nothing: a new MAP would force a needless DISCONTINUITY.
        """
        self._require_live()
        if self._current_init is not None and self._inits.get(self._current_init) == data:
            return
        old = self._current_init
        init_id = self._next_init_id
        self._next_init_id += 1
        self._inits[init_id] = bytes(data)
        self._current_init = init_id
        if old is not None:
            self._maybe_free_init(old)
        self._changed()

    def start_segment(
        self, *, discontinuity: bool = False, program_date_time: datetime | None = None
    ) -> None:
        """Close the open segment (if it has parts) and open a new one.

        An open segment without parts is reused rather than closed, so MSNs stay
        contiguous and an empty segment never reaches the playlist.
        """
        self._require_live()
        pdt = _as_utc(program_date_time) if program_date_time else self._now()
        closed = False
        if self._open is not None and self._open.parts:
            self._close_open()
            closed = True
        if self._open is None:
            self._open = _Segment(self._next_msn, pdt, discontinuity, self._media_end)
            self._next_msn += 1
        else:
            self._open.pdt = pdt
            self._open.discontinuity = self._open.discontinuity or discontinuity
        if closed:
            self._trim()
        self._changed()

    def add_part(self, data: bytes, duration: float, independent: bool) -> None:
        """Append a complete part to the open segment and wake whoever waits for it.

        A part that arrives while a newer init section is pending starts a new segment
        by itself: EXT-X-MAP applies to whole segments.
        """
        self._require_live()
        if self._current_init is None:
            raise RuntimeError("add_part before set_init: no init section to map")
        if not duration > 0:
            raise ValueError("part duration must be positive")
        if self._open is None or (self._open.parts and self._open.init_id != self._current_init):
            self.start_segment()
        seg = self._open
        assert seg is not None
        if not seg.parts:
            seg.init_id = self._current_init
            if not self.has_parts:
                seg.discontinuity = False  # nothing before it to be discontinuous with
            elif self._last_init != seg.init_id:
                seg.discontinuity = True
        if duration > self._part_target + 0.0005:
            self._warn_once(
                "part", "part of %.3fs exceeds PART-TARGET %.3f", duration, self._part_target
            )
        part = _Part(self._next_part, bytes(data), float(duration), bool(independent))
        self._next_part += 1
        self._parts[part.index] = part
        seg.parts.append(part)
        seg.duration += part.duration
        self._media_end += part.duration
        self._last_msn = seg.msn
        self._last_part = len(seg.parts) - 1
        self._last_init = seg.init_id
        if self._free_part_files():
            self._spill_due()
        self._changed()

    def end(self) -> None:
        """Close the session: the playlist gets ENDLIST, no hint, and every waiter answers."""
        if self._ended:
            return
        if self._open is not None and self._open.parts:
            self._close_open()
        self._open = None
        self._ended = True
        self._changed()

    def close(self) -> None:
        """The window is no longer served (its stream was taken down): end it and
        free every segment the spill still holds."""
        self.end()
        self._closed.clear()
        self._by_msn.clear()
        self._unspilled.clear()
        self._with_part_files.clear()
        self._parts.clear()
        self._spill.close()
        self._changed()

    # ------------------------------------------------------------------ viewer side

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def first_msn(self) -> int:
        """MSN of the window's first segment (and number of its first part and init)."""
        return self._first_number

    @property
    def last_msn(self) -> int:
        """MSN of the segment holding the newest part, first_msn - 1 before any part."""
        return self._last_msn

    @property
    def last_part(self) -> int:
        """Index of the newest part within its segment, -1 before the first part."""
        return self._last_part

    @property
    def last_closed_msn(self) -> int:
        return self._last_closed_msn

    @property
    def next_part(self) -> int:
        """Global number of the part the preload hint names."""
        return self._next_part

    @property
    def has_parts(self) -> bool:
        return self._last_part >= 0

    @property
    def version(self) -> int:
        """Bumped on every change; keys caches of rendered playlists."""
        return self._version

    @property
    def target_duration(self) -> int:
        return self._td

    @property
    def part_target(self) -> float:
        return self._part_target

    @property
    def window_segments(self) -> int:
        return self._window_segments

    @property
    def media_sequence(self) -> int:
        return self._media_sequence

    @property
    def waiter_count(self) -> int:
        """Pending waiters; lets tests (and metrics) see that none leak."""
        return sum(gate.waiting for gate in self._gates.values())

    def init_data(self, init_id: int) -> bytes | None:
        return self._inits.get(init_id)

    def part_data(self, index: int) -> bytes | None:
        part = self._parts.get(index)
        return None if part is None else part.data

    def segment_chunks(self, msn: int) -> tuple[bytes, ...] | None:
        """A closed segment as its parts' bytes, in order: sent one after another, they
        are the segment, and no byte is held or copied twice."""
        seg = self._by_msn.get(msn)
        if seg is None or not seg.closed:
            return None
        if seg.spilled is not None:
            return self._spill.read(seg.spilled)
        return seg.data

    def is_spilled(self, msn: int) -> bool:
        """Whether segment `msn` is held by the spill rather than in memory."""
        seg = self._by_msn.get(msn)
        return seg is not None and seg.spilled is not None

    def segment_data(self, msn: int) -> bytes | None:
        """A closed segment in one buffer (a copy: serving uses `segment_chunks`)."""
        chunks = self.segment_chunks(msn)
        return None if chunks is None else b"".join(chunks)

    def is_hinted(self, index: int) -> bool:
        """True for the part a live playlist currently names in its PRELOAD-HINT."""
        return not self._ended and self.has_parts and index == self._next_part

    def is_satisfied(self, msn: int, part: int | None) -> bool:
        """Whether a blocking reload for (msn, part) can be answered now (HLS §6.2.5.2).

        Without a part the request waits for segment `msn` to be complete. A part index
        past the last part of a closed segment means the first part of the next one.
        """
        if part is None:
            return self._last_closed_msn >= msn
        target = (msn, part)
        seg = self._by_msn.get(msn)
        if seg is not None and part >= len(seg.parts):
            target = (msn + 1, 0)
        return (self._last_msn, self._last_part) >= target

    def enter_playlist_wait(self, msn: int, part: int | None) -> Gate | None:
        """Join the waiters for (msn, part) or anything later (None: it is here, or the
        session ended). Every `enter_*` must be paired with a `leave`."""
        return self._enter(("pl", msn, part))

    def enter_part_wait(self, index: int) -> Gate | None:
        """Join the waiters for part file `index` (None: it exists, or the session ended)."""
        return self._enter(("part", index))

    def leave(self, gate: Gate) -> None:
        """One waiter is done with `gate`; the last one out of an unresolved gate drops it."""
        gate.waiting -= 1
        if gate.waiting <= 0 and self._gates.get(gate.key) is gate:
            del self._gates[gate.key]
            gate.future.cancel()

    async def wait_for(self, msn: int, part: int | None) -> None:
        """Return once (msn, part) or anything later exists, or the session ended."""
        await self._wait(self.enter_playlist_wait(msn, part))

    async def wait_for_part(self, index: int) -> None:
        """Return once part file `index` exists, or the session ended."""
        await self._wait(self.enter_part_wait(index))

    def snapshot(self) -> WindowSnapshot:
        """The current state, frozen; cached until the next change."""
        if self._snapshot is None:
            self._snapshot = self._build_snapshot()
        return self._snapshot

    # ------------------------------------------------------------------ internals

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _require_live(self) -> None:
        if self._ended:
            raise RuntimeError("HLS window has ended")

    def _warn_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def _close_open(self) -> None:
        seg = self._open
        assert seg is not None and seg.parts
        # The segment is served as its parts one after another: joining a second of
        # video would cost an allocation and a copy, and hold its bytes twice.
        seg.closed = True
        seg.data = tuple(p.data for p in seg.parts)
        if round(seg.duration) > self._td:
            self._warn_once(
                "extinf", "segment of %.3fs exceeds TARGETDURATION %d", seg.duration, self._td
            )
        self._closed.append(seg)
        self._by_msn[seg.msn] = seg
        self._with_part_files.append(seg)
        self._unspilled.append(seg)
        self._last_closed_msn = seg.msn
        self._open = None

    def _trim(self) -> None:
        """Roll the playlist forward, keeping >= window_segments and >= 3 x TD (§6.2.2)."""
        in_playlist = deque(s for s in self._closed if s.msn >= self._media_sequence)
        duration = sum(s.duration for s in in_playlist)
        while len(in_playlist) > self._window_segments:
            oldest = in_playlist[0]
            if duration - oldest.duration < 3 * self._td - _EPS:
                break
            in_playlist.popleft()
            duration -= oldest.duration
            if oldest.discontinuity:
                self._discontinuity_sequence += 1  # its DISCONTINUITY tag left the playlist
            self._media_sequence = oldest.msn + 1
        # Segments that left the playlist stay requestable for one more window.
        while self._closed and self._closed[0].msn < self._media_sequence - (
            self._window_segments + 1
        ):
            self._free_segment(self._closed.popleft())
        self._spill_due()

    def _free_segment(self, seg: _Segment) -> None:
        del self._by_msn[seg.msn]
        if self._with_part_files and self._with_part_files[0] is seg:
            self._with_part_files.popleft()
            self._drop_part_files(seg)
        if self._unspilled and self._unspilled[0] is seg:
            self._unspilled.popleft()
        if seg.spilled is not None:
            self._spill.drop(seg.spilled)
            seg.spilled = None
        seg.data = None
        self._maybe_free_init(seg.init_id)

    def _free_part_files(self) -> bool:
        """Drop the part files that are old enough; whether any were."""
        limit = PART_FILES_TD * self._td + _EPS
        dropped = False
        while self._with_part_files and (
            self._media_end - self._with_part_files[0].start_time > limit
        ):
            self._drop_part_files(self._with_part_files.popleft())
            dropped = True
        return dropped

    def _spill_due(self) -> None:
        """Hand the spill each segment that has left the playlist and whose part files
        are gone (while they are kept, its bytes are in memory anyway), oldest first."""
        while self._unspilled:
            seg = self._unspilled[0]
            if seg.msn >= self._media_sequence:
                return
            if self._with_part_files and self._with_part_files[0].msn <= seg.msn:
                return
            self._unspilled.popleft()
            assert seg.data is not None
            handle = self._spill.keep(seg.msn, seg.data)
            if handle is not None:
                seg.spilled = handle
                seg.data = None
                # Their part files are gone: nothing serves these bytes any more, and
                # only the number of parts is still read.
                for part in seg.parts:
                    part.data = b""

    def _drop_part_files(self, seg: _Segment) -> None:
        for p in seg.parts:
            self._parts.pop(p.index, None)

    def _maybe_free_init(self, init_id: int) -> None:
        if init_id == self._current_init:
            return
        if self._open is not None and self._open.init_id == init_id:
            return
        if any(s.init_id == init_id for s in self._closed):
            return
        self._inits.pop(init_id, None)

    def _changed(self) -> None:
        self._version += 1
        self._snapshot = None
        self._notify()

    def _check(self, key: _WaitKey) -> bool:
        if self._ended:
            return True
        if key[0] == "part":
            return key[1] < self._next_part
        return self.is_satisfied(key[1], key[2])

    def _notify(self) -> None:
        if not self._gates:
            return
        for key in [k for k in self._gates if self._check(k)]:
            gate = self._gates.pop(key)
            if not gate.future.done():
                gate.future.set_result(None)

    def _enter(self, key: _WaitKey) -> Gate | None:
        if self._check(key):
            return None
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = Gate(key, asyncio.get_running_loop().create_future())
        gate.waiting += 1
        return gate

    async def _wait(self, gate: Gate | None) -> None:
        if gate is None:
            return
        try:
            # asyncio.wait leaves the shared future alone when this waiter is cancelled.
            await asyncio.wait((gate.future,))
        finally:
            self.leave(gate)

    def _build_snapshot(self) -> WindowSnapshot:
        listed = [s for s in self._closed if s.msn >= self._media_sequence]
        if self._open is not None and self._open.parts:
            listed.append(self._open)
        tag_limit = PART_TAGS_TD * self._td + _EPS
        segments = []
        for seg in listed:
            show_parts = not seg.closed or self._media_end - seg.start_time <= tag_limit
            parts = (
                tuple(PartInfo(p.index, p.duration, p.independent) for p in seg.parts)
                if show_parts
                else None
            )
            segments.append(
                SegmentInfo(
                    msn=seg.msn,
                    duration=seg.duration,
                    program_date_time=seg.pdt,
                    init_id=seg.init_id,
                    discontinuity=seg.discontinuity,
                    closed=seg.closed,
                    parts=parts,
                )
            )
        pending = None
        if (
            not self._ended
            and self._current_init is not None
            and self._last_init is not None
            and self._current_init != self._last_init
        ):
            pending = self._current_init
        return WindowSnapshot(
            version=self._version,
            target_duration=self._td,
            part_target=self._part_target,
            media_sequence=self._media_sequence,
            discontinuity_sequence=self._discontinuity_sequence,
            segments=tuple(segments),
            next_part=self._next_part,
            pending_init_id=pending,
            ended=self._ended,
            last_msn=self._last_msn,
            last_part=self._last_part,
        )


def _as_utc(value: datetime) -> datetime:
    """Treat naive datetimes as UTC so PROGRAM-DATE-TIME can always end in Z."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
