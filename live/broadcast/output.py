"""What a live stream produces: its HLS packager, ABR ladder and consumers.

Split from the session's life (`manager.py`) so the rules of who may publish can be
tested without PyAV, and so the packaging set-up reads in one place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from live.broadcast.broadcast import Broadcast
from live.hls import HlsRegistry
from live.hls.spool import HlsSpool
from live.ladder.ladder import Ladder
from live.ladder.plan import plan_ladder
from live.packaging.packager import HlsPackager, PackagingSettings

log = logging.getLogger(__name__)

# A consumer started with each Broadcast, after its packager: it subscribes to the
# hub or taps `broadcast.packager` itself (the recorder stores the packager's parts)
# and runs until its input ends.
ConsumerFactory = Callable[[Broadcast], Coroutine[Any, Any, None] | None]


class StreamOutputs:
    """Starts and retires the outputs of each Broadcast of this node."""

    def __init__(
        self,
        hls: HlsRegistry,
        packaging: PackagingSettings,
        *,
        ladder_rungs: tuple[tuple[int, int], ...],
        ladder_preset: str,
        ended_playlist_linger_s: float,
        consumers: list[ConsumerFactory] | None = None,
        spool: HlsSpool | None = None,
    ) -> None:
        """`spool`: where windows keep segments that have left their playlist (None:
        in memory)."""
        self.hls = hls
        self.spool = spool
        self.packaging = packaging
        self.ladder_rungs = ladder_rungs
        self.ladder_preset = ladder_preset
        self.ended_playlist_linger_s = ended_playlist_linger_s
        self.consumers: list[ConsumerFactory] = list(consumers or [])

    def start(self, broadcast: Broadcast, on_part: Callable[[], None]) -> None:
        """The packager (and ladder) first, then every consumer, each as a task of
        the broadcast."""
        livestream = broadcast.livestream
        packaging = PackagingSettings(
            part_target=self.packaging.part_target,
            segment_target=self.packaging.segment_target,
            window_segments=self.packaging.window_segments,
            latency_mode=livestream.latency_mode,
        )
        packager = HlsPackager(
            broadcast.hub.subscribe("hls", max_packets=3000),
            self.hls,
            livestream.playback_id,
            packaging,
            on_warning=broadcast.add_warning,
            on_part=on_part,
            ladder=self._ladder_factory(broadcast) if livestream.transcode == "ladder" else None,
            spill=self.spool.spill if self.spool is not None else None,
        )
        broadcast.packager = packager
        broadcast.tasks.append(asyncio.create_task(packager.run(), name=f"hls-{livestream.id}"))
        for factory in self.consumers:
            coroutine = factory(broadcast)
            if coroutine is not None:
                broadcast.tasks.append(asyncio.create_task(coroutine))

    def _ladder_factory(self, broadcast: Broadcast) -> Callable[[HlsPackager], Ladder | None]:
        """Lower renditions for a `transcode: ladder` stream, planned from the source
        video once the packager knows it."""

        def make(packager: HlsPackager) -> Ladder | None:
            video = next((t for t in packager.tracks if t.kind == "video"), None)
            if video is None or packager.window is None:
                return None
            rungs = plan_ladder(video.width, video.height, list(self.ladder_rungs))
            if not rungs:
                return None
            log.info(
                "stream %s: ladder %s",
                broadcast.livestream.id,
                ", ".join(f"{r.name} {r.bitrate // 1000} kbps" for r in rungs),
            )
            return Ladder(
                rungs,
                source_window=packager.window,
                stream=lambda: packager.stream,
                frame_rate=lambda: packager.rendition.frame_rate if packager.rendition else None,
                on_warning=broadcast.add_warning,
                preset=self.ladder_preset,
                spill=self.spool.spill if self.spool is not None else None,
            )

        return make

    async def retire(self, broadcast: Broadcast) -> None:
        """Let the consumers finish (ENDLIST), then take the playlist down later and
        free what its windows hold (their spool files too)."""
        await asyncio.gather(*broadcast.tasks, return_exceptions=True)
        await asyncio.sleep(self.ended_playlist_linger_s)
        packager = broadcast.packager
        if packager is not None and packager.stream is not None:
            current = self.hls.get(broadcast.livestream.playback_id)
            if current is packager.stream:
                self.hls.unregister(broadcast.livestream.playback_id)
        if packager is not None:
            packager.close_windows()
