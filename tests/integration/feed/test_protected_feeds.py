"""A protected calendar's feeds fail closed: no stored credential hash means no feed for anyone."""

from __future__ import annotations

import base64
import hashlib
import uuid

from tests.integration.feed import messages as m
from tests.integration.feed.conftest import FeedHarness

ACCOUNT = uuid.uuid4()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def sha256(password: str) -> str:
    return "sha256:" + hashlib.sha256(password.encode()).hexdigest()


async def test_a_subscription_made_before_its_calendar_became_protected_gets_no_feed_afterwards(
    feed: FeedHarness,
) -> None:
    cal = m.calendar(ACCOUNT)
    await feed.publish("calendar.created", cal)
    await feed.publish("event.created", m.event(cal, "Members only"))
    sub = m.subscription(cal, subscriber_id="early-fan")
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    status, body = await feed.wait_for(path, lambda s, b: s == 200 and b"Members only" in b)
    assert status == 200, body  # served (and cached) while the calendar was public

    await feed.publish("calendar.updated", cal.model_copy(update={"protected": True, "version": 2}))
    status, body = await feed.wait_for(path, lambda s, _: s == 401)
    assert status == 401, body
    for headers in ({}, basic("early-fan", ""), basic("early-fan", "anything"), basic("", "")):
        response = await feed.client.get(path, headers=headers)
        assert response.status == 401, headers
        assert b"Members only" not in await response.read()
    assert (await feed.client.head(path)).status == 401


async def test_a_google_subscription_of_a_protected_calendar_gets_no_feed(feed: FeedHarness) -> None:
    cal = m.calendar(ACCOUNT, protected=True)
    await feed.publish("calendar.created", cal)
    await feed.publish("event.created", m.event(cal, "Pushed to Google only"))
    sub = m.subscription(cal, subscription_type="google", subscriber_id="g-fan")
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    status, body = await feed.wait_for(path, lambda s, _: s == 401)
    assert status == 401 and b"Pushed to Google only" not in body
    assert (await feed.client.get(path, headers=basic("g-fan", "guess"))).status == 401


async def test_a_protected_feed_whose_hash_is_missing_refuses_every_credential(feed: FeedHarness) -> None:
    cal = m.calendar(ACCOUNT, protected=True)
    await feed.publish("calendar.created", cal)
    await feed.publish("event.created", m.event(cal, "Hidden"))
    # A username without a hash (a lost or never-issued password).
    sub = m.subscription(cal, feed_username="fan", feed_password_hash=None)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    status, _ = await feed.wait_for(path, lambda s, _: s == 401)
    assert status == 401
    for headers in (basic("fan", ""), basic("fan", "x"), {"Authorization": "Bearer whatever"}):
        assert (await feed.client.get(path, headers=headers)).status == 401


async def test_new_credentials_replace_the_old_ones_at_the_feed(feed: FeedHarness) -> None:
    cal = m.calendar(ACCOUNT, protected=True)
    await feed.publish("calendar.created", cal)
    await feed.publish("event.created", m.event(cal, "Rotated"))
    sub = m.subscription(cal, feed_username="fan", feed_password_hash=sha256("old-password"))
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    status, _ = await feed.wait_for(path, lambda s, _: s == 200, headers=basic("fan", "old-password"))
    assert status == 200
    rotated = sub.model_copy(update={"feed_password_hash": sha256("new-password"), "version": 2})
    await feed.publish("subscription.updated", rotated)
    status, _ = await feed.wait_for(path, lambda s, _: s == 401, headers=basic("fan", "old-password"))
    assert status == 401
    assert (await feed.client.get(path, headers=basic("fan", "new-password"))).status == 200
