"""Seed 003 (Unipile): POST /api/v1/calendars/{calendar_id}/events creates an ordinary catalog event.

Authenticated by `X-API-KEY` (auth's API keys, learnt from `api_key.*` messages) or a Bearer access
token; every answer, errors included, is in Unipile's shape, so the shared middleware's CalReply
errors never reach this route's callers.
"""

from __future__ import annotations

import uuid

import asyncpg
from aiohttp import web

from services.ingest.adapters import api_keys
from services.ingest.adapters.repository import SCHEMA
from services.ingest.api.handlers import INGEST
from services.ingest.api.schemas import EventBody
from services.ingest.domain.unipile import error_body, to_catalog
from services.ingest.services import Account
from shared.api_keys import live_api_key
from shared.errors import ApiError, Forbidden, NotFound, ServiceUnavailable, Unauthorized
from shared.http import read_json
from shared.lifecycle import POOL
from shared.logging import get_logger
from shared.tokens import InvalidToken, KeySetUnavailable
from shared.web import VERIFIER, Route

log = get_logger(__name__)

PATH = "/api/v1/calendars/{calendar_id}/events"


class _Failure(Exception):
    def __init__(self, status: int, detail: str, error_type: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.error_type = status, detail, error_type


async def _account(request: web.Request) -> Account:
    key = request.headers.get("X-API-KEY", "").strip()
    bearer = request.headers.get("Authorization", "")
    if key:
        async with request.app[POOL].acquire() as conn:
            row = await live_api_key(conn, SCHEMA, key)
        if row is None:
            raise _Failure(401, "X-API-KEY is not a valid API key", "errors/invalid_credentials")
        return Account(row["account_id"], row["account_code"])
    scheme, _, token = bearer.partition(" ")
    if not bearer:
        raise _Failure(401, "send X-API-KEY: <api key> or Authorization: Bearer <token>", "errors/missing_credentials")
    verifier = request.app.get(VERIFIER)
    if scheme.lower() != "bearer" or not token.strip() or verifier is None:
        raise _Failure(401, "the Authorization header must be 'Bearer <access token>'", "errors/invalid_credentials")
    try:
        claims = await verifier.verify(token.strip())
    except KeySetUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None
    except InvalidToken as exc:
        raise _Failure(401, str(exc), "errors/invalid_credentials") from None
    return Account(uuid.UUID(claims.account_id), claims.account_code)


def _check_account_id(request: web.Request, account: Account) -> None:
    named = request.query.get("account_id")
    if named and named.lower() not in (account.account_code.lower(), str(account.account_id)):
        raise _Failure(
            403,
            f"these credentials belong to account '{account.account_code}', not '{named[:100]}'",
            "errors/account_mismatch",
        )


async def _calendar_code(request: web.Request, account: Account) -> str:
    calendar_id = request.match_info["calendar_id"]
    if "\x00" in calendar_id or len(calendar_id) > 255:
        raise NotFound("no such calendar")
    async with request.app[POOL].acquire() as conn:
        code = await api_keys.calendar_code_by_id_or_code(conn, account.account_id, calendar_id)
    if code is None:
        raise NotFound(f"calendar '{calendar_id[:100]}' not found in account '{account.account_code}'")
    return code


async def _create(request: web.Request) -> web.Response:
    account = await _account(request)
    _check_account_id(request, account)
    code = await _calendar_code(request, account)
    event = to_catalog(await read_json(request))
    body = EventBody.parse(event.catalog_body)
    saved, _ = await request.app[INGEST].save_event(account, code, body, attendees_hidden=event.attendees_hidden)
    log.info("unipile.event_created", account=account.account_code, event_id=str(saved.event_id))
    return web.json_response({"object": "CalendarEventCreated", "event_id": str(saved.event_id)}, status=201)


async def create_event(request: web.Request) -> web.Response:
    """Any failure answered in Unipile's shape; a 5xx reveals nothing and is logged."""
    try:
        return await _create(request)
    except _Failure as failure:
        return web.json_response(error_body(failure.status, failure.detail, failure.error_type), status=failure.status)
    except (Unauthorized, Forbidden) as error:
        return web.json_response(error_body(error.status, error.reason), status=error.status)
    except ApiError as error:
        return web.json_response(error_body(error.status, error.reason), status=error.status, headers=error.headers)
    except TimeoutError:
        log.exception("unipile.timeout")
        return web.json_response(error_body(504, "the request took too long; try again"), status=504)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
        log.exception("unipile.unavailable")
        return web.json_response(error_body(503, "the calendar store is unavailable; try again"), status=503)
    except Exception:
        log.exception("unipile.failed")
        return web.json_response(error_body(500, "an internal error occurred; it has been logged"), status=500)


def unipile_routes() -> list[Route]:
    return [
        Route(
            "POST",
            PATH,
            create_event,
            "Unipile: create a calendar event (X-API-KEY or Bearer; ?account_id=)",
            public=True,  # this handler authenticates itself, answering in Unipile's error shape
            responses={
                "201": '{"object": "CalendarEventCreated", "event_id"}',
                "400": "errors/invalid_parameters",
                "401": "errors/missing_credentials, errors/invalid_credentials",
                "403": "errors/account_mismatch",
                "404": "errors/resource_not_found",
                "503": "errors/service_unavailable",
                "504": "errors/request_timeout",
            },
        )
    ]
