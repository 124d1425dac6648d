"""HTTP handlers: parse, validate, call one use-case, respond."""

from __future__ import annotations

import uuid
from datetime import timedelta

from aiohttp import web

from services.webhook import services
from services.webhook.api.schemas import (
    EndpointCreate,
    EndpointUpdate,
    SecretRotation,
    decode_cursor,
    delivery_json,
    encode_cursor,
    endpoint_json,
)
from services.webhook.settings import WebhookSettings
from shared.errors import InvalidRequest, NotFound
from shared.http import read_model
from shared.lifecycle import POOL
from shared.web import claims, json_response

SETTINGS = web.AppKey("webhook_settings", WebhookSettings)
DELIVERY_STATUSES = ("pending", "succeeded", "failed")


def _account(request: web.Request) -> uuid.UUID:
    return uuid.UUID(claims(request).account_id)


def _path_uuid(request: web.Request, name: str, what: str) -> uuid.UUID:
    raw = request.match_info[name]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no {what} {raw} in this account", code=f"{what.capitalize()}NotFound") from None


def _wait_bound(request: web.Request) -> float:
    """How long test and retry wait to show the attempt's outcome in their answer."""
    return min(request.app[SETTINGS].timeout + 1.0, 10.0)


async def create_webhook(request: web.Request) -> web.Response:
    body = await read_model(request, EndpointCreate)
    endpoint = await services.create_endpoint(
        request.app[POOL],
        _account(request),
        url=body.url,
        event_types=body.event_types,
        enabled=body.enabled,
        description=body.description,
        allow_private=request.app[SETTINGS].allow_private,
        box=request.app[SETTINGS].secret_box,
    )
    return json_response(endpoint_json(endpoint, with_secret=True), status=201)


async def list_webhooks(request: web.Request) -> web.Response:
    endpoints = await services.list_endpoints(request.app[POOL], _account(request))
    return json_response({"webhooks": [endpoint_json(e) for e in endpoints]})


async def get_webhook(request: web.Request) -> web.Response:
    endpoint_id = _path_uuid(request, "webhookId", "webhook")
    endpoint = await services.get_endpoint(request.app[POOL], _account(request), endpoint_id)
    return json_response(endpoint_json(endpoint))


async def update_webhook(request: web.Request) -> web.Response:
    endpoint_id = _path_uuid(request, "webhookId", "webhook")
    body = await read_model(request, EndpointUpdate)
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "enabled", "description"):
        if name in changes and changes[name] is None:
            raise InvalidRequest(f"{name}: may not be null")
    if "event_types" in changes and changes["event_types"] is None:
        raise InvalidRequest("eventTypes: may not be null")
    endpoint = await services.update_endpoint(
        request.app[POOL], _account(request), endpoint_id, changes, allow_private=request.app[SETTINGS].allow_private
    )
    return json_response(endpoint_json(endpoint))


async def delete_webhook(request: web.Request) -> web.Response:
    endpoint_id = _path_uuid(request, "webhookId", "webhook")
    await services.delete_endpoint(request.app[POOL], _account(request), endpoint_id)
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    endpoint_id = _path_uuid(request, "webhookId", "webhook")
    body = await read_model(request, SecretRotation, required=False)
    endpoint = await services.rotate_secret(
        request.app[POOL],
        _account(request),
        endpoint_id,
        timedelta(seconds=body.grace_period_seconds),
        box=request.app[SETTINGS].secret_box,
    )
    return json_response(endpoint_json(endpoint, with_secret=True))


async def send_test(request: web.Request) -> web.Response:
    endpoint_id = _path_uuid(request, "webhookId", "webhook")
    account = _account(request)
    pool = request.app[POOL]
    delivery_id = await services.send_test_event(pool, account, endpoint_id)
    row, attempts = await services.wait_for_attempt(
        pool, account, delivery_id, attempts_before=0, timeout=_wait_bound(request)
    )
    return json_response(delivery_json(row, attempts), status=202)


async def list_deliveries(request: web.Request) -> web.Response:
    endpoint_id = _path_uuid(request, "webhookId", "webhook")
    query = request.query
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise InvalidRequest("limit: must be a whole number from 1 to 100") from None
    if not 1 <= limit <= 100:
        raise InvalidRequest("limit: must be a whole number from 1 to 100")
    status = query.get("status")
    if status is not None and status.lower() not in DELIVERY_STATUSES:
        raise InvalidRequest(f"status: must be one of {', '.join(DELIVERY_STATUSES)}")
    before = decode_cursor(query["before"]) if query.get("before") else None
    page = await services.list_deliveries(
        request.app[POOL],
        _account(request),
        endpoint_id,
        limit=limit,
        status=status.lower() if status else None,
        before=before,
    )
    return json_response(
        {
            "deliveries": [delivery_json(row, attempts) for row, attempts in page.deliveries],
            "nextCursor": encode_cursor(*page.next_before) if page.next_before else None,
        }
    )


async def retry_delivery(request: web.Request) -> web.Response:
    delivery_id = _path_uuid(request, "deliveryId", "delivery")
    account = _account(request)
    pool = request.app[POOL]
    row, _ = await services.get_delivery(pool, account, delivery_id)
    await services.retry_delivery(pool, account, delivery_id)
    row, attempts = await services.wait_for_attempt(
        pool, account, delivery_id, attempts_before=row["attempts_made"], timeout=_wait_bound(request)
    )
    return json_response(delivery_json(row, attempts), status=202)
