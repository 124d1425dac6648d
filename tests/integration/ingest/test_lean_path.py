"""Subscribe and the subscription read take the lean path (shared.lean.lean_middleware) and answer
as the platform middlewares would: request ids and CORS on every answer, the contract's errors, the
bearer token held to its account and to the denylist, the requests counted in the same metrics."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import asyncpg

from shared.denylist import Entry, record
from tests.integration.ingest.conftest import Harness, Merchant


async def _subscription(h: Harness, m: Merchant) -> str:
    response = await h.client.post(f"/v1/calendars/{m.code}", json={"code": "lean", "name": "Lean"}, headers=m.headers)
    assert response.status == 201, await response.text()
    response = await h.client.post(
        f"/v1/subscribe/{m.code}/lean", json={"subscriberId": "fan", "userAgent": "iPhone"}, headers=m.headers
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["subscriptionId"])


async def test_answers_carry_the_request_id_and_cors_headers_and_are_counted(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    subscription_id = await _subscription(h, m)
    response = await h.client.get(
        f"/v1/subscription/{subscription_id}", headers={**m.headers, "X-Request-Id": "lean-read-1"}
    )
    assert response.status == 200 and (await response.json())["subscriptionId"] == subscription_id
    assert response.headers["X-Request-Id"] == "lean-read-1"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    missing = await h.client.get(f"/v1/subscription/{subscription_id}")
    assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await missing.json())["errors"][0]["code"] == "Unauthorized"
    assert len(missing.headers["X-Request-Id"]) == 32 and missing.headers["Access-Control-Allow-Origin"] == "*"
    metrics = await (await h.client.get("/metrics")).text()

    def counted(method: str, route: str, status: int) -> float:
        pattern = rf'^http_requests_total\{{method="{method}",route="{re.escape(route)}",status="{status}"\}} (\S+)$'
        found = re.search(pattern, metrics, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    assert counted("GET", "/v1/subscription/{subscriptionId}", 200) == 1
    assert counted("GET", "/v1/subscription/{subscriptionId}", 401) == 1
    assert counted("POST", "/v1/subscribe/{accountCode}/{calendarCode}", 200) == 1
    assert 'http_request_duration_seconds_count{method="GET",route="/v1/subscription/{subscriptionId}"} 2.0' in metrics


async def test_errors_keep_the_contract_shape(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _subscription(h, m)
    other = h.merchant()
    path = f"/v1/subscribe/{m.code}/lean"
    forbidden = await h.client.post(path, json={"subscriberId": "x", "userAgent": "iPhone"}, headers=other.headers)
    assert forbidden.status == 403 and (await forbidden.json())["errors"][0]["code"] == "Forbidden"
    as_json = {**m.headers, "Content-Type": "application/json"}
    broken = await h.client.post(path, data=b'{"subscriberId": ', headers=as_json)
    body = await broken.json()
    assert broken.status == 400 and body["success"] is False and body["statusCode"] == 400
    unknown = await h.client.post(
        f"/v1/subscribe/{m.code}/nope", json={"subscriberId": "x", "userAgent": "iPhone"}, headers=m.headers
    )
    assert unknown.status == 404 and (await unknown.json())["errors"][0]["code"] == "CalendarNotFound"
    huge = b'{"subscriberId": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    too_large = await h.client.post(path, data=huge, headers=as_json)
    assert too_large.status == 413 and (await too_large.json())["errors"][0]["code"] == "PayloadTooLarge"
    assert all(r.headers.get("Access-Control-Allow-Origin") == "*" for r in (forbidden, broken, unknown, too_large))
    preflight = await h.client.options(
        path, headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 204 and "POST" in preflight.headers["Access-Control-Allow-Methods"]


async def test_a_disabled_account_is_refused_on_the_lean_routes_within_a_poll(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    subscription_id = await _subscription(h, m)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(h.database_url)
    try:
        async with conn.transaction():
            await record(conn, "ingest", Entry("account", str(m.account_id), True, now, now + timedelta(days=1)))
    finally:
        await conn.close()
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        read = await h.client.get(f"/v1/subscription/{subscription_id}", headers=m.headers)
        if read.status != 200 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert read.status == 401, await read.text()
    assert (await read.json())["errors"][0]["code"] == "InvalidToken"
    subscribe = await h.client.post(
        f"/v1/subscribe/{m.code}/lean", json={"subscriberId": "late", "userAgent": "iPhone"}, headers=m.headers
    )
    assert subscribe.status == 401 and (await subscribe.json())["errors"][0]["code"] == "InvalidToken"
