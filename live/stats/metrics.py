"""Prometheus metrics at /metrics.

Gauges are read from the live objects when scraped (nothing to keep in sync);
counters that happen per request are plain integer increments, cheap enough to
sit on the playback path.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from live.broadcast.manager import StreamManager
from live.hls import HlsRegistry
from live.hls.paths import LiveTarget
from live.hls.request import HlsRequest
from live.limits import LIMITS, LimitHits
from live.stats.running_total import RunningTotal

if TYPE_CHECKING:
    from live.broadcast.health import IngestHealth
    from live.events.dispatcher import WebhookDispatcher
    from live.packaging.packager import HlsPackager
    from live.stats.viewers import ViewerTracker

# Request latency buckets: API calls take milliseconds, blocking playlist reloads up
# to a few target durations.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


_ROUTES = ("api", "hls", "other")


class Metrics:
    def __init__(self, limit_hits: LimitHits | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.limit_hits = limit_hits or LimitHits()
        self._manager: StreamManager | None = None
        self._hls: HlsRegistry | None = None
        self.hls_requests: Counter[str] = Counter()
        self.hls_bytes_out = 0
        # Per-session figures summed so that the counters survive the sessions.
        self._bytes_in_total: RunningTotal[IngestHealth] = RunningTotal(lambda h: h.bytes_in)
        self._parts_total: RunningTotal[HlsPackager] = RunningTotal(lambda p: p.parts_produced)
        self._viewers: ViewerTracker | None = None
        self._dispatcher: WebhookDispatcher | None = None
        # The SRT ingest's counters (malformed datagrams, lost/recovered packets...).
        self.srt_stats: Callable[[], dict[str, int]] | None = None
        self.registry.register(self)
        self.latency = Histogram(
            "live_http_request_duration_seconds",
            "HTTP request latency by kind of route (api, hls, other)",
            ["route"],
            registry=self.registry,
            buckets=_LATENCY_BUCKETS,
        )
        # One child per route, looked up once: labels() takes a lock and builds a key.
        self._latency_by_route = {route: self.latency.labels(route) for route in _ROUTES}

    def bind(
        self,
        manager: StreamManager,
        hls: HlsRegistry,
        *,
        viewers: ViewerTracker | None = None,
        dispatcher: WebhookDispatcher | None = None,
    ) -> None:
        self._manager = manager
        self._hls = hls
        self._viewers = viewers
        self._dispatcher = dispatcher

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Root-app middleware: time every request that goes through the application.

        `/live` requests for streams live on this node are answered before it (by the
        front of the port, `live/hls/front.py`) and counted by kind in
        `live_hls_requests` instead."""
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            # The raw target, not `request.path`: that one is decoded anew for every
            # distinct URL, and every viewer's URLs are distinct (its player id).
            path = request.raw_path
            route = "other"
            if path.startswith("/v1/"):
                route = "api"
            elif path.startswith("/live/"):
                route = "hls"
            self._latency_by_route[route].observe(time.perf_counter() - started)

    def on_hls_request(self, request: HlsRequest, target: LiveTarget, size: int) -> None:
        self.hls_requests[target.kind] += 1
        self.hls_bytes_out += size

    @staticmethod
    def _ladder_shed(manager: StreamManager | None) -> GaugeMetricFamily:
        shed = GaugeMetricFamily(
            "live_ladder_renditions_shed",
            "Ladder renditions dropped because the codecs could not keep up (live streams)",
        )
        count = 0
        for broadcast in manager.broadcasts.values() if manager is not None else ():
            if broadcast.packager is not None and broadcast.packager.ladder is not None:
                count += len(broadcast.packager.ladder.shed)
        shed.add_metric([], count)
        return shed

    def collect(self):
        manager = self._manager
        live = GaugeMetricFamily("live_streams", "Streams with a publisher on this node")
        publishers = GaugeMetricFamily(
            "live_publishers", "Publishers by ingest protocol", labels=["protocol"]
        )
        refused = CounterMetricFamily(
            "live_publish_refused", "Refused publish attempts by reason", labels=["reason"]
        )
        bytes_in = CounterMetricFamily("live_ingest_bytes", "Media bytes received")
        parts = CounterMetricFamily("live_hls_parts", "LL-HLS parts produced")
        requests = CounterMetricFamily("live_hls_requests", "HLS requests", labels=["kind"])
        bytes_out = CounterMetricFamily("live_hls_bytes_out", "HLS bytes sent")
        viewers = GaugeMetricFamily("live_viewers", "Current viewers of live streams")
        waiting = GaugeMetricFamily(
            "live_hls_blocking_requests", "Blocking playlist and part requests waiting"
        )
        throttled = CounterMetricFamily(
            "live_publish_auth_throttled",
            "Attempts from addresses that sent wrong stream keys, passphrases or API "
            "keys, slowed or refused, by protocol (api: the REST API)",
            labels=["protocol", "action"],
        )
        deliveries = CounterMetricFamily(
            "live_webhook_deliveries", "Webhook delivery attempts by outcome", labels=["outcome"]
        )
        in_flight = GaugeMetricFamily("live_webhook_deliveries_in_flight", "Deliveries being sent")
        if manager is not None:
            live.add_metric([], len(manager.broadcasts))
            by_protocol: Counter[str] = Counter()
            healths, packagers = [], []
            for broadcast in manager.broadcasts.values():
                if broadcast.publisher is not None:
                    by_protocol[broadcast.publisher.protocol] += 1
                healths.append(broadcast.health)
                if broadcast.packager is not None:
                    packagers.append(broadcast.packager)
            for protocol in ("rtmp", "rtmps", "srt", "whip"):
                publishers.add_metric([protocol], by_protocol[protocol])
            for reason, count in manager.refusals.items():
                refused.add_metric([reason], count)
            for protocol in ("rtmp", "rtmps", "srt", "whip", "api"):
                for action in ("slowed", "refused"):
                    throttled.add_metric([protocol, action], manager.throttled[(protocol, action)])
            bytes_in.add_metric([], self._bytes_in_total.update(healths))
            parts.add_metric([], self._parts_total.update(packagers))
            total_waiting = 0
            for broadcast in manager.broadcasts.values():
                stream = broadcast.packager.stream if broadcast.packager is not None else None
                if stream is not None:
                    total_waiting += sum(r.window.waiter_count for r in stream.renditions)
            waiting.add_metric([], total_waiting)
        viewers.add_metric([], self._viewers.current_viewers() if self._viewers else 0)
        dispatcher = self._dispatcher
        for outcome in ("delivered", "failed_attempt", "gave_up"):
            deliveries.add_metric([outcome], dispatcher.outcomes[outcome] if dispatcher else 0)
        in_flight.add_metric([], dispatcher.in_flight if dispatcher else 0)
        for kind, count in sorted(self.hls_requests.items()):
            requests.add_metric([kind], count)
        bytes_out.add_metric([], self.hls_bytes_out)
        yield from (live, publishers, refused, throttled, bytes_in, parts, requests, bytes_out)
        yield from (viewers, waiting, deliveries, in_flight)
        yield self._ladder_shed(manager)
        yield self._limit_refusals()
        yield _task_count()
        if self.srt_stats is not None:
            srt = CounterMetricFamily("live_srt", "SRT ingest counters", labels=["kind"])
            for kind, value in sorted(self.srt_stats().items()):
                srt.add_metric([kind], value)
            yield srt

    def _limit_refusals(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "live_limit_refusals",
            "Clients refused or dropped by a limit, by the setting that sets it",
            labels=["limit"],
        )
        counts = dict.fromkeys(LIMITS, 0) | self.limit_hits.counts
        for limit, count in sorted(counts.items()):
            family.add_metric([limit], count)
        return family


def _task_count() -> GaugeMetricFamily:
    """The event loop's tasks: a count that keeps growing while the streams and
    viewers do not is a leak (what the load soak watches). Scraped on the loop."""
    tasks = GaugeMetricFamily("live_asyncio_tasks", "Tasks on the server's event loop")
    try:
        tasks.add_metric([], len(asyncio.all_tasks()))
    except RuntimeError:  # collected off the loop (a test's registry read)
        tasks.add_metric([], 0)
    return tasks


def setup_metrics_route(app: web.Application, metrics: Metrics) -> None:
    async def handle(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(
            body=body,
            content_type="text/plain",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    app.router.add_get("/metrics", handle)
