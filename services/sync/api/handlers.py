"""HTTP handlers of the sync service: parse, validate, call one use-case, respond."""

from __future__ import annotations

import uuid

from aiohttp import web

from services.sync.api.schemas import CalDavConnect, CalDavConnected
from services.sync.app_keys import CONNECTIONS
from shared.http import read_model
from shared.web import claims, json_response


async def connect_caldav(request: web.Request) -> web.Response:
    """POST /v1/caldav/{accountCode}/connections (ingest, with the merchant's Bearer token)."""
    body = await read_model(request, CalDavConnect)
    connected = await request.app[CONNECTIONS].connect_caldav(uuid.UUID(claims(request).account_id), body)
    payload = CalDavConnected(
        connection_id=connected.connection_id,
        calendar_url=connected.calendar_url,
        remote_user=connected.remote_user,
        created_collection=connected.created_collection,
    )
    return json_response(payload.model_dump(mode="json", by_alias=True), status=201)
