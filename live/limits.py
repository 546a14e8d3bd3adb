"""Refusals by limit: counted for /metrics, logged without flooding the log.

Every component that enforces a limit (the manager, the ingests, the HLS handlers,
the viewer count) is given the node's one `LimitHits` when it is built. A limit is
named by its setting (`max_publishers`), which is also its /metrics label, so an
operator reading either knows what to raise. A flood of refusals (a viewer storm, a
slowloris attack) logs one line per limit every `log_every_s`, saying how many were
refused since the last one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("live.limits")

# Every limit that refuses or drops a client, by its setting's name.
LIMITS = (
    "max_publishers",
    "max_publisher_bitrate_kbps",
    "max_viewers_per_stream",
    "max_viewers",
    "rtmp_max_message_bytes",
    "rtmp_max_chunk_size",
    "rtmp_handshake_timeout_s",
    "http_body_timeout_s",
    "srt_max_handshakes",
    "whip_connect_timeout_s",
    "hls_max_blocking_per_address",
)


class LimitHits:
    def __init__(
        self, *, log_every_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.counts: Counter[str] = Counter()
        self._log_every_s = log_every_s
        self._clock = clock
        self._logged: dict[str, tuple[float, int]] = {}  # limit: (when, count then)

    def hit(self, limit: str, message: str, *, level: int = logging.WARNING) -> None:
        """Count one refusal by `limit`; log `message` unless that limit was logged
        within `log_every_s`."""
        self.counts[limit] += 1
        now = self._clock()
        logged = self._logged.get(limit)
        if logged is not None and now - logged[0] < self._log_every_s:
            return
        since = self.counts[limit] - (logged[1] if logged else 0)
        suffix = f" ({since} refused by {limit} since the last report)" if since > 1 else ""
        log.log(level, "%s [%s]%s", message, limit, suffix)
        self._logged[limit] = (now, self.counts[limit])
