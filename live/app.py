"""Wiring: one process with the store, the live streams, the ingest servers and HTTP."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from live.api import build_api, request_id_middleware, request_id_on_prepare
from live.api.assets import ASSET_FILES, UploadSettings, asset_json
from live.api.cors import parse_origins
from live.api.ratelimit import Limiter, RateLimiter
from live.api.ratelimit_redis import RedisRateLimiter
from live.api.to_the_end import ChangesUnderWay
from live.attempts import AttemptGuard
from live.broadcast.bitrate import BitrateLimit
from live.broadcast.manager import SessionRules, StreamManager
from live.broadcast.output import StreamOutputs
from live.broadcast.recovery import close_orphans
from live.cluster.control import ClusterControl
from live.cluster.node import ClusterMembership, default_node_url, new_node_id
from live.cluster.playback import ClusterPlayback, OwnerLookup
from live.config import Settings, guard_settings, split_address, storage_url
from live.control import LiveControl
from live.events.ban_expiry import BanExpiry, ban_waker
from live.events.dispatcher import DispatchSettings, RetryPolicy, WebhookDispatcher
from live.events.outbox import WebhookOutbox
from live.hls import HlsLimits, HlsRegistry, setup_hls_routes
from live.hls.front import FrontRunner
from live.hls.handlers import HlsHandlers
from live.hls.paths import LiveTarget
from live.hls.request import HlsRequest
from live.hls.spool import HlsSpool
from live.hops import TrustedHops, parse_networks
from live.ingest.rtmp import RtmpIngestServer
from live.ingest.srt import SrtIngestServer
from live.ingest.whip import WhipServer, whip_settings
from live.ladder.plan import parse_rungs
from live.limits import LimitHits
from live.packaging.packager import PackagingSettings
from live.recording.service import RecordingService
from live.recording.vod_routes import setup_vod_routes
from live.stats.metrics import Metrics, setup_metrics_route
from live.stats.viewers import ViewerTracker
from live.storage import Storage, open_storage
from live.store.base import Store
from live.store.factory import open_store
from live.store.models import Asset, Session
from live.thumbnails.poster import PosterService
from live.uploads.importer import ImportLeases
from live.uploads.imports import ImportSettings
from live.uploads.intake import UploadIntake
from live.uploads.receiver import UploadReceiver
from live.uploads.sweeper import UploadSweeper
from live.urls import PublicUrls
from live.vod.deletion import AssetDeletion
from live.vod.jobs import SINGLE_NODE_POLL_S, JobSettings, VodJobs, default_workers
from live.vod.pipeline import PipelineSettings
from live.web import WebSettings, setup_web_routes, stream_status

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StartupInfo:
    http_port: int
    rtmp_port: int
    rtmps_port: int | None
    urls: PublicUrls
    created_api_key: str | None
    srt_port: int = 0
    https_port: int | None = None


class LiveServer:
    """Everything `live serve` runs, startable and stoppable from tests too."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None
        self.manager: StreamManager | None = None
        self.hls = HlsRegistry()
        self.limit_hits = LimitHits()  # refusals by limit, for /metrics
        self.metrics = Metrics(self.limit_hits)
        self.hops = TrustedHops(parse_networks(settings.trusted_proxies))
        self.viewers = ViewerTracker(
            self.hls, default_target_duration=settings.segment_target_s,
            max_viewers_per_stream=settings.max_viewers_per_stream,
            max_viewers=settings.max_viewers, limit_hits=self.limit_hits, hops=self.hops,
        )  # fmt: skip
        self.dispatcher: WebhookDispatcher | None = None
        self.outbox: WebhookOutbox | None = None
        self.api_changes = ChangesUnderWay()
        self.recordings: RecordingService | None = None
        self.storage: Storage | None = None
        self.ban_expiry: BanExpiry | None = None
        self._runner: web.AppRunner | None = None
        self._ingest: list[RtmpIngestServer | SrtIngestServer] = []
        self.whip: WhipServer | None = None
        self.urls: PublicUrls | None = None
        self.cluster: ClusterMembership | None = None
        self.node_id = ""  # set by start: the cluster node's id, or a fresh one
        self.cluster_control: ClusterControl | None = None
        self.playback: ClusterPlayback | None = None
        self.control: LiveControl | None = None
        self.vod_jobs: VodJobs | None = None
        self.intake: UploadIntake | None = None
        self.uploads: UploadReceiver | None = None
        self.upload_sweeper: UploadSweeper | None = None
        self.spool: HlsSpool | None = None

    async def start(self) -> StartupInfo:
        settings = self.settings
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        # HTTP is bound first: a cluster node announces its URL, which needs the port
        # (0 picks any free one).
        http_host, http_port = split_address(settings.http, "http")
        http_socket = _bind_tcp(http_host, http_port)
        http_port = http_socket.getsockname()[1]
        if settings.redis:
            self.cluster = ClusterMembership.connect(
                settings.redis, settings.node_url or default_node_url(http_host, http_port)
            )
        # one id for this process: the VOD jobs and imports it holds are leased to it
        self.node_id = self.cluster.node_id if self.cluster else new_node_id()
        self.store = await open_store(settings.redis or str(data_dir / "live.db"))
        self.spool = HlsSpool.open(data_dir) if settings.hls_spool else None
        created_key = await self._ensure_admin_key()
        self.dispatcher = WebhookDispatcher(
            self.store,
            policy=RetryPolicy(
                base_s=settings.webhook_backoff_base_s,
                max_s=settings.webhook_backoff_max_s,
                retry_for_s=settings.webhook_retry_for_s,
            ),
            settings=DispatchSettings(timeout_s=settings.webhook_timeout_s),
        )
        # The public URLs are known once every ingest is bound (below); events need
        # them only for the URLs inside their payloads.
        ban_wake = asyncio.Event()
        self.outbox = WebhookOutbox(
            self.store,
            PublicUrls("", "", ""),
            on_enqueued=self.dispatcher.wake,
            on_event=ban_waker(ban_wake),
        )
        url, deprecation = storage_url(self.settings)
        if deprecation:
            log.warning(deprecation)
        self.storage = open_storage(url, s3_endpoint=self.settings.s3_endpoint or None)
        self.recordings = RecordingService(
            self.store,
            self.storage,
            retention_days=self.settings.recording_retention_days,
            listeners=[self._asset_event],
            journal_dir=data_dir / "journal",  # local disk even with S3 storage
        )
        self._start_intake()
        self.manager = StreamManager(
            self.store,
            StreamOutputs(
                self.hls,
                PackagingSettings(
                    part_target=settings.part_target_s,
                    segment_target=settings.segment_target_s,
                    window_segments=settings.window_segments,
                ),
                ladder_rungs=tuple(parse_rungs(settings.ladder_rungs)),
                ladder_preset=settings.ladder_preset,
                ended_playlist_linger_s=settings.ended_playlist_linger_s,
                consumers=[self.recordings.consumer],
                spool=self.spool,
            ),
            SessionRules(
                publisher_takeover=settings.publisher_takeover,  # type: ignore[arg-type]
                stale_after_s=settings.stale_publisher_s,
                segment_target=settings.segment_target_s,
                # In a cluster a command may be lost on its way to this node: the store
                # is the truth, read each second.
                audit_every_s=1.0 if self.cluster else None,
                max_publishers=settings.max_publishers,
                bitrate_limit=BitrateLimit(
                    settings.max_publisher_bitrate_kbps, settings.publisher_bitrate_window_s
                )
                if settings.max_publisher_bitrate_kbps
                else None,
            ),
            limit_hits=self.limit_hits,
            leases=self.cluster.leases if self.cluster else None,
            events=self.outbox,
            viewer_totals=self.viewers.session_totals,
            live_viewer_totals=self.viewers.live_totals,
            on_orphan=self._finish_orphan,
            guard=AttemptGuard(guard_settings(settings)),
        )
        self.control: LiveControl = self.manager
        if self.cluster is None:
            # A restart: close what the previous process left open, then finalise its
            # recordings.
            await close_orphans(self.store, self.manager.leases)
            await self.recordings.recover()
        else:
            # Peers may be live: only what a dead node left is closed, by whichever
            # node sees it first, now and every few seconds. This node's own part
            # journals are stored first, so whoever finalises its recordings has them.
            await self.recordings.replay_journals()
            await self.cluster.start(on_disconnect=self.manager.disconnect)
            assert self.cluster.bus is not None
            self.cluster_control = ClusterControl(
                self.manager,
                self.cluster.bus,
                self.store,
                self.cluster.leases,
                viewers=self.viewers if settings.viewer_stats else None,
                on_orphan=self._finish_orphan,
            )
            self.cluster_control.start()
            self.control = self.cluster_control
        self.recordings.start_retention()
        self.vod_jobs = VodJobs(
            self.store,
            self.storage,
            node_id=self.node_id,
            pipeline=PipelineSettings(
                rungs=parse_rungs(settings.ladder_rungs),
                preset=settings.ladder_preset,
                priority=settings.vod_priority,
            ),
            announce=self._asset_event,
            settings=JobSettings(
                workers=settings.vod_workers or default_workers(),
                poll_s=JobSettings().poll_s if self.cluster else SINGLE_NODE_POLL_S,
            ),
            single_node=self.cluster is None,
        )
        self.metrics.bind(self.manager, self.hls, viewers=self.viewers, dispatcher=self.dispatcher)
        self.dispatcher.start()
        if settings.viewer_stats:
            self.viewers.start()
        self.ban_expiry = BanExpiry(self.store, self.outbox, wake=ban_wake)
        self.ban_expiry.start()

        rtmp_host, rtmp_port = split_address(settings.rtmp, "rtmp")
        rtmp = RtmpIngestServer(
            self.manager,
            rtmp_host,
            rtmp_port,
            **_rtmp_limits(settings, self.limit_hits),
        )
        rtmp_port = await rtmp.start()
        self._ingest.append(rtmp)
        rtmps_port = None
        if settings.tls_cert:
            context = _server_tls(settings)
            rtmps_host, rtmps_port = split_address(settings.rtmps, "rtmps")
            rtmps = RtmpIngestServer(
                self.manager,
                rtmps_host,
                rtmps_port,
                ssl_context=context,
                **_rtmp_limits(settings, self.limit_hits),
            )
            rtmps_port = await rtmps.start()
            self._ingest.append(rtmps)
        srt_host, srt_port = split_address(settings.srt, "srt")
        srt = SrtIngestServer(
            self.manager, srt_host, srt_port, latency_s=settings.srt_latency_ms / 1000,
            max_handshakes=settings.srt_max_handshakes, limit_hits=self.limit_hits,
        )  # fmt: skip
        srt_port = await srt.start()
        self._ingest.append(srt)
        self.metrics.srt_stats = srt.stats

        self.urls = _public_urls(settings, http_port, rtmp_port, rtmps_port, srt_port)
        self.outbox.urls = self.urls
        # the imports a dead node or the previous process left, claimed (never one a
        # live peer is fetching)
        await self.intake.start()
        self.upload_sweeper.start()
        http_app, hls_handlers = self._build_http_app()
        # aiohttp closes a connection whose next request's headers have not all come
        # within keepalive_timeout of opening or of its last response: a slowloris
        # client is dropped, and so is an idle keep-alive.
        self._runner = FrontRunner(
            http_app, service=hls_handlers, access_log=None, handler_cancellation=True,
            keepalive_timeout=settings.http_header_timeout_s,
        )  # fmt: skip
        await self._runner.setup()
        await web.SockSite(self._runner, http_socket).start()
        https_port = None
        if settings.https:  # the same app over TLS; the plain listener is unchanged
            https_host, https_port = split_address(settings.https, "https")
            https_socket = _bind_tcp(https_host, https_port)
            https_port = https_socket.getsockname()[1]
            await web.SockSite(
                self._runner, https_socket, ssl_context=_server_tls(settings)
            ).start()
        await self.vod_jobs.start()  # after the URLs, which its events carry
        log.info(
            "listening: http %d%s, rtmp %d%s", http_port,
            f", https {https_port}" if https_port is not None else "", rtmp_port,
            f", rtmps {rtmps_port}" if rtmps_port is not None else "",
        )  # fmt: skip
        return StartupInfo(
            http_port,
            rtmp_port,
            rtmps_port,
            self.urls,
            created_key,
            srt_port=srt_port,
            https_port=https_port,
        )

    async def _finish_orphan(self, session: Session) -> None:
        """A dead node's session was closed here: finalise its recording."""
        assert self.store is not None and self.recordings is not None
        if session.asset_id is not None:
            asset = await self.store.get_asset(session.asset_id)
            if asset is not None and asset.status in ("recording", "processing"):
                self.recordings.finalise_later(asset)

    def _start_intake(self) -> None:
        """Uploads and imports, up to an asset's file complete in storage."""
        assert self.store is not None and self.storage is not None
        settings = self.settings
        self.intake = UploadIntake(
            self.store,
            self.storage,
            max_upload_bytes=settings.max_upload_bytes,
            imports=ImportSettings(
                max_bytes=settings.max_upload_bytes,
                timeout_s=settings.import_timeout_s,
                connect_timeout_s=settings.import_connect_timeout_s,
                max_redirects=settings.import_max_redirects,
            ),
            on_source_ready=self._source_ready,
            announce=self._asset_event,
            node_id=self.node_id,
            # a single node has no one to take over from: it never looks at the queue
            leases=ImportLeases() if self.cluster else ImportLeases(poll_s=None),
        )
        self.uploads = UploadReceiver(
            self.store,
            self.storage,
            max_upload_bytes=settings.max_upload_bytes,
            on_received=self.intake.source_received,
        )
        self.upload_sweeper = UploadSweeper(self.uploads, self.intake)

    async def _source_ready(self, asset: Asset) -> None:
        """An upload's or import's file is complete in storage and the asset is
        `pending`: the VOD job queue takes it."""
        assert self.vod_jobs is not None
        await self.vod_jobs.submit(asset)

    async def _asset_event(self, event: str, asset: Asset) -> None:
        if self.outbox is not None and self.urls is not None:
            await self.outbox.emit_asset(event, asset_json(asset, self.urls))

    def _build_http_app(self) -> tuple[web.Application, HlsHandlers]:
        assert self.store is not None and self.manager is not None and self.urls is not None
        assert self.recordings is not None
        middlewares = [request_id_middleware, self.metrics.middleware]
        if self.cluster is not None:
            self.playback = ClusterPlayback(
                self.hls,
                OwnerLookup(self.store, self.cluster.leases, self.cluster.nodes),
                hops=self.hops,
                mode=self.settings.cluster_playback,
            )
            middlewares.append(self.playback.middleware)
        app = web.Application(middlewares=middlewares, client_max_size=2 * 1024**2)
        app.on_response_prepare.append(request_id_on_prepare)
        app.router.add_get("/healthz", self._healthz)
        setup_metrics_route(app, self.metrics)
        PosterService(self.manager.latest_keyframe).setup_route(app)  # before /live/ fallback
        hls_limits = HlsLimits(
            max_blocking_per_address=self.settings.hls_max_blocking_per_address,
            client_address=self.hops.client_address,
            hits=self.limit_hits,
        )
        if self.settings.viewer_stats:
            hls_handlers = setup_hls_routes(
                app,
                self.hls,
                on_request=self._on_hls_request,
                start_player=self.viewers.start_player,
                admit=self.viewers.admit,
                limits=hls_limits,
            )
        else:  # the same URIs for every viewer; only the metrics see requests
            hls_handlers = setup_hls_routes(
                app, self.hls, on_request=self.metrics.on_hls_request, limits=hls_limits
            )
        limiter: Limiter | None = None
        per_min, burst = self.settings.api_rate_limit_per_min, self.settings.api_rate_limit_burst
        if per_min > 0 and self.cluster is not None:  # one budget per key, cluster-wide
            limiter = RedisRateLimiter(self.cluster.redis, per_min, burst)
        elif per_min > 0:
            limiter = RateLimiter(per_min, burst)
        api = build_api(
            store=self.store,
            control=self.control,
            urls=self.urls,
            events=self.outbox,
            viewers=self.cluster_control or self.viewers,
            rate_limiter=limiter,
            cors_origins=parse_origins(self.settings.cors_origins),
            max_body_bytes=self.settings.api_max_body_bytes,
            body_timeout_s=self.settings.http_body_timeout_s,
            limit_hits=self.limit_hits,
            asset_events=self._asset_event,
            asset_intake=self.intake,
            uploads=self.uploads,
            upload_settings=UploadSettings(
                max_upload_bytes=self.settings.max_upload_bytes,
                upload_expiry_s=self.settings.upload_expiry_s,
            ),
            # Its own count: wrong API keys do not stop an address from publishing.
            key_guard=AttemptGuard(guard_settings(self.settings)),
            throttled=self.manager.throttled,
            changes=self.api_changes,
        )
        assert self.vod_jobs is not None
        api[ASSET_FILES] = AssetDeletion(self.recordings, self.vod_jobs)
        setup_vod_routes(
            app,
            self.store,
            self.recordings.storage,
            delivery=self.settings.vod_delivery,  # type: ignore[arg-type]
            url_expiry_s=self.settings.vod_url_expiry_s,
        )
        self.whip = WhipServer(self.manager, whip_settings(self.settings), self.limit_hits)
        self.whip.setup_routes(app)  # POST /whip, DELETE/PATCH/OPTIONS /whip/{session}
        app.add_subapp("/v1", api)
        setup_web_routes(app, WebSettings(js_url=self.settings.web_js_url), self._stream_status)
        return app, hls_handlers

    def _stream_status(self, playback_id: str) -> dict:
        return stream_status(self.hls, self.viewers.current_viewers, playback_id)

    def _on_hls_request(self, request: HlsRequest, target: LiveTarget, size: int) -> None:
        self.metrics.on_hls_request(request, target, size)
        self.viewers.on_request(request, target, size)

    async def _healthz(self, request: web.Request) -> web.Response:
        """Which node answered, and whether what it depends on answers (503 if not)."""
        live_streams = len(self.manager.broadcasts) if self.manager else 0
        body: dict[str, object] = {"status": "ok", "live_streams": live_streams}
        checks: dict[str, bool] = {"storage": await self._storage_answers()}
        if self.cluster is not None:
            body["node"] = {"id": self.cluster.node_id, "url": self.cluster.nodes.url}
            checks["redis"] = await self.cluster.reachable()
        for name, answers in checks.items():
            body[name] = "ok" if answers else "unreachable"
        if not all(checks.values()):
            body["status"] = "unavailable"
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def _storage_answers(self) -> bool:
        """A read of one key that need not exist: any answer, found or not, will do."""
        if self.storage is None:
            return False
        try:
            await asyncio.wait_for(self.storage.exists("healthz"), 3.0)
            return True
        except Exception:
            return False

    async def _ensure_admin_key(self) -> str | None:
        assert self.store is not None
        if self.settings.api_key:
            await self.store.ensure_api_key(self.settings.api_key, "admin (configured)", "admin")
            return None
        if await self.store.count_api_keys() == 0:
            _, plaintext = await self.store.create_api_key("admin (first start)", "admin")
            return plaintext
        return None

    async def stop(self) -> None:
        """End every session cleanly (server_shutdown), then close everything."""
        if self.ban_expiry is not None:
            await self.ban_expiry.stop()
        if self.manager is not None:
            await self.manager.shutdown()
        if self.whip is not None:  # peer connections and codec threads of WHIP sessions
            await self.whip.close()
        await self.api_changes.wait()  # what the API began (deletions...) ends first
        if self.vod_jobs is not None:  # jobs under way go back to the queue, to resume
            await self.vod_jobs.close()
        if self.upload_sweeper is not None:
            await self.upload_sweeper.stop()
        if self.intake is not None:  # imports stop, back to the queue for another node
            await self.intake.close()
        if self.recordings is not None:  # SIGTERM finalises every recording first
            await self.recordings.close()
        if self.storage is not None:
            await self.storage.close()
        if self.dispatcher is not None:  # after the manager's last events are written
            await self.dispatcher.stop()
        if self.cluster_control is not None:
            await self.cluster_control.close()
        if self.playback is not None:
            await self.playback.close()
        await self.viewers.stop()
        for server in self._ingest:
            await server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.spool is not None:  # nothing serves what is left in it now
            self.spool.clear()
        if self.store is not None:
            await self.store.close()
        if self.cluster is not None:
            await self.cluster.close()


