"""Prometheus metrics at /metrics.

Gauges are read from the live objects when scraped (nothing to keep in sync);
counters that happen per request are plain integer increments, cheap enough to
sit on the playback path.
"""

from __future__ import annotations

from collections import Counter

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from live.broadcast.manager import StreamManager
from live.hls import HlsRegistry


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._manager: StreamManager | None = None
        self._hls: HlsRegistry | None = None
        self.hls_requests: Counter[str] = Counter()
        self.hls_bytes_out = 0
        self.registry.register(self)

    def bind(self, manager: StreamManager, hls: HlsRegistry) -> None:
        self._manager = manager
        self._hls = hls

    def on_hls_request(self, request: web.Request, playback_id: str, kind: str, size: int) -> None:
        self.hls_requests[kind] += 1
        self.hls_bytes_out += size

    def collect(self):
        manager = self._manager
        live = GaugeMetricFamily("live_streams", "Streams with a publisher on this node")
        publishers = GaugeMetricFamily(
            "live_publishers", "Publishers by ingest protocol", labels=["protocol"]
        )
        refused = CounterMetricFamily(
            "live_publish_refused", "Refused publish attempts by reason", labels=["reason"]
        )
        bytes_in = CounterMetricFamily("live_ingest_bytes", "Media bytes received (live sessions)")
        parts = CounterMetricFamily("live_hls_parts", "LL-HLS parts produced (live sessions)")
        requests = CounterMetricFamily("live_hls_requests", "HLS requests", labels=["kind"])
        bytes_out = CounterMetricFamily("live_hls_bytes_out", "HLS bytes sent")
        if manager is not None:
            live.add_metric([], len(manager.broadcasts))
            by_protocol: Counter[str] = Counter()
            total_in = total_parts = 0
            for broadcast in manager.broadcasts.values():
                if broadcast.publisher is not None:
                    by_protocol[broadcast.publisher.protocol] += 1
                total_in += broadcast.health.bytes_in
                if broadcast.packager is not None:
                    total_parts += broadcast.packager.parts_produced
            for protocol in ("rtmp", "rtmps", "srt", "whip"):
                publishers.add_metric([protocol], by_protocol[protocol])
            for reason, count in manager.refusals.items():
                refused.add_metric([reason], count)
            bytes_in.add_metric([], total_in)
            parts.add_metric([], total_parts)
        for kind, count in sorted(self.hls_requests.items()):
            requests.add_metric([kind], count)
        bytes_out.add_metric([], self.hls_bytes_out)
        yield from (live, publishers, refused, bytes_in, parts, requests, bytes_out)


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
