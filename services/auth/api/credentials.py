"""HTTP handlers of an account's API keys and OAuth clients (Bearer token of the account in the path)."""

from __future__ import annotations

from aiohttp import web

from services.auth import credentials_admin as admin
from services.auth.app_keys import POOL, TOKENS
from shared.web import json_response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _caller(request: web.Request) -> admin.Caller:
    return await admin.caller(
        request.app[POOL],
        request.app[TOKENS],
        request.headers.get("Authorization", ""),
        request.match_info["accountCode"],
    )


async def list_api_keys(request: web.Request) -> web.Response:
    who = await _caller(request)
    return json_response({"apiKeys": await admin.list_api_keys(request.app[POOL], who)}, headers=NO_STORE)


async def create_api_key(request: web.Request) -> web.Response:
    who = await _caller(request)
    return json_response(await admin.create_api_key(request.app[POOL], who), status=201, headers=NO_STORE)


async def revoke_api_key(request: web.Request) -> web.Response:
    who = await _caller(request)
    await admin.revoke_api_key(request.app[POOL], who, request.match_info["keyId"])
    return web.Response(status=204)


async def list_clients(request: web.Request) -> web.Response:
    who = await _caller(request)
    return json_response({"clients": await admin.list_clients(request.app[POOL], who)}, headers=NO_STORE)


async def create_client(request: web.Request) -> web.Response:
    who = await _caller(request)
    return json_response(await admin.create_client(request.app[POOL], who), status=201, headers=NO_STORE)


async def disable_client(request: web.Request) -> web.Response:
    who = await _caller(request)
    await admin.disable_client(request.app[POOL], who, request.match_info["clientId"])
    return web.Response(status=204)
