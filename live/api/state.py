"""Typed keys for what the API app holds and what middlewares leave on a request."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from live.control import LiveControl
from live.store.base import Store
from live.store.models import ApiKey
from live.urls import PublicUrls

STORE = web.AppKey("store", Store)
CONTROL = web.AppKey("control", LiveControl)
URLS = web.AppKey("urls", PublicUrls)

API_KEY = web.RequestKey("api_key", ApiKey)  # set by auth_middleware
RAW_BODY = web.RequestKey("raw_body", bytes)  # set by json_body_middleware
JSON_BODY = web.RequestKey("json_body", dict[str, Any])  # likewise; {} for an empty body
