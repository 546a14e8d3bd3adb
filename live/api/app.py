"""The /v1 sub-application: wiring of middlewares and routes.

Middleware order, outermost first; the commented slots are where the features of
API.md that are not built yet go, so each sees what it needs:

1. error_middleware      every failure below becomes API.md's JSON error
2. cors_middleware       answers preflights before auth; adds headers to everything
   anonymous rate limit  failed authentications spend their address's bucket
3. auth_middleware       401/403; leaves the ApiKey on the request
4. key rate limit        per ApiKey, so after auth; X-RateLimit-* and 429
5. json_body_middleware  400 invalid_json, 413 payload_too_large (upload routes
                         stream their own bodies: live/api/route_marks.py)
6. to_the_end            a change, once begun, runs to its end if the client goes
7. idempotency           needs the key and the raw body to fingerprint a POST
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from live.api import api_keys, assets, livestreams, openapi, players, webhooks
from live.api.assets import (
    ASSET_EVENTS,
    ASSET_INTAKE,
    UPLOAD_SETTINGS,
    AssetEvents,
    AssetIntake,
    UploadSettings,
)
from live.api.auth import auth_middleware, failed_key_middleware
from live.api.body import MAX_BODY_BYTES, json_body_middleware
from live.api.cors import cors_middleware
from live.api.errors import error_middleware
from live.api.idempotency import idempotency_middleware
from live.api.players import VIEWERS, ViewerStats
from live.api.ratelimit import (
    Limiter,
    anonymous_rate_limit_middleware,
    key_rate_limit_middleware,
)
from live.api.state import CONTROL, STORE, URLS
from live.api.to_the_end import ChangesUnderWay
from live.api.webhooks import EVENTS, ApiEvents
from live.attempts import AttemptGuard
from live.control import LiveControl
from live.limits import LimitHits
from live.store.base import Store
from live.uploads import routes as upload_routes
from live.uploads.receiver import UploadReceiver
from live.urls import PublicUrls


def build_api(
    *,
    store: Store,
    control: LiveControl,
    urls: PublicUrls,
    events: ApiEvents | None = None,
    viewers: ViewerStats | None = None,
    rate_limiter: Limiter | None = None,
    cors_origins: Iterable[str] = (),
    max_body_bytes: int = MAX_BODY_BYTES,
    body_timeout_s: float | None = None,
    limit_hits: LimitHits | None = None,
    asset_intake: AssetIntake | None = None,
    asset_events: AssetEvents | None = None,
    upload_settings: UploadSettings | None = None,
    uploads: UploadReceiver | None = None,
    key_guard: AttemptGuard | None = None,
    throttled: Counter[tuple[str, str]] | None = None,
    changes: ChangesUnderWay | None = None,
) -> web.Application:
    """The REST API, to be mounted with `root.add_subapp("/v1", api)`; the root app
    should carry `request_id_middleware`. Without `rate_limiter` there are no limits;
    without `cors_origins` no CORS; without `key_guard` wrong API keys are only
    rate-limited (`throttled` counts what the guard slowed or refused). `changes`
    holds the changes under way, for the server's shutdown to wait for."""
    origins = frozenset(cors_origins)
    changes = changes or ChangesUnderWay()
    middlewares: list[Middleware] = [error_middleware]
    if origins:
        middlewares.append(cors_middleware(origins))
    if rate_limiter is not None:
        middlewares.append(anonymous_rate_limit_middleware(rate_limiter))
    if key_guard is not None:
        counts: Counter[tuple[str, str]] = Counter() if throttled is None else throttled
        middlewares.append(failed_key_middleware(key_guard, counts))
    middlewares.append(auth_middleware)
    if rate_limiter is not None:
        middlewares.append(key_rate_limit_middleware(rate_limiter))
    middlewares += [
        json_body_middleware(max_body_bytes, body_timeout_s, limit_hits),
        changes.middleware,
        idempotency_middleware(store),
    ]
    api = web.Application(middlewares=middlewares)
    api[STORE] = store
    api[CONTROL] = control
    api[URLS] = urls
    if events is not None:
        api[EVENTS] = events
    if viewers is not None:
        api[VIEWERS] = viewers
    if asset_intake is not None:
        api[ASSET_INTAKE] = asset_intake
    if asset_events is not None:
        api[ASSET_EVENTS] = asset_events
    api[UPLOAD_SETTINGS] = upload_settings or UploadSettings()
    if uploads is not None:
        api[upload_routes.UPLOADS] = uploads
    livestreams.add_routes(api.router)
    assets.add_routes(api.router)
    upload_routes.add_routes(api.router)  # tus and PUT: streamed, not JSON
    api_keys.add_routes(api.router)
    players.add_routes(api.router)
    webhooks.add_routes(api.router)
    openapi.add_routes(api.router)
    return api
