"""The auth service as a process, and OAuth clients from libraries not written here."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.testing import Stack

with warnings.catch_warnings():
    # authlib prefers httpx2 and warns when it finds httpx; the client works the same.
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client


@pytest.fixture(scope="module")
async def auth_url(stack: Stack) -> str:
    # A one-second signing-key cache lets a rotation made by the admin command take effect at once.
    await stack.start("auth", env={"KALENDS_SIGNING_KEY_CACHE": "1"})
    return stack.url("auth")


@pytest.fixture
async def account(stack: Stack, auth_url: str) -> dict[str, Any]:
    return await stack.new_account()


def oauth_client(account: dict[str, Any], auth_url: str, method: str = "client_secret_basic") -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=account["clientId"],
        client_secret=account["clientSecret"],
        token_endpoint=f"{auth_url}/oauth2/token",
        token_endpoint_auth_method=method,
    )


@pytest.fixture
async def client(account: dict[str, Any], auth_url: str) -> AsyncIterator[AsyncOAuth2Client]:
    async with oauth_client(account, auth_url) as session:
        yield session
