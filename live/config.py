"""Settings: embedded defaults, then a TOML file, then LIVE_* variables, then flags.

Every setting has one flat name (`part_target_s`), which is also its environment
variable (`LIVE_PART_TARGET_S`) and its key in the TOML file, where it may sit in
any section (`configs/live.toml` groups them for reading).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

from live.attempts import GuardSettings
from live.hops import DEFAULT_TRUSTED, parse_networks
from live.ladder.plan import parse_rungs
from live.storage.factory import parse_s3_url

_X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")


class ConfigError(ValueError):
    """A setting that cannot be used, with the name of the setting."""


@dataclass(slots=True)
class Settings:
    # Listen addresses, HOST:PORT; port 0 picks a free port.
    http: str = "0.0.0.0:8080"
    rtmp: str = "0.0.0.0:1935"
    rtmps: str = "0.0.0.0:1936"
    srt: str = "0.0.0.0:9000"
    # RTMPS is served only when both are set (PEM files).
    tls_cert: str = ""
    tls_key: str = ""
    # HTTPS: the same routes as `http` (API, playback, pages, WHIP) over TLS with
    # tls_cert/tls_key, on its own address ("0.0.0.0:8443"); empty: off. Browsers give
    # the publish page a camera only on HTTPS (or on localhost).
    https: str = ""
    data_dir: str = "./data"
    # Base of the URLs the API hands out, e.g. "https://live.example.com".
    public_url: str = ""
    # The admin API key; when empty, a first start creates one and prints it.
    api_key: str = ""
    # Cluster mode: the Redis all nodes share (redis://HOST:PORT/DB); empty: one node
    # on SQLite. The URL other nodes reach this one at (empty: from `http`), and how a
    # node answers a viewer of a stream another node runs: "proxy" or "redirect".
    redis: str = ""
    node_url: str = ""
    cluster_playback: str = "proxy"
    log_level: str = "info"
    # The event loop `live serve` runs on: "uvloop" (fast) or "asyncio" (the standard
    # library's, for debugging).
    event_loop: str = "uvloop"
    # LL-HLS timing.
    part_target_s: float = 0.2
    segment_target_s: float = 1.0
    window_segments: int = 7
    # Segments that have left a live playlist stay requestable for one more window
    # (RFC 8216 §6.2.2), for players far behind: true keeps them in files under
    # DATA_DIR/hls-spool (on local disk, emptied at start-up) instead of in memory,
    # which halves what a stream holds. false: in memory.
    hls_spool: bool = True
    # Viewer statistics (`/players`): each player gets an id in its playlist URIs.
    # Off: every viewer gets the same URIs, which a shared cache (CDN) can serve to all.
    viewer_stats: bool = True
    # What happens when a second publisher uses a key that is live:
    # "stale" (take over if the first sent nothing for stale_publisher_s), "always", "never".
    publisher_takeover: str = "stale"
    stale_publisher_s: float = 2.0
    # An RTMP publisher that sends nothing for this long is dropped (end reason: timeout).
    rtmp_idle_timeout_s: float = 30.0
    # An RTMP publisher's socket is read once this much of its stream has queued up
    # (a few frames' worth of bytes, not each chunk as it lands): far fewer wake-ups,
    # at most this much added latency at a steady rate. 0: read every chunk at once.
    rtmp_read_coalesce_ms: int = 15
    # SRT receive latency (TSBPD), in ms: how long a lost packet may take to be
    # retransmitted. The caller's latency wins when it is larger; ~3-4 x RTT is right.
    srt_latency_ms: int = 120
    # How long an ended stream's playlist (with ENDLIST) stays up.
    ended_playlist_linger_s: float = 60.0
    # `transcode: ladder`: HEIGHT:KBPS rungs (those strictly below the source height
    # are made, aspect kept) and the x264 preset for them.
    ladder_rungs: str = "1080:6000,720:3000,480:1200,360:700"
    ladder_preset: str = "veryfast"
    # WHIP (WebRTC) ingest: the address its UDP sockets bind, the address written in
    # host candidates (empty: the bound addresses), the UDP port range ("40000-40999";
    # empty: any free port), STUN/TURN URLs announced to clients in Link headers
    # (comma-separated) with the TURN credentials, and how long a session may send
    # nothing before it is ended (end reason: timeout).
    whip_udp_host: str = "0.0.0.0"
    whip_candidate_host: str = ""
    whip_udp_ports: str = ""
    whip_ice_servers: str = ""
    whip_turn_username: str = ""
    whip_turn_credential: str = ""
    whip_idle_timeout_s: float = 5.0
    # Recordings (VOD assets): where their files go (empty: DATA_DIR/recordings), and
    # after how many days finished assets and their files are deleted (0: never).
    recordings_dir: str = ""  # deprecated: use `storage`
    recording_retention_days: float = 0.0
    # Where recordings and assets are stored: a directory (empty: DATA_DIR/recordings)
    # or an S3-compatible bucket, "s3://BUCKET/PREFIX" (credentials and region from
    # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION), at s3_endpoint
    # (empty: AWS; e.g. "http://minio:9000").
    storage: str = ""
    s3_endpoint: str = ""
    # How /vod delivers an asset's media: "proxy" (through this node, with HTTP
    # ranges) or "redirect" (a 302 to a presigned URL of the bucket, valid for
    # vod_url_expiry_s; playlists stay on the node, with presigned URIs inside).
    vod_delivery: str = "proxy"
    vod_url_expiry_s: int = 3600
    # Uploads and imports: a file over max_upload_bytes is refused (413) before it is
    # stored; an upload left unfinished for upload_expiry_s is dropped with its bytes.
    max_upload_bytes: int = 20 * 1000**3
    upload_expiry_s: float = 24 * 3600.0
    # VOD processing of uploads and imports: jobs run at once on this node (0: one
    # per two cores, at least 1), and their CPU priority below live streams: "idle"
    # (only CPU time nothing else wants), "low" (nice 19) or "normal".
    vod_workers: int = 0
    vod_priority: str = "idle"
    # An import's fetch of origin_url: connecting may take import_connect_timeout_s,
    # the whole fetch import_timeout_s; at most import_max_redirects redirects.
    import_connect_timeout_s: float = 10.0
    import_timeout_s: float = 6 * 3600.0
    import_max_redirects: int = 5
    # REST API: requests per minute per API key (token bucket; 0: no limit) and burst.
    api_rate_limit_per_min: int = 600
    api_rate_limit_burst: int = 100
    # Origins allowed to call /v1 from a browser, comma-separated ("*": any); empty: no CORS.
    cors_origins: str = ""
    # Peers whose hop headers (the edge's X-Live-Edge, a proxying node's
    # X-Live-Forwarded, and the X-Forwarded-For entries they add) are believed:
    # addresses or networks, comma-separated. By default loopback and the private
    # networks, where an edge and the other nodes are (live/hops.py).
    trusted_proxies: str = DEFAULT_TRUSTED
    # JSON request bodies of /v1 over this are refused (413) before they are read.
    api_max_body_bytes: int = 10 * 1024 * 1024
    # Webhooks: an attempt without a 2xx within webhook_timeout_s fails; retries wait
    # base, 2 x base, ... up to webhook_backoff_max_s, for webhook_retry_for_s in all.
    webhook_timeout_s: float = 10.0
    webhook_backoff_base_s: float = 10.0
    webhook_backoff_max_s: float = 900.0
    webhook_retry_for_s: float = 86400.0
    # Guessing stream keys and SRT passphrases (RTMP, SRT, WHIP): once an address (an
    # IPv6 one by its /64) has had auth_slow_after failures within auth_window_s,
    # each of its attempts waits auth_delay_s, doubling per further failure up to
    # auth_max_delay_s; at auth_refuse_after failures it is refused for
    # auth_refuse_for_s. Counted per node.
    auth_slow_after: int = 5
    auth_refuse_after: int = 10
    auth_window_s: float = 600.0
    auth_refuse_for_s: float = 300.0
    auth_delay_s: float = 1.0
    auth_max_delay_s: float = 8.0
    # Where the pages (/play, /admin, /publish) load hls.js from: empty for the copy
    # scripts/setup.sh installs under live/web/vendor (no internet needed), or the base
    # of an npm CDN, e.g. "https://cdn.jsdelivr.net/npm".
    web_js_url: str = ""
    # Limits: what one client, or many, may take of this node. A refusal is logged
    # with its reason and counted in /metrics (live_limit_refusals{limit=NAME}).
    # Live streams with a publisher at once (a reconnect or takeover of a live one
    # always gets in); above it a publish is refused.
    max_publishers: int = 200
    # Viewers (players) at once, per stream and on the node; a new player beyond either
    # gets 503 (those already watching carry on). Needs viewer_stats.
    max_viewers_per_stream: int = 5000
    max_viewers: int = 20000
    # RTMP: the largest message (a video frame) and chunk size a publisher may use; a
    # connection must finish its handshake, connect and publish within
    # rtmp_handshake_timeout_s of opening (slow or stuck clients are dropped).
    rtmp_max_message_bytes: int = 8 * 1024 * 1024
    rtmp_max_chunk_size: int = 65536
    rtmp_handshake_timeout_s: float = 10.0
    # SRT callers whose handshake waits for an answer at once; more are refused (1503,
    # overloaded) until some are answered.
    srt_max_handshakes: int = 200
    # A publisher whose media averages more than this over publisher_bitrate_window_s
    # is disconnected (end reason: error; RTMP is told why). 0: no limit.
    max_publisher_bitrate_kbps: int = 50_000
    publisher_bitrate_window_s: float = 5.0
    # HTTP: a connection must send a whole request's headers within this long of
    # opening or of its last response (slowloris; also closes idle keep-alives).
    http_header_timeout_s: float = 10.0
    # ... and the body of a request that is read whole (JSON to /v1, a WHIP offer)
    # within this long of its headers (408 otherwise): a trickled body holds nothing.
    http_body_timeout_s: float = 30.0
    # WHIP: a session whose ICE and DTLS have not connected this long after its offer
    # is ended (timeout).
    whip_connect_timeout_s: float = 15.0
    # Blocking playlist and part requests (LL-HLS) one client address may have waiting
    # at once; more get 429.
    hls_max_blocking_per_address: int = 32

    def validate(self) -> Settings:
        for name in ("http", "rtmp", "rtmps", "srt"):
            split_address(getattr(self, name), name)
        try:
            parse_rungs(self.ladder_rungs)
        except ValueError as error:
            raise ConfigError(f"ladder_rungs: {error}") from error
        if self.ladder_preset not in _X264_PRESETS:
            raise ConfigError(f"ladder_preset must be one of {', '.join(_X264_PRESETS)}")
        if self.publisher_takeover not in ("stale", "always", "never"):
            raise ConfigError("publisher_takeover must be stale, always or never")
        if not 0.05 <= self.part_target_s <= 2.0:
            raise ConfigError("part_target_s must be between 0.05 and 2.0")
        if not self.part_target_s <= self.segment_target_s <= 30:
            raise ConfigError("segment_target_s must be at least part_target_s and at most 30")
        if self.window_segments < 3:
            raise ConfigError("window_segments must be at least 3")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key go together")
        if self.https:
            split_address(self.https, "https")
            if not self.tls_cert:
                raise ConfigError("https needs tls_cert and tls_key (PEM files)")
        if self.redis and not self.redis.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("redis must be a redis://HOST:PORT/DB URL")
        if self.cluster_playback not in ("proxy", "redirect"):
            raise ConfigError("cluster_playback must be proxy or redirect")
        if self.event_loop not in ("uvloop", "asyncio"):
            raise ConfigError("event_loop must be uvloop or asyncio")
        if not 0 <= self.rtmp_read_coalesce_ms <= 100:
            raise ConfigError("rtmp_read_coalesce_ms must be between 0 and 100")
        if not 20 <= self.srt_latency_ms <= 8000:
            raise ConfigError("srt_latency_ms must be between 20 and 8000")
        port_range(self.whip_udp_ports)
        for url in filter(None, (u.strip() for u in self.whip_ice_servers.split(","))):
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ConfigError(f"whip_ice_servers: not a STUN/TURN URL: {url!r}")
        if not 1 <= self.whip_idle_timeout_s <= 60:
            raise ConfigError("whip_idle_timeout_s must be between 1 and 60")
        if self.recording_retention_days < 0:
            raise ConfigError("recording_retention_days must be >= 0 (0: keep forever)")
        if "://" in self.storage:
            try:
                parse_s3_url(self.storage)
            except ValueError as error:
                message = f"storage must be a directory or s3://BUCKET/PREFIX: {error}"
                raise ConfigError(message) from error
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as error:
            raise ConfigError(f"trusted_proxies: {error}") from error
        if self.vod_delivery not in ("proxy", "redirect"):
            raise ConfigError("vod_delivery must be proxy or redirect")
        if not 60 <= self.vod_url_expiry_s <= 604800:  # SigV4 URLs last 7 days at most
            raise ConfigError("vod_url_expiry_s must be between 60 and 604800")
        if self.vod_workers < 0:
            raise ConfigError("vod_workers must be >= 0 (0: one per two cores)")
        if self.vod_priority not in ("idle", "low", "normal"):
            raise ConfigError("vod_priority must be idle, low or normal")
        if not 0 < self.import_connect_timeout_s <= self.import_timeout_s:
            raise ConfigError("import_connect_timeout_s must be > 0 and <= import_timeout_s")
        if not 0 <= self.import_max_redirects <= 20:
            raise ConfigError("import_max_redirects must be between 0 and 20")
        if self.api_max_body_bytes < 1024:
            raise ConfigError("api_max_body_bytes must be at least 1024")
        if self.api_rate_limit_per_min < 0 or self.api_rate_limit_burst < 1:
            raise ConfigError("api_rate_limit_per_min must be >= 0 and api_rate_limit_burst >= 1")
        if not 0.1 <= self.webhook_timeout_s <= 60:
            raise ConfigError("webhook_timeout_s must be between 0.1 and 60")
        if not 0 < self.webhook_backoff_base_s <= self.webhook_backoff_max_s:
            raise ConfigError("webhook_backoff_base_s must be > 0 and <= webhook_backoff_max_s")
        if self.webhook_retry_for_s < 0:
            raise ConfigError("webhook_retry_for_s must be >= 0")
        _check_limits(self)
        if self.web_js_url and not self.web_js_url.startswith(("https://", "http://")):
            raise ConfigError(
                "web_js_url must be an http(s) URL, e.g. https://cdn.jsdelivr.net/npm"
            )
        guard_settings(self)
        return self


def _check_limits(settings: Settings) -> None:
    for name in (
        "max_publishers",
        "max_viewers_per_stream",
        "max_viewers",
        "srt_max_handshakes",
        "hls_max_blocking_per_address",
    ):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    if not 64 * 1024 <= settings.rtmp_max_message_bytes <= 256 * 1024 * 1024:
        raise ConfigError("rtmp_max_message_bytes must be between 65536 and 268435456")
    if not 128 <= settings.rtmp_max_chunk_size <= 0x7FFFFFFF:
        raise ConfigError("rtmp_max_chunk_size must be between 128 and 2147483647")
    if settings.max_publisher_bitrate_kbps < 0:
        raise ConfigError("max_publisher_bitrate_kbps must be >= 0 (0: no limit)")
    if not 0.5 <= settings.publisher_bitrate_window_s <= 60:
        raise ConfigError("publisher_bitrate_window_s must be between 0.5 and 60")
    for name in (
        "rtmp_handshake_timeout_s",
        "http_header_timeout_s",
        "http_body_timeout_s",
        "whip_connect_timeout_s",
    ):
        if not 0.5 <= getattr(settings, name) <= 3600:
            raise ConfigError(f"{name} must be between 0.5 and 3600")


def guard_settings(settings: Settings) -> GuardSettings:
    """The guard against guessing publish secrets, from the `auth_*` settings."""
    try:
        return GuardSettings(
            slow_after=settings.auth_slow_after,
            refuse_after=settings.auth_refuse_after,
            window_s=settings.auth_window_s,
            refuse_for_s=settings.auth_refuse_for_s,
            delay_s=settings.auth_delay_s,
            max_delay_s=settings.auth_max_delay_s,
        )
    except ValueError as error:
        raise ConfigError(f"auth_* settings: {error}") from error


def storage_url(settings: Settings) -> tuple[str, str | None]:
    """Where recordings go, and a deprecation warning when the old
    `recordings_dir` said so."""
    default = str(Path(settings.data_dir) / "recordings")
    if settings.recordings_dir and not settings.storage:
        return settings.recordings_dir, (
            "the recordings_dir setting (LIVE_RECORDINGS_DIR) is deprecated: "
            "use storage (LIVE_STORAGE, --storage) instead"
        )
    if settings.recordings_dir:
        return settings.storage, "recordings_dir is deprecated and ignored: storage is set"
    return settings.storage or default, None


def port_range(value: str) -> tuple[int, int]:
    """ "40000-40999" → (40000, 40999); "" → (0, 0), any free port."""
    if not value.strip():
        return 0, 0
    low, sep, high = value.partition("-")
    if not (low.strip().isdigit() and (high.strip().isdigit() if sep else True)):
        raise ConfigError(f"whip_udp_ports must be LOW-HIGH, got {value!r}")
    first, last = int(low), int(high) if sep else int(low)
    if not 1 <= first <= last <= 65535:
        raise ConfigError(f"whip_udp_ports must be a range within 1-65535, got {value!r}")
    return first, last


def split_address(value: str, name: str = "address") -> tuple[str, int]:
    """ "HOST:PORT", "[::1]:PORT" or ":PORT" → (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"{name} must be HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_BOOLEAN_WORDS = _TRUE | _FALSE


def _coerce(name: str, kind: Any, value: Any) -> Any:
    try:
        if kind is bool:
            if isinstance(value, str):
                word = value.strip().lower()
                if word not in _BOOLEAN_WORDS:  # a typo must not silently mean false
                    raise ValueError(f"not a boolean: {value!r}")
                return word in _TRUE
            return bool(value)
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{name}: cannot read {value!r} as {kind.__name__}") from error


def _flatten(table: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value))
        else:
            flat[key] = value
    return flat


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    hints = get_type_hints(Settings)
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    if config_file:
        try:
            with open(config_file, "rb") as handle:
                table = _flatten(tomllib.load(handle))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read config file {config_file}: {error}") from error
        unknown = sorted(set(table) - names)
        if unknown:
            raise ConfigError(f"unknown settings in {config_file}: {', '.join(unknown)}")
        values.update(table)
    environ = os.environ if environ is None else environ
    for name in names:
        env_value = environ.get(f"LIVE_{name.upper()}")
        if env_value is not None:
            values[name] = env_value
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    coerced = {name: _coerce(name, hints[name], value) for name, value in values.items()}
    return dataclasses.replace(Settings(), **coerced).validate()
