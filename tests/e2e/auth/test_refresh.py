"""Refresh tokens end to end: single use, rotation to the next one, and theft detection."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from authlib.integrations.base_client.errors import OAuthError

from .conftest import oauth_client

pytestmark = pytest.mark.e2e


async def introspect(auth_url: str, account: dict[str, Any], token: str) -> dict[str, Any]:
    async with oauth_client(account, auth_url) as client:
        response = await client.introspect_token(f"{auth_url}/oauth2/introspect", token=token)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_a_refresh_token_gets_a_new_pair_once(account: dict[str, Any], auth_url: str) -> None:
    async with oauth_client(account, auth_url) as client:
        first = await client.fetch_token(grant_type="client_credentials")
        second = await client.refresh_token(refresh_token=first["refresh_token"])
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        assert second["as:client_id"] == account["clientId"]
        third = await client.refresh_token(refresh_token=second["refresh_token"])
    assert (await introspect(auth_url, account, third["access_token"]))["active"] is True


async def test_reusing_a_refresh_token_revokes_every_token_of_its_grant(account: dict[str, Any], auth_url: str) -> None:
    async with oauth_client(account, auth_url) as client:
        first = await client.fetch_token(grant_type="client_credentials")
        second = await client.refresh_token(refresh_token=first["refresh_token"])
        with pytest.raises(OAuthError) as raised:
            await client.refresh_token(refresh_token=first["refresh_token"])
        assert raised.value.error == "invalid_grant"
        with pytest.raises(OAuthError) as raised:
            await client.refresh_token(refresh_token=second["refresh_token"])
        assert raised.value.error == "invalid_grant"
    for token in (first["access_token"], second["access_token"], second["refresh_token"]):
        assert await introspect(auth_url, account, token) == {"active": False}


async def test_the_seeds_refresh_example_is_a_client_credentials_grant(account: dict[str, Any], auth_url: str) -> None:
    """The seed sends grant_type client_credentials with a refresh_token: the extra field is ignored,
    so the refresh token it carried stays unspent."""
    async with oauth_client(account, auth_url) as client:
        first = await client.fetch_token(grant_type="client_credentials")
    basic = aiohttp.encode_basic_auth(account["clientId"], account["clientSecret"])
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{auth_url}/oauth2/token",
            json={
                "grant_type": "client_credentials",
                "refresh_token": first["refresh_token"],
                "client_id": account["clientId"],
            },
            headers={"Authorization": basic},
        ) as response,
    ):
        body = await response.json()
    assert response.status == 200, body
    assert body["refresh_token"] != first["refresh_token"]
    assert (await introspect(auth_url, account, first["refresh_token"]))["active"] is True


async def test_a_refresh_token_only_works_for_the_client_it_was_issued_to(
    account: dict[str, Any], auth_url: str, stack: Any
) -> None:
    other = await stack.new_account()
    async with oauth_client(account, auth_url) as client:
        token = await client.fetch_token(grant_type="client_credentials")
    async with oauth_client(other, auth_url) as thief:
        with pytest.raises(OAuthError) as raised:
            await thief.refresh_token(refresh_token=token["refresh_token"])
    assert raised.value.error == "invalid_grant"
