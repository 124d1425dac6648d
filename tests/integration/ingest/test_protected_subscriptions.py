"""Protected calendars' feed credentials: stable across re-subscribing, encrypted at rest, rotated on purpose."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import unquote

import asyncpg

from tests.integration.ingest.conftest import Harness, Merchant

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
URL = re.compile(
    r"webcal://(?P<user>[^:@/]+):(?P<password>[^@/]+)@feeds\.example\.test:8443/v1/webcal/(?P<id>[0-9a-f-]{36})"
)


async def _call(h: Harness, m: Merchant, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    response = await h.client.request(method, path, json=body, headers=m.headers)
    payload = await response.json() if response.content_type == "application/json" else await response.text()
    assert response.status == status, payload
    return payload


async def _calendar(h: Harness, m: Merchant, code: str = "vip", protected: bool = True) -> None:
    await _call(h, m, "POST", f"/v1/calendars/{m.code}", {"code": code, "name": "VIP", "protected": protected}, 201)


async def _subscribe(h: Harness, m: Merchant, subscriber: str, code: str = "vip", **extra: Any) -> dict[str, Any]:
    body = {"subscriberId": subscriber, "userAgent": UA, **extra}
    answer: dict[str, Any] = await _call(h, m, "POST", f"/v1/subscribe/{m.code}/{code}", body)
    return answer


async def _stored(h: Harness, subscription_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(h.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT feed_username, feed_password_hash, feed_password_encrypted, version FROM ingest.subscriptions"
            " WHERE subscription_id = $1::uuid",
            subscription_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return row


def _sha256(password: str) -> str:
    return "sha256:" + hashlib.sha256(password.encode()).hexdigest()


async def test_resubscribing_the_same_subscriber_answers_the_same_url(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    first = await _subscribe(h, m, "fan@example.com")
    again = await _subscribe(h, m, "fan@example.com", utmSource="Email")
    webcal = await _call(h, m, "POST", f"/v1/webcal/{m.code}/vip", {"UserName": "fan@example.com"})
    assert again["isNewSubscription"] is False
    assert first["subscriptionUrl"] == again["subscriptionUrl"] == webcal
    match = URL.fullmatch(first["subscriptionUrl"])
    assert match and unquote(match["user"]) == "fan@example.com"
    password = unquote(match["password"])

    row = await _stored(h, first["subscriptionId"])
    assert row["feed_password_hash"] == _sha256(password)
    assert password not in row["feed_password_encrypted"]
    assert h.secrets is not None and h.secrets.decrypt(row["feed_password_encrypted"]) == password

    received = await h.messages.wait_for(4)
    subscription_messages = [m for m in received if m["type"].startswith("subscription.")]
    assert [m["type"] for m in subscription_messages] == ["subscription.created"] + ["subscription.updated"] * 2
    for message in subscription_messages:
        assert message["data"]["feedPasswordHash"] == _sha256(password)
        assert password not in json.dumps(message)  # the hash travels, never the password


async def test_rotating_credentials_issues_a_new_password_that_later_subscribes_keep(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    first = await _subscribe(h, m, "ann")
    sid = first["subscriptionId"]
    await h.messages.wait_for(2)
    h.messages.clear()
    before = await _stored(h, sid)

    rotated = await _call(h, m, "POST", f"/v1/subscription/{m.code}/vip/{sid}/rotate-credentials")
    assert rotated["success"] is True and rotated["statusCode"] == 200 and rotated["errors"] == []
    assert rotated["subscriptionId"] == sid and rotated["subscriptionType"] == "webcal"
    old, new = URL.fullmatch(first["subscriptionUrl"]), URL.fullmatch(rotated["subscriptionUrl"])
    assert old and new and old["id"] == new["id"] == sid and old["user"] == new["user"] == "ann"
    assert old["password"] != new["password"]

    after = await _stored(h, sid)
    assert after["feed_password_hash"] == _sha256(unquote(new["password"])) != before["feed_password_hash"]
    assert after["version"] == before["version"] + 1
    (message,) = await h.messages.wait_for(1)
    assert message["type"] == "subscription.updated"
    assert message["data"]["feedPasswordHash"] == after["feed_password_hash"]
    assert message["data"]["version"] == after["version"]
    assert (await _subscribe(h, m, "ann"))["subscriptionUrl"] == rotated["subscriptionUrl"]


async def test_a_subscription_made_before_protection_gets_credentials_by_rotation_or_resubscribing(
    harness: Harness,
) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m, protected=False)
    named = await _subscribe(h, m, "early")
    anonymous = await _call(h, m, "POST", f"/v1/subscribe/{m.code}/vip", {"subscriptionMethod": "webcal"})
    assert URL.fullmatch(named["subscriptionUrl"]) is None  # no credentials while public
    path = f"/v1/subscription/{m.code}/vip/{named['subscriptionId']}/rotate-credentials"
    refused = await _call(h, m, "POST", path, status=409)
    assert refused["errors"][0]["code"] == "CalendarNotProtected"

    await _call(h, m, "PUT", f"/v1/calendars/{m.code}/vip", {"protected": True})
    again = await _subscribe(h, m, "early")
    match = URL.fullmatch(again["subscriptionUrl"])
    assert again["subscriptionId"] == named["subscriptionId"] and match and match["user"] == "early"
    rotated = await _call(
        h, m, "POST", f"/v1/subscription/{m.code}/vip/{anonymous['subscriptionId']}/rotate-credentials"
    )
    anonymous_match = URL.fullmatch(rotated["subscriptionUrl"])
    assert anonymous_match and anonymous_match["user"] == "subscriber"


async def test_rotate_credentials_refuses_what_has_no_feed_password(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    other = h.merchant()
    await _calendar(h, m)
    base = f"/v1/subscription/{m.code}/vip"
    webcal = await _subscribe(h, m, "w")
    await _call(h, m, "DELETE", base, {"id": webcal["subscriptionId"]})
    answer = await _call(h, m, "POST", f"{base}/{webcal['subscriptionId']}/rotate-credentials", status=409)
    assert answer["errors"][0]["code"] == "SubscriptionInactive"
    answer = await _call(h, m, "POST", f"{base}/00000000-0000-0000-0000-000000000000/rotate-credentials", status=404)
    assert answer["errors"][0]["reason"].startswith("subscriptionId:")
    response = await h.client.post(f"{base}/{webcal['subscriptionId']}/rotate-credentials", headers=other.headers)
    assert response.status == 403
