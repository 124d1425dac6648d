"""Through ingest: a merchant's subscribe and unsubscribe calls reach the merchant's webhook as the
seed's objects, everything driven over HTTP (auth, ingest, webhook as processes)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from shared.testing import Stack
from tests.e2e.webhook.conftest import Merchant
from tests.integration.webhook.receiver import Receiver

pytestmark = pytest.mark.e2e


async def ingest(merchant: Merchant, stack: Stack, method: str, path: str, body: Any, want: int) -> Any:
    async with merchant.session.request(method, stack.url("ingest") + path, json=body) as response:
        payload = await response.json() if response.status != 204 else None
        assert response.status == want, payload
        return payload


async def test_subscribing_and_unsubscribing_through_ingest_sends_the_seeds_objects_to_the_webhook(
    webhook_stack: Stack, merchant: Merchant, receiver: Receiver
) -> None:
    stack = webhook_stack
    code = merchant.code
    calendar = f"cal{uuid.uuid4().hex[:6]}"
    await ingest(
        merchant, stack, "POST", f"/v1/calendars/{code}", {"code": calendar, "name": "My Sports Calendar"}, 201
    )
    tag = await ingest(merchant, stack, "POST", f"/v1/calendars/{code}/{calendar}/tags", {"name": "Team G"}, 201)
    async with merchant.session.post(merchant.url(), json={"url": receiver.url("/crm")}) as response:
        webhook = await response.json()
        assert response.status == 201, webhook

    user_agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_3) AppleWebKit/537.36 Chrome/56.0 Safari/537.36"
    accepted = time.time()
    subscribed = await ingest(
        merchant,
        stack,
        "POST",
        f"/v1/subscribe/{code}/{calendar}",
        {
            "subscriberId": "crm-42",
            "emailAddress": "john.smith@gmail.com",
            "additionalOptIn": False,
            "marketingAllowed": True,
            "calendarTags": [{"internalId": tag["id"]}],
            "timeZoneId": "Eastern Standard Time",
            "utmSource": "Facebook",
            "utmMedium": "Display",
            "utmCampaign": "2017",
            "utmContent": "Mobile_320x50",
            "userAgent": user_agent,
            "urlReferrer": "http://google.com/",
            "ipAddress": "150.101.114.215",
            "subscriptionMethod": "WebCal",
            "enteredPostCode": "90210",
        },
        200,
    )
    (request,) = await receiver.wait_for("/crm", 1, timeout=15)
    assert request.at - accepted < 5
    assert Webhook(webhook["secret"]).verify(request.body, request.headers)
    event = request.json
    assert set(event) == {"eventId", "eventType", "eventDetails"}
    assert event["eventType"] == "Subscribe"
    details = event["eventDetails"]
    created_utc = details.pop("createdDateTimeUtc")
    assert len(created_utc) == len("2017-03-15 03:48:24.822495") and created_utc[10] == " "
    assert details.pop("source")  # the referrer's domain, as ingest computes it
    assert details == {
        "actionType": "SubscriptionViaWebApi",
        "calendarSubscriptionId": subscribed["subscriptionId"],
        "merchantId": merchant.account["accountId"],
        "merchantName": merchant.account["name"],
        "calendarId": details["calendarId"],
        "calendarTitle": "My Sports Calendar",
        "subscriptionMethod": "Webcal",
        "calendarTags": [{"tagId": tag["id"], "tagText": "Team G"}],
        "timeZoneTag": {"windowsName": "Eastern Standard Time"},
        "subscriberExternalId": "crm-42",
        "emailAddress": "john.smith@gmail.com",
        "additionalOptIn": False,
        "isMarketingAllowed": True,
        "remoteIpAddress": "150.101.114.215",
        "userAgent": user_agent,
        "Referer": "http://google.com/",
        "enteredPostCode": "90210",
        "deviceName": details["deviceName"],
        "utmSource": "Facebook",
        "utmMedium": "Display",
        "utmCampaign": "2017",
        "utmContent": "Mobile_320x50",
    }
    uuid.UUID(details["calendarId"])
    assert details["deviceName"]

    await ingest(
        merchant, stack, "DELETE", f"/v1/subscription/{code}/{calendar}", {"id": subscribed["subscriptionId"]}, 200
    )
    (_, second) = await receiver.wait_for("/crm", 2, timeout=15)
    gone = second.json
    assert gone["eventType"] == "Unsubscribe"
    assert gone["eventId"] != event["eventId"]
    assert gone["eventDetails"]["actionType"] == "DeactivatedById"
    assert gone["eventDetails"]["calendarSubscriptionid"] == subscribed["subscriptionId"]
    assert gone["eventDetails"]["calendarSubscriptionId"] == subscribed["subscriptionId"]
    assert gone["eventDetails"]["removedDateTimeUtc"] >= gone["eventDetails"]["createdDateTimeUtc"]
    assert gone["eventDetails"]["calendarTags"] == [{"tagId": tag["id"], "tagText": "Team G"}]

    # The record shows both deliveries, succeeded at the first attempt.
    deadline = time.monotonic() + 5
    while True:
        async with merchant.session.get(merchant.url(f"/{webhook['id']}/deliveries")) as response:
            page = await response.json()
        if all(d["status"] != "pending" for d in page["deliveries"]) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert [(d["eventType"], d["status"], d["attemptCount"]) for d in page["deliveries"]] == [
        ("Unsubscribe", "succeeded", 1),
        ("Subscribe", "succeeded", 1),
    ]
    await asyncio.sleep(0.5)
    assert len(receiver.at("/crm")) == 2
