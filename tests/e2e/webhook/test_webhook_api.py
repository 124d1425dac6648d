"""The webhook routes of the contract, through HTTP only, with tokens from the auth service."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from shared.testing import Stack
from tests.e2e.webhook.conftest import Merchant
from tests.integration.webhook.receiver import Receiver

pytestmark = pytest.mark.e2e


async def call(merchant: Merchant, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with merchant.session.request(method, merchant.url(path), json=body) as response:
        payload = await response.json() if response.status != 204 else None
        return response.status, payload


async def create(merchant: Merchant, url: str, **fields: Any) -> dict[str, Any]:
    status, body = await call(merchant, "POST", "", {"url": url, **fields})
    assert status == 201, body
    return dict(body)


async def test_a_webhook_is_created_listed_read_changed_rotated_and_deleted(
    merchant: Merchant, receiver: Receiver
) -> None:
    created = await create(merchant, receiver.url("/hook"), eventTypes=["subscribe"], description="CRM")
    assert created["secret"].startswith("whsec_")
    assert created["eventTypes"] == ["Subscribe"]
    assert created["enabled"] is True
    webhook_id = created["id"]

    status, listed = await call(merchant, "GET", "")
    assert status == 200
    assert [w["id"] for w in listed["webhooks"]] == [webhook_id]
    assert "secret" not in listed["webhooks"][0]

    status, changed = await call(merchant, "PUT", f"/{webhook_id}", {"EventTypes": ["Subscribe", "Unsubscribe"]})
    assert status == 200, changed
    assert changed["eventTypes"] == ["Subscribe", "Unsubscribe"]
    assert changed["description"] == "CRM"

    status, rotated = await call(merchant, "POST", f"/{webhook_id}/rotate-secret", {"gracePeriodSeconds": 60})
    assert status == 200
    assert rotated["secret"] != created["secret"]
    assert "previousSecretExpiresAt" in rotated

    status, _ = await call(merchant, "DELETE", f"/{webhook_id}")
    assert status == 204
    status, missing = await call(merchant, "GET", f"/{webhook_id}")
    assert status == 404
    assert missing["errors"][0]["code"] == "WebhookNotFound"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://127.0.0.1/x", "eventTypes": ["Subscribed"]}, "eventTypes"),
        ({"url": "http://127.0.0.1/x", "eventTypes": []}, "eventTypes"),
        ({"url": "http://127.0.0.1/x", "enabled": "yes"}, "enabled"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(merchant: Merchant, body: dict[str, Any], field: str) -> None:
    status, error = await call(merchant, "POST", "", body)
    assert status == 400, error
    assert error["success"] is False
    assert error["errors"][0]["reason"].startswith(field)


async def test_malformed_json_is_a_400_that_says_where_it_broke(merchant: Merchant) -> None:
    async with merchant.session.post(
        merchant.url(), data=b'{"url": ', headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        assert "line 1" in (await response.json())["errors"][0]["reason"]


async def test_another_accounts_webhooks_are_forbidden_and_no_token_is_unauthorized(
    merchant: Merchant, webhook_stack: Stack
) -> None:
    async with merchant.session.get(f"{merchant.base}/v1/webhooks/someone-else") as response:
        assert response.status == 403
    async with aiohttp.ClientSession() as anonymous, anonymous.get(merchant.url()) as response:
        assert response.status == 401


async def test_the_test_route_sends_a_signed_test_event_and_answers_with_its_delivery(
    merchant: Merchant, receiver: Receiver
) -> None:
    created = await create(merchant, receiver.url("/hook"))
    status, delivery = await call(merchant, "POST", f"/{created['id']}/test")
    assert status == 202, delivery
    (request,) = await receiver.wait_for("/hook", 1)
    assert Webhook(created["secret"]).verify(request.body, request.headers)["eventType"] == "Test"
    assert request.json["eventDetails"]["message"] == "This is a test payload"
    assert delivery["status"] == "succeeded"
    assert delivery["eventId"] == request.json["eventId"] == request.headers["webhook-id"]
    assert delivery["attempts"][0]["statusCode"] == 200


async def test_a_failed_delivery_is_listed_with_its_attempts_and_the_retry_route_sends_it_once_more(
    merchant: Merchant, receiver: Receiver, webhook_stack: Stack
) -> None:
    created = await create(merchant, receiver.fail("/down", times=5))
    status, first = await call(merchant, "POST", f"/{created['id']}/test")
    assert status == 202
    status, early = await call(merchant, "POST", f"/deliveries/{first['id']}/retry")
    assert status == 409 and early["errors"][0]["code"] == "DeliveryPending"

    deadline = time.monotonic() + 15
    while True:
        status, page = await call(merchant, "GET", f"/{created['id']}/deliveries")
        assert status == 200
        (delivery,) = page["deliveries"]
        if delivery["status"] == "failed":
            break
        assert delivery["status"] == "pending"
        assert delivery["nextAttemptAt"] is not None
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    assert delivery["attemptCount"] == 4
    assert [a["statusCode"] for a in delivery["attempts"]] == [500] * 4
    # The failure rate the alerting rules watch (deploy/prometheus/kalends.rules.yaml) counted them.
    async with aiohttp.ClientSession() as session:
        async with session.get(webhook_stack.url("webhook") + "/metrics") as response:
            metrics = await response.text()
    failed = 'webhook_attempts_total{delivery_status="failed",result="failure"} '
    pending = 'webhook_attempts_total{delivery_status="pending",result="failure"} '
    assert failed in metrics and pending in metrics, [line for line in metrics.splitlines() if "webhook_" in line]
    assert float(metrics.split(pending)[1].split()[0]) >= 3
    assert delivery["attempts"][0]["responseBody"] == "not yet"
    assert delivery["nextAttemptAt"] is None

    status, retried = await call(merchant, "POST", f"/deliveries/{delivery['id']}/retry")
    assert status == 202, retried
    assert retried["attempts"][-1]["number"] == 5
    assert retried["attempts"][-1]["trigger"] == "manual"
    assert retried["attempts"][-1]["statusCode"] == 500  # the fifth reply is still a failure
    assert retried["status"] == "failed"

    status, again = await call(merchant, "POST", f"/deliveries/{delivery['id']}/retry")
    assert status == 202
    assert again["status"] == "succeeded"
    assert len(again["attempts"]) == 6
    assert len(receiver.at("/down")) == 6

    status, filtered = await call(merchant, "GET", f"/{created['id']}/deliveries?status=failed")
    assert status == 200 and filtered["deliveries"] == []
    status, bad = await call(merchant, "GET", f"/{created['id']}/deliveries?limit=1000")
    assert status == 400 and bad["errors"][0]["reason"].startswith("limit")


async def test_the_deliveries_route_pages_newest_first(merchant: Merchant, receiver: Receiver) -> None:
    created = await create(merchant, receiver.url("/hook"))
    ids = []
    for _ in range(3):
        status, delivery = await call(merchant, "POST", f"/{created['id']}/test")
        assert status == 202
        ids.append(delivery["id"])
    status, page = await call(merchant, "GET", f"/{created['id']}/deliveries?limit=2")
    assert status == 200
    assert [d["id"] for d in page["deliveries"]] == ids[::-1][:2]
    status, rest = await call(merchant, "GET", f"/{created['id']}/deliveries?limit=2&before={page['nextCursor']}")
    assert status == 200
    assert [d["id"] for d in rest["deliveries"]] == ids[:1]
    assert rest["nextCursor"] is None


async def test_the_openapi_document_lists_every_webhook_route(webhook_stack: Stack) -> None:
    async with aiohttp.ClientSession() as session, session.get(webhook_stack.url("webhook") + "/openapi.json") as r:
        paths = (await r.json())["paths"]
    assert set(paths["/v1/webhooks/{accountCode}"]) == {"get", "post"}
    assert set(paths["/v1/webhooks/{accountCode}/{webhookId}"]) == {"get", "put", "delete"}
    assert "/v1/webhooks/{accountCode}/deliveries/{deliveryId}/retry" in paths
    assert "/v1/webhooks/{accountCode}/{webhookId}/rotate-secret" in paths
