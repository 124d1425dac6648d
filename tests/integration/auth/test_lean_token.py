"""The token endpoint takes the lean path (shared.web.lean_middleware) and answers as the platform
middlewares did: request ids and CORS on every answer, RFC 6749 error bodies, the contract's 413,
the requests counted in the same metrics, refusals logged and counted against the failure limits."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from services.auth import services
from services.auth.app import create_app
from services.auth.settings import AuthSettings
from shared.testing import basic_auth, random_name

Client = TestClient
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
async def client(settings: AuthSettings) -> AsyncIterator[Client]:
    started = TestClient(TestServer(create_app(settings, "api"), host="127.0.0.1"))
    await started.start_server()
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def account(pool: asyncpg.Pool) -> dict[str, Any]:
    return await services.create_account(pool, random_name("lean"), "Lean")


def _counted(metrics: str, status: int) -> float:
    pattern = rf'^http_requests_total\{{method="POST",route="/oauth2/token",status="{status}"\}} (\S+)$'
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_grant_carries_the_request_id_cors_and_no_store_and_is_counted(
    client: Client, account: dict[str, Any]
) -> None:
    authorization = basic_auth(account["clientId"], account["clientSecret"])
    granted = await client.post(
        "/oauth2/token", data=GRANT, headers={"Authorization": authorization, "X-Request-Id": "grant-1"}
    )
    body = await granted.json()
    assert granted.status == 200 and body["token_type"] == "bearer" and body["as:client_id"] == account["clientId"]
    assert granted.headers["X-Request-Id"] == "grant-1" and granted.headers["Access-Control-Allow-Origin"] == "*"
    assert granted.headers["Cache-Control"] == "no-store" and granted.content_type == "application/json"
    refused = await client.post("/oauth2/token", data=GRANT, headers={"Authorization": basic_auth("nobody", "x")})
    assert refused.status == 401 and (await refused.json())["error"] == "invalid_client"
    assert len(refused.headers["X-Request-Id"]) == 32 and refused.headers["Access-Control-Allow-Origin"] == "*"
    metrics = await (await client.get("/metrics")).text()
    assert _counted(metrics, 200) == 1 and _counted(metrics, 401) == 1
    assert 'auth_tokens_issued_total{grant_type="client_credentials"} 1.0' in metrics
    assert 'http_request_duration_seconds_count{method="POST",route="/oauth2/token"} 2.0' in metrics


async def test_errors_keep_their_shapes(client: Client, account: dict[str, Any]) -> None:
    authorization = basic_auth(account["clientId"], account["clientSecret"])
    unsupported = await client.post(
        "/oauth2/token", data={"grant_type": "password"}, headers={"Authorization": authorization}
    )
    assert unsupported.status == 400 and (await unsupported.json())["error"] == "unsupported_grant_type"
    assert unsupported.headers["Cache-Control"] == "no-store"
    too_big_for_oauth = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "pad": "x" * 20_000},
        headers={"Authorization": authorization},
    )
    assert too_big_for_oauth.status == 400 and (await too_big_for_oauth.json())["error"] == "invalid_request"
    huge = await client.post(
        "/oauth2/token",
        data=b"grant_type=client_credentials&pad=" + b"x" * (2 * 1024 * 1024),
        headers={"Authorization": authorization, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert huge.status == 413 and (await huge.json())["errors"][0]["code"] == "PayloadTooLarge"
    preflight = await client.options(
        "/oauth2/token", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 204 and "POST" in preflight.headers["Access-Control-Allow-Methods"]


async def test_refusals_are_logged_and_limited_and_grants_are_not_logged(
    client: Client, account: dict[str, Any], settings: AuthSettings
) -> None:
    wrong = {"Authorization": basic_auth(account["clientId"], "wrong")}
    with capture_logs() as logs:
        statuses = [(await client.post("/oauth2/token", data=GRANT, headers=wrong)).status for _ in range(4)]
        right = {"Authorization": basic_auth(account["clientId"], account["clientSecret"])}
        assert (await client.post("/oauth2/token", data=GRANT, headers=right)).status == 200
    limit = settings.failures_per_client
    assert statuses == [401] * limit + [429] * (4 - limit)
    failed = [e for e in logs if e["event"] == "client_auth.failed"]
    assert len(failed) == 4 and all(e["client_id"] == account["clientId"] for e in failed)
    requests = [e for e in logs if e["event"] == "request"]
    assert sorted(e["status"] for e in requests) == sorted(statuses)  # one line per refusal, none for the grant
    assert all(account["clientSecret"] not in str(e) for e in logs)
