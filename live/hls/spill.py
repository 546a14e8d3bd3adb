"""Where a window keeps segments that have left its playlist.

A segment that leaves the media playlist must stay requestable for its duration plus
the playlist's (RFC 8216 §6.2.2), but only a player far behind ever asks for it: with
the default window that is half the media a stream holds, kept for almost nobody.
`HlsWindow` hands such a segment to a `SegmentSpill` and asks it again only when one
is requested, so the window stays free of I/O: `MemorySpill` (tests, spilling off)
keeps the bytes where they are, `live.hls.spool.FileSpill` moves them to local disk.
"""

from __future__ import annotations

from typing import Protocol

Chunks = tuple[bytes, ...]


class SegmentSpill(Protocol):
    """Keeps the bytes of one window's segments that only late players still ask for.
    Called on the event loop thread; every call must return at once."""

    def keep(self, key: int, chunks: Chunks) -> object | None:
        """Take segment `key` (its MSN; each kept once); returns the handle to read or
        drop it by, or None when it could not be kept (the caller keeps the bytes)."""
        ...

    def read(self, handle: object) -> Chunks | None:
        """The segment's bytes, exactly as they were kept; None if they are lost."""
        ...

    def drop(self, handle: object) -> None:
        """The segment is no longer requestable: free what holds it."""
        ...

    def close(self) -> None:
        """The window is gone: free everything still kept."""
        ...


class MemorySpill:
    """Keeps segments where they are, in memory: the handle is the bytes themselves."""

    def keep(self, key: int, chunks: Chunks) -> object | None:
        return chunks

    def read(self, handle: object) -> Chunks | None:
        assert isinstance(handle, tuple)
        return handle

    def drop(self, handle: object) -> None:
        pass

    def close(self) -> None:
        pass
