"""The feed service consumes real envelopes from RabbitMQ and serves what they describe."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import time
import uuid
from datetime import timedelta

import icalendar

from services.feed.app_keys import FEEDS
from shared.messages import SubscriptionEventAccepted
from tests.integration.feed import messages as m
from tests.integration.feed.conftest import FeedHarness

ACCOUNT = uuid.uuid4()


def summaries(body: bytes) -> list[str]:
    calendar = icalendar.Calendar.from_ical(body)
    return sorted(str(e["SUMMARY"]) for e in calendar.walk("VEVENT"))


def has(*titles: str):  # type: ignore[no-untyped-def]
    return lambda status, body: status == 200 and all(t.encode() in body for t in titles)


async def publish_calendar(feed: FeedHarness, **overrides: object) -> m.CalendarData:
    cal = m.calendar(ACCOUNT, **overrides)
    await feed.publish("calendar.created", cal)
    return cal


async def test_a_subscription_feed_serves_the_calendar_events_as_rfc5545(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    game = m.event(cal, "Opening game, part 1; é", day=10, notify_before=30, location="Arena")
    allday = m.event(cal, "Fan day", start="2026-03-12", end="2026-03-13", all_day=True)
    sub = m.subscription(cal)
    for kind, data in (("event.created", game), ("event.created", allday), ("subscription.created", sub)):
        await feed.publish(kind, data)
    path = f"/v1/webcal/{sub.subscription_id}"
    status, body = await feed.wait_for(path, has("Opening game", "Fan day"))
    assert status == 200
    assert b"\r\n" in body and b"\n" not in body.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))
    calendar = icalendar.Calendar.from_ical(body)
    assert b"X-WR-CALNAME:Acme\\, Games\\; 2026" in body
    # No METHOD: PUBLISH would oblige every event to name an ORGANIZER (RFC 5546), libical checks it.
    assert b"METHOD" not in body and b"REFRESH-INTERVAL;VALUE=DURATION:PT30M" in body
    assert b"X-PUBLISHED-TTL:PT30M" in body
    assert f"https://api.example.test/v1/unsubscribe/{sub.subscription_id}" in str(calendar["X-WR-CALDESC"])
    assert "UID" not in calendar
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["America/New_York"]
    events = {str(e["SUMMARY"]): e for e in calendar.walk("VEVENT")}
    timed = events["Opening game, part 1; é"]
    assert timed["UID"] == f"{game.event_id}"
    assert timed["DTSTART"].params["TZID"] == "America/New_York"
    assert timed.decoded("DTSTART").utcoffset() == timedelta(hours=-4)  # after the DST change of March 8
    assert timed.decoded("DTSTAMP") == game.changed_at
    assert timed.walk("VALARM")[0].decoded("TRIGGER") == timedelta(minutes=-30)
    day = events["Fan day"]
    assert str(day.decoded("DTSTART")) == "2026-03-12" and str(day.decoded("DTEND")) == "2026-03-14"

    response = await feed.client.get(path)
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert response.headers["Cache-Control"].startswith("private")
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert (await feed.client.get(path, headers={"If-None-Match": etag})).status == 304
    last_modified = response.headers["Last-Modified"]
    assert (await feed.client.get(path, headers={"If-Modified-Since": last_modified})).status == 304
    head = await feed.client.head(path)
    assert head.status == 200 and await head.read() == b"" and head.headers["ETag"] == etag
    zipped = await feed.client.get(path, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await zipped.read()) == body


async def test_the_same_state_renders_the_same_bytes(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    await feed.publish("event.created", m.event(cal, "Match", recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"]))
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    _, first = await feed.wait_for(path, has("Match"))
    feed.client.app[FEEDS]._forget_all()
    second = await (await feed.client.get(path)).read()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()


async def test_filters_select_by_tags_time_zone_tag_include_and_exclude_lists(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    home, away = m.tag(cal, "Home"), m.tag(cal, "Away")
    events = {
        "home": m.event(cal, "Home game", tag_ids=[home.tag_id], external_id="ext-home"),
        "away": m.event(cal, "Away game", day=2, tag_ids=[away.tag_id], external_id="ext-away"),
        "east": m.event(cal, "East only", day=3, time_zone_tag="Eastern Standard Time"),
        "pacific": m.event(cal, "Pacific only", day=4, time_zone_tag="Pacific Standard Time"),
    }
    for t in (home, away):
        await feed.publish("tag.created", t)
    for e in events.values():
        await feed.publish("event.created", e)
    by_tag = m.subscription(cal, calendar_tags=m.tags_of(home))
    by_zone = m.subscription(cal, time_zone_tag="Eastern Standard Time")
    included = m.subscription(cal, request_event_ids=[events["east"].event_id], external_event_ids=["ext-away"])
    excluded = m.subscription(
        cal, exclude_request_event_ids=[events["east"].event_id], exclude_external_event_ids=["ext-home"]
    )
    everything = m.subscription(cal)
    for s in (by_tag, by_zone, included, excluded, everything):
        await feed.publish("subscription.created", s)
    _, body = await feed.wait_for(f"/v1/webcal/{everything.subscription_id}", has("Pacific only"))
    assert summaries(body) == ["Away game", "East only", "Home game", "Pacific only"]
    _, body = await feed.wait_for(f"/v1/webcal/{excluded.subscription_id}", has("Away game"))
    assert summaries(body) == ["Away game", "Pacific only"]
    _, body = await feed.wait_for(f"/v1/webcal/{by_tag.subscription_id}", has("Home game"))
    assert summaries(body) == ["Home game"]
    _, body = await feed.wait_for(f"/v1/webcal/{by_zone.subscription_id}", has("East only"))
    assert summaries(body) == ["Away game", "East only", "Home game"]
    _, body = await feed.wait_for(f"/v1/webcal/{included.subscription_id}", has("East only"))
    assert summaries(body) == ["Away game", "East only"]


async def test_updates_apply_only_when_newer_and_cancellations_stay_visible(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    original = m.event(cal, "Kickoff")
    sub = m.subscription(cal)
    await feed.publish("event.created", original)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    await feed.wait_for(path, has("Kickoff"))
    etag = (await feed.client.get(path)).headers["ETag"]
    renamed = original.model_copy(update={"title": "Kickoff moved", "sequence": 3})
    stale = original.model_copy(update={"title": "Kickoff stale", "sequence": 2})
    await feed.publish("event.updated", renamed)
    await feed.publish("event.updated", stale)
    await feed.publish("event.updated", renamed)
    _, body = await feed.wait_for(path, has("Kickoff moved"))
    assert summaries(body) == ["Kickoff moved"]
    assert b"SEQUENCE:3" in body
    assert (await feed.client.get(path, headers={"If-None-Match": etag})).status == 200
    cancelled = renamed.model_copy(update={"sequence": 4, "status": "cancelled", "deleted": True})
    await feed.publish("event.deleted", cancelled)
    _, body = await feed.wait_for(path, has("STATUS:CANCELLED"))
    event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == 4


async def test_a_protected_calendar_needs_the_webcal_credentials(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed, protected=True)
    password = "s3cret-token"
    sub = m.subscription(
        cal,
        feed_username="fan",
        feed_password_hash="sha256:" + hashlib.sha256(password.encode()).hexdigest(),
    )
    await feed.publish("event.created", m.event(cal, "Private game"))
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    await feed.wait_for(path, lambda s, _: s == 401)
    response = await feed.client.get(path)
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
    good = "Basic " + base64.b64encode(f"fan:{password}".encode()).decode()
    bad = "Basic " + base64.b64encode(b"fan:wrong").decode()
    assert (await feed.client.get(path, headers={"Authorization": bad})).status == 401
    _, body = await feed.wait_for(path, has("Private game"), headers={"Authorization": good})
    assert b"Private game" in body
    download = await feed.client.get(f"/v1/calendars/{cal.account_code}/{cal.code}.ics")
    assert download.status == 403


async def test_a_deactivated_subscription_keeps_only_what_existed_before(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    sub = m.subscription(cal)
    await feed.publish("event.created", m.event(cal, "Before"))
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    await feed.wait_for(path, has("Before"))
    ended = sub.model_copy(update={"active": False, "deactivated_at": m.BASE + timedelta(days=1), "version": 2})
    await feed.publish("subscription.deactivated", ended)
    later = m.event(cal, "After", day=5, created_at=m.BASE + timedelta(days=2))
    await feed.publish("event.created", later)
    other = m.subscription(cal)
    await feed.publish("subscription.created", other)
    await feed.wait_for(f"/v1/webcal/{other.subscription_id}", has("After"))
    _, body = await feed.wait_for(path, lambda s, b: b"After" not in b)
    assert summaries(body) == ["Before"]


async def test_manual_and_subscription_events_belong_only_to_their_subscriptions(feed: FeedHarness) -> None:
    cal = await publish_calendar(feed)
    await feed.publish("event.created", m.event(cal, "Public"))
    mine, theirs = m.subscription(cal), m.subscription(cal)
    manual = m.event(cal, "My own reminder", day=7, subscription_ids=[mine.subscription_id])
    # A manual event travels on its own event.* message, naming its subscription.
    await feed.publish("event.created", manual)
    await feed.publish("subscription.created", mine)
    await feed.publish("subscription.created", theirs)
    special = m.event(cal, "Meet the team", day=8, subscription_ids=[theirs.subscription_id])
    await feed.publish(
        "subscription_event.accepted",
        SubscriptionEventAccepted(event=special, subscription_ids=[theirs.subscription_id]),
    )
    _, body = await feed.wait_for(f"/v1/webcal/{mine.subscription_id}", has("My own reminder"))
    assert summaries(body) == ["My own reminder", "Public"]
    _, body = await feed.wait_for(f"/v1/webcal/{theirs.subscription_id}", has("Meet the team"))
    assert summaries(body) == ["Meet the team", "Public"]
    download = await feed.client.get(f"/v1/calendars/{cal.account_code}/{cal.code}.ics")
    assert download.status == 200
    assert download.headers["Content-Disposition"] == f'attachment; filename="{cal.code}.ics"'
    assert summaries(await download.read()) == ["Public"]


async def test_a_subscription_message_from_before_manual_events_travelled_alone_still_brings_its_events(
    feed: FeedHarness,
) -> None:
    cal = await publish_calendar(feed)
    sub = m.subscription(cal)
    manual = m.event(cal, "Old style reminder", day=9, subscription_ids=[sub.subscription_id])
    # Such a message may still wait in a queue during a deploy: its `events` list is an extra field now.
    legacy = m.SubscriptionData.model_validate(
        {**sub.model_dump(mode="json", by_alias=True), "events": [manual.model_dump(mode="json", by_alias=True)]}
    )
    await feed.publish("subscription.created", legacy)
    _, body = await feed.wait_for(f"/v1/webcal/{sub.subscription_id}", has("Old style reminder"))
    assert summaries(body) == ["Old style reminder"]


async def test_an_unknown_subscription_is_a_404(feed: FeedHarness) -> None:
    assert (await feed.client.get(f"/v1/webcal/{uuid.uuid4()}")).status == 404
    assert (await feed.client.get("/v1/webcal/not-a-uuid")).status == 404
    assert (await feed.client.get("/v1/calendars/nobody/nothing.ics")).status == 404


async def test_a_poison_message_goes_to_the_dead_letter_queue_and_the_rest_still_apply(
    feed: FeedHarness, amqp_connection, amqp_names
) -> None:  # type: ignore[no-untyped-def]
    cal = await publish_calendar(feed)
    await feed.publish_raw("event.created", b'{"not": "an envelope"}', str(uuid.uuid4()))
    # A zone no service knows (ingest refuses it); a bad recurrence line is only left out now.
    broken = m.event(cal, "Broken", timezone="Mars/Olympus")
    await feed.publish("event.created", broken)
    sub = m.subscription(cal)
    await feed.publish("event.created", m.event(cal, "Fine"))
    await feed.publish("subscription.created", sub)
    _, body = await feed.wait_for(f"/v1/webcal/{sub.subscription_id}", has("Fine"))
    assert summaries(body) == ["Fine"]
    channel = await amqp_connection.channel()
    dlq = await channel.declare_queue(amqp_names("feed.projection.dlq"), passive=True)
    # Counted by taking them: a quorum queue's declare-ok count can lag behind what it holds.
    reasons: list[str] = []
    deadline = time.monotonic() + 20
    while len(reasons) < 2 and time.monotonic() < deadline:
        message = await dlq.get(fail=False, timeout=5)
        if message is None:
            await asyncio.sleep(0.2)
            continue
        reasons.append(str(((message.headers or {}).get("x-death") or [{}])[0].get("reason")))  # type: ignore[index, union-attr]
        await message.ack()
    assert sorted(reasons) == ["delivery_limit", "rejected"]


async def test_a_feed_process_that_was_down_catches_up_from_the_queue(
    database_url: str, amqp_url: str, amqp_names, amqp_connection
) -> None:  # type: ignore[no-untyped-def]
    from aiohttp.test_utils import TestClient, TestServer

    from services.feed.app import create_app
    from services.feed.settings import FeedSettings
    from shared.amqp import Publisher
    from shared.messages import make_envelope
    from shared.settings import PlatformSettings
    from tests.integration.feed.conftest import FeedHarness as Harness

    platform = PlatformSettings(database_url=database_url, amqp_url=amqp_url, amqp_prefix=amqp_names.prefix)
    settings = FeedSettings(platform=platform, recheck_seconds=1)
    first = TestClient(TestServer(create_app(platform, "all", settings)))
    await first.start_server()  # declares feed.projection, then goes away
    await first.close()
    publisher = Publisher(amqp_connection, amqp_names)
    cal = m.calendar(ACCOUNT)
    sub = m.subscription(cal)
    for kind, data in (
        ("calendar.created", cal),
        ("event.created", m.event(cal, "Changed while down")),
        ("subscription.created", sub),
    ):
        envelope = make_envelope(kind, data)
        await publisher.publish(envelope.to_bytes(), kind, str(envelope.id))
    second = TestClient(TestServer(create_app(platform, "all", settings)))
    await second.start_server()
    try:
        _, body = await Harness(second, publisher).wait_for(
            f"/v1/webcal/{sub.subscription_id}", has("Changed while down")
        )
        assert summaries(body) == ["Changed while down"]
    finally:
        await second.close()
        await publisher.close()
        channel = await amqp_connection.channel()
        for name in ("feed.projection", "feed.projection.dlq", "kalends.unrouted"):
            await channel.queue_delete(amqp_names(name))
