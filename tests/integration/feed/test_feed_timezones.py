"""Feeds valid for every year: events in 1995 and 2060 at the tz database's instants in ical.js, libical,
vobject and recurring-ical-events, whose restriction check (libical) passes; and an event with an
EXDATE in a retired Windows zone, which the projection once dead-lettered, is in the feed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.integration.feed import messages as m
from tests.integration.feed.conftest import FeedHarness
from tests.tools.feed_parsers import parse_everywhere

ZONES = ["Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Sydney", "America/Sao_Paulo"]
# ical.js takes no onset from the DTSTART of an observance that has RDATEs: Amsterdam's 1945 change is one.
ALSO = [("Europe/Amsterdam", 1960), ("Etc/GMT+2", 2026), ("Africa/Casablanca", 2030), ("Asia/Jerusalem", 2060)]


def instants(zone: str, first: datetime, weeks: int) -> list[str]:
    tz = ZoneInfo(zone)
    moments = [(first + timedelta(weeks=w)).replace(tzinfo=tz) for w in range(weeks)]
    return [moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for moment in moments]


async def test_weekly_events_in_1995_and_2060_are_at_the_tz_databases_instants_in_every_parser(
    feed: FeedHarness,
) -> None:
    cal = m.calendar(uuid.uuid4())
    await feed.publish("calendar.created", cal)
    expected = {}
    for zone, year in [(zone, year) for zone in ZONES for year in (1995, 2060)] + ALSO:
        first = datetime(year, 1, 3, 18, 30)
        event = m.event(
            cal,
            f"{zone} {year}",
            start=first.isoformat(),
            end=(first + timedelta(hours=2)).isoformat(),
            timezone=zone,
            recurrence=["RRULE:FREQ=WEEKLY;COUNT=52"],
            notify_before=15,
        )
        await feed.publish("event.created", event)
        expected[str(event.event_id)] = instants(zone, first, 52)
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    status, body = await feed.wait_for(path, lambda s, b: b.count(b"BEGIN:VEVENT") == len(expected))
    assert status == 200
    seen = parse_everywhere(body, until_year=2062)
    for uid, occurrences in expected.items():
        assert seen[uid]["occurrences"] == occurrences, seen[uid]["summary"]
    assert body.count(b"BEGIN:VTIMEZONE") == len(ZONES) + len(ALSO)
    assert b"COMMENT" not in body and b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3" in body
    _, again = await feed.wait_for(path, lambda s, b: True)
    assert again == body


async def test_an_event_with_an_exdate_in_a_retired_windows_zone_reaches_the_feed(feed: FeedHarness) -> None:
    cal = m.calendar(uuid.uuid4())
    await feed.publish("calendar.created", cal)
    # 2026-03-08 21:00 at UTC-2 (Mid-Atlantic Standard Time) is 19:00 EDT in New York: the second game.
    exdate = "EXDATE;TZID=Mid-Atlantic Standard Time:20260308T210000"
    event = m.event(cal, "Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3", exdate])
    await feed.publish("event.created", event)
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    status, body = await feed.wait_for(f"/v1/webcal/{sub.subscription_id}", lambda s, b: b"BEGIN:VEVENT" in b)
    assert status == 200 and b"BEGIN:VEVENT" in body
    seen = parse_everywhere(body)
    assert seen[str(event.event_id)]["occurrences"] == ["2026-03-02T00:00:00Z", "2026-03-15T23:00:00Z"]
