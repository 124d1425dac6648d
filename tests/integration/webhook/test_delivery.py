"""Deliveries end to end inside the webhook service: real RabbitMQ messages in, real HTTP out."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from standardwebhooks.webhooks import Webhook

from services.webhook import services
from services.webhook.adapters import repository as repo
from tests.integration.webhook.conftest import BOX, SCHEDULE, Worker, subscription, subscription_message
from tests.integration.webhook.receiver import Received, Receiver, Reply


async def add_endpoint(
    pool: asyncpg.Pool, account: uuid.UUID, url: str, types: list[str] | None = None
) -> repo.Endpoint:
    return await services.create_endpoint(
        pool, account, url=url, event_types=types, enabled=True, description="", allow_private=True, box=BOX
    )


async def deliveries(pool: asyncpg.Pool, account: uuid.UUID, endpoint_id: uuid.UUID) -> list[tuple[Any, list[Any]]]:
    page = await services.list_deliveries(pool, account, endpoint_id, limit=100, status=None, before=None)
    return page.deliveries


async def wait_status(
    pool: asyncpg.Pool, account: uuid.UUID, endpoint_id: uuid.UUID, status: str, count: int = 1, timeout: float = 15.0
) -> list[tuple[Any, list[Any]]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in await deliveries(pool, account, endpoint_id) if d[0]["status"] == status]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"no {count} {status} deliveries after {timeout}s"
        await asyncio.sleep(0.1)


def verify(endpoint_secret: str, request: Received) -> Any:
    return Webhook(endpoint_secret).verify(request.body, request.headers)


EXPECTED_SUBSCRIBE = {
    "actionType": "SubscriptionViaCalendarPage",
    "calendarSubscriptionId": "a3811c49-2589-4f4b-870c-b883fe0c1e17",
    "merchantId": None,  # filled per test: the account id
    "merchantName": "Your Account",
    "calendarId": "4a2d4acb-bd05-e511-af43-067f1c947754",
    "calendarTitle": "My Sports Calendar",
    "subscriptionMethod": "Google",
    "calendarTags": [{"tagId": "6513319e-d3e1-4497-89ee-b5dcee9a58bc", "tagText": "Team G"}],
    "timeZoneTag": {"windowsName": "Eastern Standard Time"},
    "createdDateTimeUtc": "2017-03-15 03:48:24.822495",
    "subscriberExternalId": "crm-42",
    "emailAddress": "john.smith@gmail.com",
    "additionalOptIn": False,
    "isMarketingAllowed": True,
    "remoteIpAddress": "150.101.114.215",
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_3) AppleWebKit/537.36",
    "Referer": "http://google.com/",
    "enteredPostCode": "90210",
    "cableProvider": "DIRECTV",
    "cableProviderLocation": "New York",
    "deviceName": "Desktop",
    "utmSource": "Facebook",
    "utmMedium": "Display",
    "utmCampaign": "2017",
    "utmContent": "Mobile_320x50",
    "source": "youraccount.calreply.net",
}


async def test_a_subscription_created_message_reaches_the_endpoint_as_the_seeds_subscribe_event_object(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    endpoint = await add_endpoint(worker.pool, account, receiver.url("/hook"))
    envelope = subscription_message("subscription.created", subscription(account))
    await publish(envelope)

    (request,) = await receiver.wait_for("/hook", 1)
    assert request.json == {
        "eventId": str(envelope.id),
        "eventType": "Subscribe",
        "eventDetails": {**EXPECTED_SUBSCRIBE, "merchantId": str(account)},
    }
    assert request.headers["webhook-id"] == str(envelope.id)
    assert request.headers["Content-Type"] == "application/json"
    assert "Kalends" in request.headers["User-Agent"]
    assert verify(endpoint.secret, request)["eventId"] == str(envelope.id)
    ((_delivery, attempts),) = await wait_status(worker.pool, account, endpoint.id, "succeeded")
    assert [a["status_code"] for a in attempts] == [200]
    assert attempts[0]["response_body"] == b"ok"
    assert attempts[0]["duration_ms"] > 0


async def test_a_subscription_deactivated_message_reaches_the_endpoint_as_the_seeds_unsubscribe_event_object(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    await add_endpoint(worker.pool, account, receiver.url("/hook"))
    sub = subscription(
        account,
        subscription_type="webcal",
        active=False,
        action_type="DeactivatedByUsername",
        deactivated_at=datetime(2017, 3, 9, 23, 57, 0, 607846, tzinfo=UTC),
        unsubscribe_reason="The events have come to an end",
        request_event_ids=[uuid.UUID(int=1), uuid.UUID(int=2)],
        exclude_request_event_ids=[uuid.UUID(int=3)],
        email_address=None,
        marketing_allowed=None,
        utm_content=None,
    )
    envelope = subscription_message("subscription.deactivated", sub)
    await publish(envelope)

    (request,) = await receiver.wait_for("/hook", 1)
    expected = {
        **EXPECTED_SUBSCRIBE,
        "actionType": "DeactivatedByUsername",
        "calendarSubscriptionid": "a3811c49-2589-4f4b-870c-b883fe0c1e17",
        "merchantId": str(account),
        "subscriptionMethod": "Webcal",
        "providerLocation": "New York",
        "removedDateTimeUtc": "2017-03-09 23:57:00.607846",
        "unsubscribeResonText": "The events have come to an end",
        "requestEventIds": f"{uuid.UUID(int=1)},{uuid.UUID(int=2)}",
        "excludeRequestEventIds": str(uuid.UUID(int=3)),
    }
    # "Sometimes Present" fields without a value are left out, not sent as null.
    for absent in ("emailAddress", "isMarketingAllowed", "utmContent", "cableProviderLocation"):
        del expected[absent]
    assert request.json == {"eventId": str(envelope.id), "eventType": "Unsubscribe", "eventDetails": expected}


async def test_endpoints_get_only_the_event_types_they_chose_and_disabled_ones_get_nothing(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    await add_endpoint(worker.pool, account, receiver.url("/subscribes"), ["Subscribe"])
    await add_endpoint(worker.pool, account, receiver.url("/unsubscribes"), ["unsubscribe"])
    disabled = await add_endpoint(worker.pool, account, receiver.url("/disabled"))
    await services.update_endpoint(worker.pool, account, disabled.id, {"enabled": False}, allow_private=True)
    other_account = await add_endpoint(worker.pool, uuid.uuid4(), receiver.url("/other"))
    assert other_account

    await publish(subscription_message("subscription.created", subscription(account)))
    await publish(subscription_message("subscription.deactivated", subscription(account, active=False)))
    await publish(subscription_message("subscription.updated", subscription(account)))
    (subscribed,) = await receiver.wait_for("/subscribes", 1)
    (unsubscribed,) = await receiver.wait_for("/unsubscribes", 1)
    assert subscribed.json["eventType"] == "Subscribe"
    assert unsubscribed.json["eventType"] == "Unsubscribe"
    await asyncio.sleep(0.5)
    assert {r.path for r in receiver.received} == {"/subscribes", "/unsubscribes"}


async def test_the_same_message_delivered_twice_by_the_broker_is_sent_once(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    await add_endpoint(worker.pool, account, receiver.url("/hook"))
    envelope = subscription_message("subscription.created", subscription(account))
    await publish(envelope)
    await publish(envelope)
    await receiver.wait_for("/hook", 1)
    await asyncio.sleep(1.0)
    assert len(receiver.at("/hook")) == 1


async def test_a_receiver_failing_twice_gets_three_attempts_at_the_scheduled_times_with_one_webhook_id(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    endpoint = await add_endpoint(worker.pool, account, receiver.fail("/flaky", times=2, status=503))
    envelope = subscription_message("subscription.created", subscription(account))
    await publish(envelope)

    requests = await receiver.wait_for("/flaky", 3)
    ((delivery, attempts),) = await wait_status(worker.pool, account, endpoint.id, "succeeded")
    assert [r.status for r in requests] == [503, 503, 200]
    assert {r.headers["webhook-id"] for r in requests} == {str(envelope.id)}
    assert len({r.headers["webhook-signature"] for r in requests}) == 3  # signed afresh each time
    offsets = [r.at - requests[0].at for r in requests]
    for offset, due in zip(offsets, SCHEDULE, strict=False):
        assert due - 0.05 <= offset <= due + 0.6, (offsets, SCHEDULE)
    assert [(a["number"], a["status_code"], a["succeeded"]) for a in attempts] == [
        (1, 503, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert delivery["next_attempt_at"] is None
    for request in requests:
        assert verify(endpoint.secret, request)["eventId"] == str(envelope.id)
    await asyncio.sleep(1.5)
    assert len(receiver.at("/flaky")) == 3


async def test_a_receiver_that_never_succeeds_fails_when_the_window_closes_and_a_manual_retry_then_delivers(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    endpoint = await add_endpoint(worker.pool, account, receiver.fail("/down", times=len(SCHEDULE)))
    await publish(subscription_message("subscription.created", subscription(account)))

    ((delivery, attempts),) = await wait_status(worker.pool, account, endpoint.id, "failed")
    requests = receiver.at("/down")
    assert len(requests) == len(attempts) == len(SCHEDULE)
    assert requests[-1].at - requests[0].at == pytest.approx(SCHEDULE[-1], abs=0.6)
    assert delivery["failure_reason"] == "every attempt failed"
    await asyncio.sleep(1.2)
    assert len(receiver.at("/down")) == len(SCHEDULE)  # nothing after the window

    await services.retry_delivery(worker.pool, account, delivery["id"])
    row, attempts = await services.wait_for_attempt(
        worker.pool, account, delivery["id"], attempts_before=len(SCHEDULE), timeout=5
    )
    assert row["status"] == "succeeded"
    assert [a["trigger"] for a in attempts] == ["scheduled"] * len(SCHEDULE) + ["manual"]
    assert attempts[-1]["succeeded"] is True
    assert len(receiver.at("/down")) == len(SCHEDULE) + 1
    assert len({r.headers["webhook-id"] for r in receiver.at("/down")}) == 1


@pytest.mark.parametrize("status", [301, 302, 304])
async def test_a_redirect_or_not_modified_answer_is_a_failure_and_is_not_followed(
    worker: Worker, receiver: Receiver, publish: Any, status: int
) -> None:
    account = uuid.uuid4()
    target = receiver.url("/elsewhere")
    url = receiver.script(
        "/moved", Reply(status, headers={"Location": target}), then=Reply(status, headers={"Location": target})
    )
    endpoint = await add_endpoint(worker.pool, account, url)
    await publish(subscription_message("subscription.created", subscription(account)))
    await receiver.wait_for("/moved", 2)
    found = await deliveries(worker.pool, account, endpoint.id)
    (delivery, attempts) = found[0]
    assert delivery["status"] == "pending"
    assert attempts[0]["status_code"] == status
    assert attempts[0]["succeeded"] is False
    assert receiver.at("/elsewhere") == []


async def test_a_receiver_slower_than_the_timeout_is_a_failure(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    endpoint = await add_endpoint(worker.pool, account, receiver.script("/slow", Reply(200, delay=2.0)))
    await publish(subscription_message("subscription.created", subscription(account)))
    await receiver.wait_for("/slow", 2, timeout=10)
    (_delivery, attempts) = (await deliveries(worker.pool, account, endpoint.id))[0]
    first = attempts[0]
    assert first["succeeded"] is False
    assert first["status_code"] is None
    assert "timed out after 1 s" in first["error"]
    assert 900 <= first["duration_ms"] <= 1600


async def test_only_the_first_20_kb_of_a_response_body_are_kept(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    endpoint = await add_endpoint(worker.pool, account, receiver.script("/big", Reply(500, body=b"x" * 50_000)))
    await publish(subscription_message("subscription.created", subscription(account)))
    await receiver.wait_for("/big", 2)
    (_delivery, attempts) = (await deliveries(worker.pool, account, endpoint.id))[0]
    assert attempts[0]["status_code"] == 500
    assert attempts[0]["response_body"] == b"x" * 20 * 1024


async def test_signatures_verify_after_a_secret_rotation_with_the_new_secret_and_during_the_grace_with_the_old(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    endpoint = await add_endpoint(worker.pool, account, receiver.url("/hook"))
    rotated = await services.rotate_secret(worker.pool, account, endpoint.id, box=BOX)
    assert rotated.secret != endpoint.secret and rotated.secret.startswith("whsec_")
    await publish(subscription_message("subscription.created", subscription(account)))
    (request,) = await receiver.wait_for("/hook", 1)
    assert verify(rotated.secret, request)["eventType"] == "Subscribe"
    assert verify(endpoint.secret, request)["eventType"] == "Subscribe"

    from datetime import timedelta

    final = await services.rotate_secret(worker.pool, account, endpoint.id, timedelta(0), box=BOX)
    await publish(subscription_message("subscription.created", subscription(account)))
    (_, second) = await receiver.wait_for("/hook", 2)
    assert verify(final.secret, second)["eventType"] == "Subscribe"
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    for old in (endpoint.secret, rotated.secret):
        with pytest.raises(Exception, match="No matching signature found"):
            verify(old, second)


async def test_a_slow_endpoint_does_not_delay_deliveries_to_another(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    await worker.stop()
    await worker.start(endpoint_concurrency=2, timeout=3.0)
    account = uuid.uuid4()
    await add_endpoint(worker.pool, account, receiver.script("/slow", then=Reply(200, delay=1.0)))
    await add_endpoint(worker.pool, account, receiver.url("/fast"))
    started = time.time()
    for _ in range(12):
        await publish(subscription_message("subscription.created", subscription(account)))
    fast = await receiver.wait_for("/fast", 12, timeout=5)
    assert fast[-1].at - started < 1.5
    assert len(receiver.at("/slow")) <= 6  # two at a time, a second each: far behind


async def test_the_test_event_goes_through_the_pipeline_as_the_seeds_test_event_object(
    worker: Worker, receiver: Receiver
) -> None:
    account = uuid.uuid4()
    endpoint = await add_endpoint(worker.pool, account, receiver.url("/hook"))
    delivery_id = await services.send_test_event(worker.pool, account, endpoint.id)
    (request,) = await receiver.wait_for("/hook", 1)
    body = request.json
    assert body["eventType"] == "Test"
    assert body["eventDetails"]["message"] == "This is a test payload"
    sent = datetime.strptime(body["eventDetails"]["date"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 5
    assert set(body) == {"eventId", "eventType", "eventDetails"}
    assert verify(endpoint.secret, request)
    row, _attempts = await services.wait_for_attempt(worker.pool, account, delivery_id, attempts_before=0, timeout=3)
    assert row["status"] == "succeeded"
    assert json.loads(bytes(row["body"])) == body
