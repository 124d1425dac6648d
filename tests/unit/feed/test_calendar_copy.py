"""A calendar copy's Last-Modified for its subscribers: the later of the calendar's and the subscription's changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from services.feed.calendar_copy import CalendarCopy

CALENDAR_CHANGED = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def copy_of(feed_changed_at: datetime | None, changed_at: datetime) -> CalendarCopy:
    record = {"protected": False, "feed_changed_at": feed_changed_at, "changed_at": changed_at}
    return CalendarCopy(3, record, None, "games.ics", 'inline; filename="games.ics"')  # type: ignore[arg-type]


def test_a_subscription_older_than_its_calendar_takes_the_calendars_date_rounded_up() -> None:
    copy = copy_of(CALENDAR_CHANGED, CALENDAR_CHANGED - timedelta(days=1))
    for subscription_changed_at in (None, CALENDAR_CHANGED - timedelta(hours=1), CALENDAR_CHANGED):
        moment, text = copy.stamp(subscription_changed_at)
        assert moment == datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC)
        assert text == "Sun, 01 Mar 2026 12:00:01 GMT" == format_datetime(moment, usegmt=True)


def test_a_subscription_changed_after_its_calendar_takes_its_own_date() -> None:
    copy = copy_of(None, CALENDAR_CHANGED)
    later = datetime(2026, 3, 2, 8, 30, 0, tzinfo=UTC)
    assert copy.stamp(later) == (later, "Mon, 02 Mar 2026 08:30:00 GMT")
    assert copy.stamp(later + timedelta(microseconds=1)) == (
        later + timedelta(seconds=1),
        "Mon, 02 Mar 2026 08:30:01 GMT",
    )
    # A time zone other than UTC is the same moment, written in GMT.
    elsewhere = later.astimezone(ZoneInfo("Asia/Tokyo"))
    assert copy.stamp(elsewhere) == (later, "Mon, 02 Mar 2026 08:30:00 GMT")
