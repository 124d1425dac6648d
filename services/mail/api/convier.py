"""Seed 000 (Convier): POST /api/event, /api/todo, /api/journal, answered in Convier's own shape.

`Authorization: Bearer <api key>` (auth's API keys, learnt from `api_key.*` messages) or an OAuth
access token. Bodies are form-encoded bracket keys (as the seed's curl sends them) or the same
structure as JSON. Every answer is `{"error", "message", "uid", "data"}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from services.mail.adapters.repository import SCHEMA
from services.mail.adapters.smtp import Refusal, refused_recipients
from services.mail.api.handlers import SETTINGS
from services.mail.api.schemas import CONVIER_FORMS, CONVIER_REQUESTS, ConvierAnswer
from services.mail.convier_requests import RecipientCheck, send_request
from services.mail.domain.convier import Component, ConvierError, decode_form
from services.mail.domain.convier_request import parse_request
from services.mail.settings import MailSettings
from shared.api_keys import live_api_key
from shared.errors import ApiError
from shared.http import parse_json_text, read_body
from shared.lifecycle import POOL
from shared.logging import get_logger
from shared.tokens import InvalidToken, KeySetUnavailable
from shared.web import VERIFIER, Handler, Route

log = get_logger(__name__)


def answer(status: int, message: str, uid: str | None = None, data: str | None = None) -> web.Response:
    return web.json_response({"error": status >= 400, "message": message, "uid": uid, "data": data}, status=status)


async def _account(request: web.Request) -> uuid.UUID:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ConvierError(401, "Send your API token: Authorization: Bearer YOUR_API_TOKEN.")
    async with request.app[POOL].acquire() as conn:
        key = await live_api_key(conn, SCHEMA, token)
    if key is not None:
        account_id: uuid.UUID = key["account_id"]
        return account_id
    verifier = request.app.get(VERIFIER)
    if verifier is None or token.count(".") != 2:
        raise ConvierError(401, "The API token is not valid.")
    try:
        claims = await verifier.verify(token)
    except KeySetUnavailable:
        raise ConvierError(503, "Token verification is unavailable; try again shortly.") from None
    except InvalidToken as exc:
        raise ConvierError(401, f"The API token is not valid: {exc}.") from None
    return uuid.UUID(claims.account_id)


async def _payload(request: web.Request) -> Any:
    raw = await read_body(request)
    if request.content_type in ("application/json", "text/json") or request.content_type.endswith("+json"):
        try:
            return parse_json_text(raw)
        except ApiError as exc:
            raise ConvierError(400, exc.reason) from None
    try:
        return decode_form(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConvierError(400, "The request body is not UTF-8.") from None


def recipient_check(settings: MailSettings) -> RecipientCheck:
    async def check(addresses: Sequence[str]) -> list[Refusal] | None:
        return await refused_recipients(
            settings.smtp, settings.mail_from, addresses, timeout=settings.recipient_check_timeout
        )

    return check


def convier_handler(component: Component) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        try:
            account_id = await _account(request)
            parsed = parse_request(component, await _payload(request))
            settings = request.app[SETTINGS]
            result = await send_request(
                request.app[POOL], account_id, parsed, mail_from=settings.mail_from, check=recipient_check(settings)
            )
        except ConvierError as exc:
            log.info("convier.refused", component=component, status=exc.status, reason=exc.message[:300])
            return answer(exc.status, exc.message)
        except ApiError as exc:  # a body over the size limit
            return answer(exc.status, exc.reason)
        log.info("convier.sent", component=component, uid=result.uid, sequence=result.sequence)
        verb = "updated" if result.sequence else "created"
        message = f"Request {verb}: {result.invited} invitation(s) and {result.cancelled} cancellation(s) queued."
        return answer(200, message, result.uid, result.calendar if parsed.download else None)

    handle.__name__ = f"convier_{component}"
    return handle


def convier_routes() -> list[Route]:
    responses = {
        "400": "a required parameter is missing (named in message), or the body is not JSON/form",
        "401": "no or an unknown API token",
        "402": "parameters present but unusable (an impossible date, a malformed address, an attendee"
        " address the SMTP server refuses with 5xx: named with the server's answer); nothing is recorded",
        "413": "request body too large",
        "503": "token verification is unavailable; try again",
    }
    return [
        Route(
            "POST",
            f"/api/{component}",
            convier_handler(component),
            f"Convier: send a {component} request (form bracket keys or JSON)",
            request_model=CONVIER_FORMS[component],
            public=True,  # authenticates itself, answering in Convier's shape
            request_content_type="application/x-www-form-urlencoded",
            request_alternatives={"application/json": CONVIER_REQUESTS[component]},
            response_model=ConvierAnswer,
            responses=responses,
            response_models=dict.fromkeys(responses, ConvierAnswer),
            name=f"convier_{component}",
        )
        for component in ("event", "todo", "journal")
    ]