def _rtmp_limits(settings: Settings, limit_hits: LimitHits) -> dict[str, Any]:
    """What RTMP and RTMPS listeners share: their timeouts, limits and read pacing."""
    return {
        "idle_timeout_s": settings.rtmp_idle_timeout_s,
        "handshake_timeout_s": settings.rtmp_handshake_timeout_s,
        "read_coalesce_s": settings.rtmp_read_coalesce_ms / 1000,
        "max_message_bytes": settings.rtmp_max_message_bytes,
        "max_chunk_size": settings.rtmp_max_chunk_size,
        "limit_hits": limit_hits,
    }


def _server_tls(settings: Settings) -> ssl.SSLContext:
    """The TLS side of RTMPS and HTTPS: the configured certificate chain and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def _bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def _public_urls(
    settings: Settings,
    http_port: int,
    rtmp_port: int,
    rtmps_port: int | None,
    srt_port: int | None = None,
) -> PublicUrls:
    if srt_port is None:
        srt_port = split_address(settings.srt, "srt")[1]
    if settings.public_url:
        base = settings.public_url.rstrip("/")
        host = base.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        http_base = base
    else:
        http_host = split_address(settings.http)[0]
        host = "127.0.0.1" if http_host in ("0.0.0.0", "::", "") else http_host
        if ":" in host:
            host = f"[{host}]"
        http_base = f"http://{host}:{http_port}"
    return PublicUrls(
        http_base=http_base,
        rtmp_base=f"rtmp://{host}:{rtmp_port}/live",
        srt_base=f"srt://{host}:{srt_port}",
        rtmps_base=f"rtmps://{host}:{rtmps_port}/live" if rtmps_port else None,
    )
