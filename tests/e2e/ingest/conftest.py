"""auth and ingest as processes; merchants with real client-credentials tokens from auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from shared.testing import Stack


@dataclass
class Merchant:
    """One account, talking to ingest over HTTP with its own bearer token."""

    account: dict[str, Any]
    token: str
    session: aiohttp.ClientSession
    base: str

    @property
    def code(self) -> str:
        return str(self.account["accountCode"])

    async def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, raw: bytes | str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        kwargs: dict[str, Any] = {"headers": headers}
        if raw is not None:
            kwargs["data"] = raw
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, self.base + path, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()


@pytest.fixture(scope="module")
async def ingest_url(stack: Stack) -> str:
    await stack.start("auth")
    await stack.start("ingest")
    return stack.url("ingest")


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def new_merchant(stack: Stack, http: aiohttp.ClientSession, base: str, name: str) -> Merchant:
    account = await stack.new_account(name=name)
    return Merchant(account, await stack.token(account), http, base)


@pytest.fixture(scope="module")
async def acme(stack: Stack, http: aiohttp.ClientSession, ingest_url: str) -> Merchant:
    return await new_merchant(stack, http, ingest_url, "Acme Sports")


@pytest.fixture(scope="module")
async def rival(stack: Stack, http: aiohttp.ClientSession, ingest_url: str) -> Merchant:
    return await new_merchant(stack, http, ingest_url, "Rival Tickets")
