"""HTTP handlers: parse, validate, call one use-case, respond."""

from __future__ import annotations

import uuid

from aiohttp import web

from services.mail import services
from services.mail.api.schemas import delivery_json
from services.mail.settings import MailSettings
from shared.errors import InvalidRequest
from shared.http import whole_number
from shared.lifecycle import POOL
from shared.web import claims, json_response

SETTINGS = web.AppKey("mail_settings", MailSettings)
DELIVERY_STATUSES = ("queued", "sent", "failed")
MAX_LIMIT = 500


async def list_deliveries(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidRequest(f"status: must be one of {', '.join(DELIVERY_STATUSES)}")
    uid = request.query.get("uid") or None
    raw_limit = request.query.get("limit", str(MAX_LIMIT))
    limit = whole_number(raw_limit)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit: must be a whole number from 1 to {MAX_LIMIT}")
    rows = await services.list_deliveries(
        request.app[POOL], uuid.UUID(claims(request).account_id), uid=uid, status=status, limit=limit
    )
    return json_response({"deliveries": [delivery_json(r) for r in rows]})
