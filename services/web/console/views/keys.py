"""API keys and OAuth clients of the account: list, create (the secret shown once), revoke."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from services.web.console.apis import ApiProblem
from services.web.console.pages import account, api, done, once_only, render
from shared.http import read_form


def _base(request: web.Request) -> str:
    return f"/v1/accounts/{quote(account(request), safe='')}"


async def _page(
    request: web.Request, *, created: dict[str, Any] | None = None, errors: list[str] | None = None, status: int = 200
) -> web.Response:
    keys = await api(request, "GET", "auth", _base(request) + "/api-keys")
    clients = await api(request, "GET", "auth", _base(request) + "/clients")
    context = {
        "api_keys": keys["apiKeys"],
        "clients": clients["clients"],
        "created": created,
        "errors": errors or [],
    }
    return await render(request, "console/keys.html", context, status=status)


async def show_keys(request: web.Request) -> web.Response:
    return await _page(request)


SHOWN_ONCE = "That form was sent already; its secret was shown once. Revoke it below if it was not kept."


async def create_api_key(request: web.Request) -> web.Response:
    await once_only(request, await read_form(request), "/console/keys", SHOWN_ONCE)
    created = await api(request, "POST", "auth", _base(request) + "/api-keys")
    return await _page(request, created={"kind": "API key", "values": [("API key", created["apiKey"])]})


async def create_client(request: web.Request) -> web.Response:
    await once_only(request, await read_form(request), "/console/keys", SHOWN_ONCE)
    created = await api(request, "POST", "auth", _base(request) + "/clients")
    values = [("Client id", created["clientId"]), ("Client secret", created["clientSecret"])]
    return await _page(request, created={"kind": "OAuth client", "values": values})


async def revoke_api_key(request: web.Request) -> web.Response:
    key_id = request.match_info["keyId"]
    try:
        await api(request, "DELETE", "auth", _base(request) + f"/api-keys/{quote(key_id, safe='')}")
    except ApiProblem as problem:
        return await _page(request, errors=problem.reasons, status=problem.status)
    await done(request, "/console/keys", "API key revoked.")


async def revoke_client(request: web.Request) -> web.Response:
    client_id = request.match_info["clientId"]
    try:
        await api(request, "DELETE", "auth", _base(request) + f"/clients/{quote(client_id, safe='')}")
    except ApiProblem as problem:
        return await _page(request, errors=problem.reasons, status=problem.status)
    await done(request, "/console/keys", f"Client {client_id} revoked.")
