"""POST /v1/ics (seed 001): an `x-api-key`, one event as JSON, an .ics file back."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from services.feed.adapters import repository as repo
from services.feed.api.handlers import CONTENT_TYPE
from services.feed.domain.ics_request import E_API_KEY, IcsFailure, parse_request, render_ics
from shared.api_keys import live_api_key
from shared.lifecycle import POOL

MAX_BODY = 64 * 1024


def failure(error: IcsFailure) -> web.Response:
    return web.json_response(error.body(), status=error.status)


async def create_calendar(request: web.Request) -> web.Response:
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        return failure(IcsFailure(E_API_KEY, "x-api-key is required.", 401))
    async with request.app[POOL].acquire() as conn:
        live = await live_api_key(conn, repo.SCHEMA, key)
    if live is None:
        return failure(IcsFailure(E_API_KEY, "x-api-key is not a valid API key.", 401))
    account_id = live["account_id"]
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return failure(IcsFailure("E1700", f"The request body is larger than {MAX_BODY} bytes.", 413))
    try:
        event = parse_request(raw)
    except IcsFailure as error:
        return failure(error)
    body = render_ics(event, account_id=account_id, now=datetime.now(UTC).replace(microsecond=0))
    return web.Response(
        body=body,
        headers={
            "Content-Type": CONTENT_TYPE,
            "Content-Disposition": "inline; filename=calendar.ics",  # as seed 001 shows it
            "Cache-Control": "no-store",
        },
    )
