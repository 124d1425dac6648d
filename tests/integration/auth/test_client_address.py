"""The token endpoint counts failures by the address KALENDS_TRUSTED_PROXIES lets it believe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.auth import services
from services.auth.app import create_app
from services.auth.settings import AuthSettings
from shared.proxies import TrustedProxies
from shared.testing import basic_auth, random_name

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def start(settings: AuthSettings) -> Callable[[str], AsyncIterator[Client]]:
    async def started(trusted: str) -> AsyncIterator[Client]:
        platform = replace(settings.platform, trusted_proxies=TrustedProxies.parse(trusted))
        client = TestClient(TestServer(create_app(replace(settings, platform=platform), "api"), host="127.0.0.1"))
        await client.start_server()
        try:
            yield client
        finally:
            await client.close()

    return started


async def guess(client: Client, client_id: str, forwarded_for: str) -> int:
    response = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic_auth(client_id, "guess"), "X-Forwarded-For": forwarded_for},
    )
    return response.status


async def test_x_forwarded_for_from_a_trusted_proxy_separates_the_callers_behind_it(
    start: Callable[[str], AsyncIterator[Client]], settings: AuthSettings, pool: object
) -> None:
    created = await services.create_account(pool, random_name("acct"), "Behind a proxy")  # type: ignore[arg-type]
    async for client in start("127.0.0.0/8"):
        limit = settings.failures_per_client
        statuses = [await guess(client, created["clientId"], "203.0.113.5") for _ in range(limit)]
        assert statuses == [401] * limit
        assert await guess(client, created["clientId"], "203.0.113.5") == 429
        # A forged entry on the left is the client's own writing: the proxy's entry is what counts.
        assert await guess(client, created["clientId"], "198.51.100.1, 203.0.113.5") == 429
        # Another caller behind the same proxy has a count of its own.
        assert await guess(client, created["clientId"], "203.0.113.6") == 401


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    start: Callable[[str], AsyncIterator[Client]], settings: AuthSettings, pool: object
) -> None:
    created = await services.create_account(pool, random_name("acct"), "Direct")  # type: ignore[arg-type]
    async for client in start(""):
        limit = settings.failures_per_client
        statuses = [await guess(client, created["clientId"], f"203.0.113.{i}") for i in range(limit + 1)]
        assert statuses == [401] * limit + [429]
