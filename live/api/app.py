"""The /v1 sub-application: wiring of middlewares and routes.

Middleware order, outermost first; the commented slots are where the features of
API.md that are not built yet go, so each sees what it needs:

1. error_middleware      every failure below becomes API.md's JSON error
2. (CORS)                answers preflights before auth; adds headers to everything
3. auth_middleware       401/403; leaves the ApiKey on the request
4. (rate limits)         per ApiKey, so after auth; X-RateLimit-* and 429
5. json_body_middleware  400 invalid_json, 413 payload_too_large
6. (Idempotency-Key)     needs the key and the raw body to fingerprint a POST
"""

from __future__ import annotations

from aiohttp import web

from live.api import api_keys, livestreams
from live.api.auth import auth_middleware
from live.api.body import json_body_middleware
from live.api.errors import error_middleware
from live.api.state import CONTROL, STORE, URLS
from live.control import LiveControl
from live.store.base import Store
from live.urls import PublicUrls


def build_api(*, store: Store, control: LiveControl, urls: PublicUrls) -> web.Application:
    """The REST API, to be mounted with `root.add_subapp("/v1", api)`; the root app
    should carry `request_id_middleware`."""
    api = web.Application(
        middlewares=[
            error_middleware,
            auth_middleware,
            json_body_middleware,
        ]
    )
    api[STORE] = store
    api[CONTROL] = control
    api[URLS] = urls
    livestreams.add_routes(api.router)
    api_keys.add_routes(api.router)
    return api
