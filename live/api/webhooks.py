"""Routes under /v1/webhooks: endpoints, the delivery log, resend.

The signing secret is in the answer that creates an endpoint and nowhere else.
`announce` is how other routes (ban, unban) put an event in the outbox.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from aiohttp import web
from yarl import URL

from live.api.body import json_body
from live.api.errors import ApiError, invalid, missing
from live.api.pagination import page_answer, pagination
from live.api.state import STORE
from live.events.signing import new_secret
from live.store.models import DELIVERY_STATES, WEBHOOK_EVENTS, Delivery, Livestream, Webhook
from live.store.times import to_rfc3339, utcnow

log = logging.getLogger(__name__)

URL_MAX = 2048


class ApiEvents(Protocol):
    """What the API needs of the outbox (live/events/outbox.py)."""

    async def emit(self, event: str, livestream: Livestream, session: Any) -> None: ...

    def wake(self) -> None: ...


EVENTS = web.AppKey("events", ApiEvents)


async def announce(request: web.Request, event: str, livestream: Livestream | None) -> None:
    """Put a livestream event in the outbox. The action it reports has happened
    already, so a failure here is logged, not turned into an error answer."""
    events = request.app.get(EVENTS)
    if events is None or livestream is None:
        return
    try:
        await events.emit(event, livestream, None)
    except Exception:
        log.exception("could not record event %s for %s", event, livestream.id)


def webhook_json(hook: Webhook, *, secret: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "created_at": to_rfc3339(hook.created_at),
    }
    if secret:
        answer["secret"] = hook.secret
    return answer


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event_id": delivery.event_id,
        "event": delivery.event,
        "payload": json.loads(delivery.body),
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status,
        "last_error": delivery.last_error,
        "next_attempt_at": (
            to_rfc3339(delivery.next_attempt_at) if delivery.state == "pending" else None
        ),
        "created_at": to_rfc3339(delivery.created_at),
        "delivered_at": to_rfc3339(delivery.delivered_at) if delivery.delivered_at else None,
    }


def _webhook_request(body: dict[str, Any]) -> tuple[str, list[str]]:
    for key in body:
        if key not in ("url", "events"):
            raise invalid(key, f"Unknown parameter: {key}")
    url = body.get("url")
    if url is None:
        raise missing("url")
    if not isinstance(url, str) or len(url) > URL_MAX:
        raise invalid("url", f"url must be an http(s) URL of at most {URL_MAX} characters")
    try:
        parsed = URL(url)
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise invalid("url", "url must be an absolute http:// or https:// URL")
    events = body.get("events", list(WEBHOOK_EVENTS))
    if (
        not isinstance(events, list)
        or not events
        or any(not isinstance(e, str) or e not in WEBHOOK_EVENTS for e in events)
    ):
        raise invalid("events", f"events must be a non-empty list of: {', '.join(WEBHOOK_EVENTS)}")
    return url, list(dict.fromkeys(events))


async def create_webhook(request: web.Request) -> web.Response:
    url, events = _webhook_request(json_body(request))
    hook = await request.app[STORE].create_webhook(url, events, new_secret())
    return web.json_response(webhook_json(hook, secret=True), status=201)


async def list_webhooks(request: web.Request) -> web.Response:
    page, page_size = pagination(request)
    hooks, total = await request.app[STORE].list_webhooks(page, page_size)
    return web.json_response(page_answer([webhook_json(h) for h in hooks], page, page_size, total))


def _webhook_not_found(webhook_id: str) -> ApiError:
    return ApiError(404, "webhook_not_found", f"No webhook with id {webhook_id}", "id")


async def get_webhook(request: web.Request) -> web.Response:
    webhook_id = request.match_info["id"]
    hook = await request.app[STORE].get_webhook(webhook_id)
    if hook is None:
        raise _webhook_not_found(webhook_id)
    return web.json_response(webhook_json(hook))


async def delete_webhook(request: web.Request) -> web.Response:
    webhook_id = request.match_info["id"]
    if not await request.app[STORE].delete_webhook(webhook_id):
        raise _webhook_not_found(webhook_id)
    return web.Response(status=204, content_type="application/json")


async def list_deliveries(request: web.Request) -> web.Response:
    page, page_size = pagination(request)
    state = request.query.get("state")
    if state is not None and state not in DELIVERY_STATES:
        raise invalid("state", f"state must be one of: {', '.join(DELIVERY_STATES)}")
    webhook_id = request.query.get("webhook_id")
    items, total = await request.app[STORE].list_deliveries(
        page,
        page_size,
        webhook_id=webhook_id,
        state=state,  # type: ignore[arg-type]
    )
    return web.json_response(page_answer([delivery_json(d) for d in items], page, page_size, total))


def _delivery_not_found(delivery_id: str) -> ApiError:
    return ApiError(404, "delivery_not_found", f"No delivery with id {delivery_id}", "id")


async def get_delivery(request: web.Request) -> web.Response:
    delivery_id = request.match_info["id"]
    delivery = await request.app[STORE].get_delivery(delivery_id)
    if delivery is None:
        raise _delivery_not_found(delivery_id)
    return web.json_response(delivery_json(delivery))


async def resend_delivery(request: web.Request) -> web.Response:
    """Send again now, with the same event id and body (a new signature)."""
    delivery_id = request.match_info["id"]
    delivery = await request.app[STORE].resend_delivery(delivery_id, utcnow())
    if delivery is None:
        raise _delivery_not_found(delivery_id)
    events = request.app.get(EVENTS)
    if events is not None:
        events.wake()
    return web.json_response(delivery_json(delivery), status=202)


def add_routes(router: web.UrlDispatcher) -> None:
    # The deliveries routes first: "/webhooks/{id}" would match "deliveries" too.
    router.add_get("/webhooks/deliveries", list_deliveries)
    router.add_get("/webhooks/deliveries/{id}", get_delivery)
    router.add_post("/webhooks/deliveries/{id}/resend", resend_delivery)
    router.add_post("/webhooks", create_webhook)
    router.add_get("/webhooks", list_webhooks)
    router.add_get("/webhooks/{id}", get_webhook)
    router.add_delete("/webhooks/{id}", delete_webhook)
