"""HTTP handlers of console users: set a password from a one-time link, log in, refresh, log out."""

from __future__ import annotations

import structlog
from aiohttp import web

from services.auth import users
from services.auth.api.schemas import LoginRequest, RefreshRequest, SetPasswordRequest
from services.auth.app_keys import POOL, SETTINGS, TOKENS
from shared.http import read_model
from shared.web import client_address, json_response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def set_password(request: web.Request) -> web.Response:
    body = await read_model(request, SetPasswordRequest)
    result = await users.set_password(request.app[POOL], body.token, body.password)
    return json_response(result, headers=NO_STORE)


async def login(request: web.Request) -> web.Response:
    body = await read_model(request, LoginRequest)
    settings = request.app[SETTINGS]
    address = client_address(request, settings.platform.trusted_proxies)
    session = await users.login(request.app[POOL], request.app[TOKENS], settings, body.email, body.password, address)
    structlog.contextvars.bind_contextvars(account=session["accountCode"], user_id=session["userId"])
    return json_response(session, headers=NO_STORE)


async def refresh(request: web.Request) -> web.Response:
    body = await read_model(request, RefreshRequest)
    session = await users.refresh(request.app[POOL], request.app[TOKENS], request.app[SETTINGS], body.refresh_token)
    return json_response(session, headers=NO_STORE)


async def logout(request: web.Request) -> web.Response:
    body = await read_model(request, RefreshRequest)
    await users.logout(request.app[POOL], request.app[SETTINGS], body.refresh_token)
    return web.Response(status=204, headers=NO_STORE)
