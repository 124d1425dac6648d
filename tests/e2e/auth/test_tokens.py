"""The token endpoint end to end: authlib's OAuth2 client asks, PyJWT verifies against the JWKS."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import time
from typing import Any

import aio_pika
import aiohttp
import jwt
import pytest
from aiohttp import web

from shared.amqp import Names, declare_platform
from shared.messages import parse_envelope
from shared.testing import Stack
from shared.tokens import JwksVerifier
from shared.web import Route, add_routes, claims, create_base_app

from .conftest import oauth_client

pytestmark = pytest.mark.e2e


def verify_with_pyjwt(token: str, auth_url: str) -> dict[str, Any]:
    """An independent verifier: PyJWT against the published key set, with the algorithm its key names
    (ES256 or RS256 only: never whatever the token's header asks for)."""
    keys = jwt.PyJWKClient(f"{auth_url}/.well-known/jwks.json", cache_keys=False)
    signing_key = keys.get_signing_key_from_jwt(token)
    assert signing_key.algorithm_name in ("ES256", "RS256")
    decoded: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=[signing_key.algorithm_name],
        audience="kalends-api",
        issuer=auth_url,
        options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
    )
    return decoded


async def pyjwt_claims(token: str, auth_url: str) -> dict[str, Any]:
    return await asyncio.to_thread(verify_with_pyjwt, token, auth_url)


async def test_client_credentials_by_basic_gives_a_jwt_that_pyjwt_verifies_against_the_jwks(
    account: dict[str, Any], auth_url: str
) -> None:
    async with oauth_client(account, auth_url, "client_secret_basic") as client:
        token = await client.fetch_token(grant_type="client_credentials")
    assert token["token_type"] == "bearer"
    assert token["as:client_id"] == account["clientId"]
    claims = await pyjwt_claims(token["access_token"], auth_url)
    assert claims["account_id"] == account["accountId"]
    assert claims["account_code"] == account["accountCode"]
    assert claims["client_id"] == account["clientId"]
    assert claims["exp"] - claims["iat"] == token["expires_in"] == 300
    header = jwt.get_unverified_header(token["access_token"])
    # ES256 unless KALENDS_TOKEN_ALG says otherwise: the faster one, and every verifier accepts it.
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"]


async def test_client_credentials_in_the_form_body_work_too(account: dict[str, Any], auth_url: str) -> None:
    async with oauth_client(account, auth_url, "client_secret_post") as client:
        token = await client.fetch_token(grant_type="client_credentials")
    claims = await pyjwt_claims(token["access_token"], auth_url)
    assert claims["client_id"] == account["clientId"]


async def test_the_seeds_json_body_with_basic_answers_exactly_the_seeds_fields(
    account: dict[str, Any], auth_url: str
) -> None:
    basic = base64.b64encode(f"{account['clientId']}:{account['clientSecret']}".encode()).decode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{auth_url}/oauth2/token",
            json={"grant_type": "client_credentials"},
            headers={"authorization": f"Basic {basic}", "Accept": "application/json"},
        ) as response,
    ):
        body = await response.json()
        assert response.status == 200, body
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"
    assert list(body) == [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "as:client_id",
        ".issued",
        ".expires",
    ]
    issued = email.utils.parsedate_to_datetime(body[".issued"])
    expires = email.utils.parsedate_to_datetime(body[".expires"])
    assert body[".issued"].endswith(" GMT")
    assert (expires - issued).total_seconds() == body["expires_in"]


async def test_the_seeds_json_body_with_credentials_inside_works(account: dict[str, Any], auth_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{auth_url}/oauth2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": account["clientId"],
                "client_secret": account["clientSecret"],
            },
        ) as response,
    ):
        body = await response.json()
    assert response.status == 200, body
    assert (await pyjwt_claims(body["access_token"], auth_url))["account_code"] == account["accountCode"]


async def test_a_token_of_account_a_is_refused_on_a_route_naming_account_b(stack: Stack, auth_url: str) -> None:
    """The shared bearer middleware (JwksVerifier against this auth process) holds tokens to their account."""
    account_a, account_b = await stack.new_account(), await stack.new_account()
    token_a = await stack.token(account_a)

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"account": claims(request).account_code})

    verifier = JwksVerifier(auth_url)
    app = create_base_app("probe", verifier=verifier)
    add_routes(app, [Route("GET", "/v1/things/{accountCode}", whoami, "probe")])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token_a}"}) as session:
            async with session.get(f"http://127.0.0.1:{port}/v1/things/{account_b['accountCode']}") as response:
                assert response.status == 403
                body = await response.json()
                assert body["errors"][0]["code"] == "Forbidden"
            async with session.get(f"http://127.0.0.1:{port}/v1/things/{account_a['accountCode']}") as response:
                assert response.status == 200
                assert (await response.json()) == {"account": account_a["accountCode"]}
    finally:
        await runner.cleanup()
        await verifier.close()


async def test_creating_an_account_twice_fails_clearly(stack: Stack, auth_url: str) -> None:
    account = await stack.new_account()
    with pytest.raises(RuntimeError, match="already exists"):
        await stack.new_account(account["accountCode"])


async def test_the_running_service_relays_account_created_to_rabbitmq(
    stack: Stack, auth_url: str, amqp_url: str, e2e_names: Names
) -> None:
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await declare_platform(channel, e2e_names)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="account.*")
        account = await stack.new_account()
        deadline = time.monotonic() + 15
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.1)
                continue
            await message.ack()
            seen.append(parse_envelope(message.body).data)
            if seen[-1]["accountCode"] == account["accountCode"]:
                break
        assert seen and seen[-1] == {
            "accountId": account["accountId"],
            "accountCode": account["accountCode"],
            "name": account["name"],
        }
    finally:
        await connection.close()
