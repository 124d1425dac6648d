"""Introspection, revocation, metadata, JWKS across a key rotation, and the platform routes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import jwt
import pytest

from shared.testing import Stack

from .conftest import oauth_client
from .test_tokens import pyjwt_claims

pytestmark = pytest.mark.e2e


async def get_json(url: str) -> tuple[int, dict[str, str], Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, dict(response.headers), await response.json(content_type=None)


async def test_introspection_describes_the_clients_own_live_tokens_only(
    stack: Stack, account: dict[str, Any], auth_url: str
) -> None:
    other = await stack.new_account()
    async with oauth_client(account, auth_url) as client:
        token = await client.fetch_token(grant_type="client_credentials")
        access = (await client.introspect_token(f"{auth_url}/oauth2/introspect", token=token["access_token"])).json()
        refresh = (
            await client.introspect_token(
                f"{auth_url}/oauth2/introspect", token=token["refresh_token"], token_type_hint="refresh_token"
            )
        ).json()
        unknown = (await client.introspect_token(f"{auth_url}/oauth2/introspect", token="garbage")).json()
    assert access["active"] is True and access["client_id"] == account["clientId"]
    assert access["account_code"] == account["accountCode"] and access["token_type"] == "Bearer"
    assert access["exp"] > time.time()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    assert unknown == {"active": False}
    async with oauth_client(other, auth_url) as stranger:
        response = await stranger.introspect_token(f"{auth_url}/oauth2/introspect", token=token["access_token"])
    assert response.json() == {"active": False}


async def test_introspection_requires_client_authentication(account: dict[str, Any], auth_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{auth_url}/oauth2/introspect", data={"token": "x"}) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_client"


async def test_revocation_answers_200_and_deactivates_the_token(account: dict[str, Any], auth_url: str) -> None:
    url = f"{auth_url}/oauth2/revoke"
    async with oauth_client(account, auth_url) as client:
        one = await client.fetch_token(grant_type="client_credentials")
        two = await client.fetch_token(grant_type="client_credentials")
        assert (await client.revoke_token(url, token=one["access_token"])).status_code == 200
        assert (
            await client.revoke_token(url, token=two["refresh_token"], token_type_hint="refresh_token")
        ).status_code == 200
        assert (await client.revoke_token(url, token="never-issued")).status_code == 200
        introspect = f"{auth_url}/oauth2/introspect"
        assert (await client.introspect_token(introspect, token=one["access_token"])).json() == {"active": False}
        assert (await client.introspect_token(introspect, token=one["refresh_token"])).json()["active"] is True
        # Revoking a refresh token revokes its family, access token included.
        assert (await client.introspect_token(introspect, token=two["access_token"])).json() == {"active": False}


async def test_metadata_names_every_endpoint(auth_url: str) -> None:
    status, _, body = await get_json(f"{auth_url}/.well-known/oauth-authorization-server")
    assert status == 200
    assert body["issuer"] == auth_url
    assert body["token_endpoint"] == f"{auth_url}/oauth2/token"
    assert body["jwks_uri"] == f"{auth_url}/.well-known/jwks.json"
    assert body["introspection_endpoint"] == f"{auth_url}/oauth2/introspect"
    assert body["revocation_endpoint"] == f"{auth_url}/oauth2/revoke"
    assert set(body["grant_types_supported"]) == {"client_credentials", "refresh_token"}
    assert set(body["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}


async def test_tokens_signed_before_a_rotation_still_verify_and_new_ones_carry_the_new_kid(
    stack: Stack, account: dict[str, Any], auth_url: str
) -> None:
    async with oauth_client(account, auth_url) as client:
        before = await client.fetch_token(grant_type="client_credentials")
        old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
        rotated = await stack.admin("rotate-signing-key")
        assert rotated["kid"] != old_kid
        deadline = time.monotonic() + 10
        while True:  # the service picks up the new key within its one-second cache
            after = await client.fetch_token(grant_type="client_credentials")
            if jwt.get_unverified_header(after["access_token"])["kid"] == rotated["kid"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert jwt.get_unverified_header(after["access_token"])["kid"] == rotated["kid"]
    status, headers, jwks = await get_json(f"{auth_url}/.well-known/jwks.json")
    assert status == 200
    assert {k["kid"] for k in jwks["keys"]} >= {old_kid, rotated["kid"]}
    for key in jwks["keys"]:
        public = {"EC": {"crv", "x", "y"}, "RSA": {"n", "e"}}[key["kty"]]
        assert set(key) >= {"kty", "kid", "alg", *public} and "d" not in key
    assert "max-age=" in headers["Cache-Control"]
    assert (await pyjwt_claims(before["access_token"], auth_url))["client_id"] == account["clientId"]
    assert (await pyjwt_claims(after["access_token"], auth_url))["client_id"] == account["clientId"]


async def test_health_readiness_metrics_and_openapi_answer(auth_url: str) -> None:
    assert (await get_json(f"{auth_url}/healthz"))[2] == {"status": "ok"}
    status, _, ready = await get_json(f"{auth_url}/readyz")
    assert status == 200 and set(ready["checks"]) == {"postgresql", "rabbitmq"}
    async with aiohttp.ClientSession() as session, session.get(f"{auth_url}/metrics") as response:
        text = await response.text()
    assert response.status == 200 and "http_requests_total" in text and "auth_tokens_issued_total" in text
    status, _, document = await get_json(f"{auth_url}/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.1")
    for path in ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/.well-known/jwks.json"):
        assert path in document["paths"]


async def test_no_secret_or_token_reaches_the_log(stack: Stack, account: dict[str, Any], auth_url: str) -> None:
    async with oauth_client(account, auth_url, "client_secret_post") as client:
        token = await client.fetch_token(grant_type="client_credentials")
        refreshed = await client.refresh_token(refresh_token=token["refresh_token"])
        await client.introspect_token(f"{auth_url}/oauth2/introspect", token=refreshed["access_token"])
        await client.revoke_token(f"{auth_url}/oauth2/revoke", token=refreshed["refresh_token"])
    async with aiohttp.ClientSession() as session:
        data = {"grant_type": "client_credentials", "client_id": account["clientId"], "client_secret": "typo-secret"}
        async with session.post(f"{auth_url}/oauth2/token", data=data) as response:
            assert response.status == 401
    log_path = stack.processes["auth"].log_path
    assert log_path is not None
    log_text = log_path.read_text()
    assert account["clientId"] in log_text  # the log does name the client
    for secret in (
        account["clientSecret"],
        "typo-secret",
        token["access_token"],
        token["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
    ):
        assert secret not in log_text
