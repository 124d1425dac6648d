"""HTTP handlers of the reports: the account's subscriptions searched and counted (the console's reads)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.ingest.adapters.reports import SubscriptionSearch
from services.ingest.api.bodies import utc_text
from services.ingest.api.handlers import _account, _ingest, _query_int
from shared.errors import InvalidRequest
from shared.web import json_response

PAGE = 200
METHODS = ("webcal", "google", "caldav")


def _text(request: web.Request, name: str, maximum: int = 255) -> str | None:
    value = request.query.get(name, "").strip()
    if len(value) > maximum or "\x00" in value:
        raise InvalidRequest(f"{name}: at most {maximum} characters")
    return value or None


def _active(request: web.Request) -> bool | None:
    value = (request.query.get("active") or "").lower()
    if value in ("", "any"):
        return None
    if value not in ("true", "false"):
        raise InvalidRequest("active: expected true or false")
    return value == "true"


async def search_subscriptions(request: web.Request) -> web.Response:
    method = _text(request, "method", 32)
    if method is not None and method not in METHODS:
        raise InvalidRequest(f"method: expected one of {', '.join(METHODS)}")
    search = SubscriptionSearch(
        calendar_code=_text(request, "calendarCode"),
        query=_text(request, "q"),
        active=_active(request),
        method=method,
        device=_text(request, "device", 64),
        tag_id=_text(request, "tag", 64),
        limit=_query_int(request, "limit", 50, PAGE),
        offset=_query_int(request, "offset", 0, 10_000_000),
    )
    rows, total = await _ingest(request).search_subscriptions(_account(request), search)
    return json_response({"total": total, "subscriptions": [_listed(r) for r in rows]})


def _listed(row: Any) -> dict[str, Any]:
    return {
        "subscriptionId": str(row["subscription_id"]),
        "calendarCode": row["calendar_code"],
        "calendarName": row["calendar_name"],
        "subscriberId": row["subscriber_id"],
        "emailAddress": row["email_address"],
        "subscriptionType": row["subscription_type"],
        "deviceName": row["device_name"],
        "utmSource": row["utm_source"],
        "tags": list(row["tag_names"]),
        "isActive": row["active"],
        "createdAt": utc_text(row["created_at"]),
        "deactivatedDate": utc_text(row["deactivated_at"]),
    }


async def subscription_analytics(request: web.Request) -> web.Response:
    body = await _ingest(request).subscription_analytics(
        _account(request), _text(request, "calendarCode"), _text(request, "from", 10), _text(request, "to", 10)
    )
    return json_response(body)
