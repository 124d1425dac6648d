"""Recurring events across DST changes, in several zones, read alike by ical.js, libical, vobject and
recurring-ical-events, and at the instants the tz database gives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.integration.feed import messages as m
from tests.integration.feed.conftest import FeedHarness
from tests.tools.feed_parsers import parse_everywhere

ZONES = {
    "Eastern Standard Time": "America/New_York",  # a Windows id, mapped through CLDR
    "Europe/Berlin": "Europe/Berlin",
    "Australia/Sydney": "Australia/Sydney",
    "America/Santiago": "America/Santiago",
}


def expected(zone: str, first: datetime, weeks: int, skip: set[int]) -> list[str]:
    tz = ZoneInfo(zone)
    out = []
    for week in range(weeks):
        if week in skip:
            continue
        local = (first + timedelta(weeks=week)).replace(tzinfo=tz)
        out.append(local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return out


async def test_weekly_events_across_dst_changes_agree_in_every_parser_and_with_the_tz_database(
    feed: FeedHarness,
) -> None:
    cal = await feed_calendar(feed)
    first = datetime(2026, 1, 6, 18, 30)
    events = {}
    for zone in ZONES:
        event = m.event(
            cal,
            f"Weekly in {zone}",
            start=first.isoformat(),
            end=(first + timedelta(hours=2)).isoformat(),
            timezone=zone,
            recurrence=["RRULE:FREQ=WEEKLY;COUNT=60", f"EXDATE:{(first + timedelta(weeks=3)):%Y%m%dT%H%M%S}"],
        )
        events[zone] = event
        await feed.publish("event.created", event)
    yearly = m.event(
        cal,
        "Anniversary",
        start="2026-02-28",
        end="2026-03-01",
        all_day=True,
        recurrence=["RRULE:FREQ=YEARLY;UNTIL=20290301"],
    )
    await feed.publish("event.created", yearly)
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    _, body = await feed.wait_for(f"/v1/webcal/{sub.subscription_id}", lambda s, b: b.count(b"BEGIN:VEVENT") == 5)
    seen = parse_everywhere(body)
    for zone, event in events.items():
        assert seen[f"{event.event_id}"]["occurrences"] == expected(ZONES[zone], first, 60, {3})
    assert seen[f"{yearly.event_id}"]["occurrences"] == ["2026-02-28", "2027-02-28", "2028-02-28", "2029-02-28"]
    assert body.count(b"BEGIN:VTIMEZONE") == 4


async def feed_calendar(feed: FeedHarness) -> m.CalendarData:
    cal = m.calendar(uuid.uuid4())
    await feed.publish("calendar.created", cal)
    return cal
