"""VTIMEZONEs valid for every year: RRULEs for the zone's current rules, RDATE history from the feed's first year.

Each VTIMEZONE is read back here the way RFC 5545 3.6.5 defines it (every observance's onsets from
DTSTART, RDATE and RRULE, in the local time before the change; the offset in force is the latest
onset's TZOFFSETTO) and compared with the tz database at every change and twice a year to 2100.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from dateutil.rrule import rruleset, rrulestr

from shared.ical import CalendarHeader, EventInput, assemble, render_event, render_header
from shared.vtimezone import zone_history
from shared.zone_needs import first_years, vtimezone_block, zone_need

END = datetime(2100, 1, 1)


def onsets(block: bytes) -> list[tuple[datetime, timedelta]]:
    calendar = icalendar.Calendar.from_ical(b"BEGIN:VCALENDAR\r\n" + block + b"END:VCALENDAR\r\n")
    found = []
    for observance in calendar.walk("VTIMEZONE")[0].subcomponents:
        start = observance.decoded("DTSTART")
        before, after = observance.decoded("TZOFFSETFROM"), observance.decoded("TZOFFSETTO")
        moments = rruleset()
        moments.rdate(start)
        if "RRULE" in observance:
            moments.rrule(rrulestr(observance["RRULE"].to_ical().decode(), dtstart=start))
        rdates = observance.get("RDATE", [])
        for value in rdates if isinstance(rdates, list) else [rdates]:
            for item in value.dts:
                moments.rdate(item.dt)
        found += [((local - before).replace(tzinfo=UTC), after) for local in moments.between(start, END, inc=True)]
    return sorted(found)


def offset_at(changes: list[tuple[datetime, timedelta]], instant: datetime) -> timedelta | None:
    in_force = None
    for when, offset in changes:
        if when > instant:
            break
        in_force = offset
    return in_force


@pytest.mark.parametrize(
    ("tzid", "first_year"),
    [
        ("Europe/Berlin", 1994),
        ("Europe/Berlin", 2026),
        ("America/New_York", 1950),
        ("America/Santiago", 1995),  # changes at 24:00 on a Saturday: a Sunday within days 2 to 8
        ("Asia/Jerusalem", 1990),  # the Friday before the last Sunday of March
        ("America/Nuuk", 2000),  # at 22:00 UTC-2 on the Saturday before the last Sunday
        ("Australia/Lord_Howe", 1980),  # half-hour DST
        ("Africa/Casablanca", 2010),  # Ramadan: explicit changes until 2087, none after
        ("America/Sao_Paulo", 1995),  # DST abolished in 2019
        ("Asia/Kolkata", 1900),  # local mean time, offsets in seconds
        ("Europe/Dublin", 1960),  # negative DST in the tz database
        ("Etc/GMT+2", 2026),  # never changes
    ],
)
def test_a_vtimezone_gives_the_tz_databases_offset_at_every_change_from_its_first_year_to_2100(
    tzid: str, first_year: int
) -> None:
    block = vtimezone_block(tzid, first_year)
    changes = onsets(block)
    zone = ZoneInfo(tzid)
    instants = [
        moment
        for change in zone_history(tzid).transitions
        if change.at.year >= first_year
        for moment in (change.at - timedelta(seconds=1), change.at)
    ]
    instants += [datetime(year, month, 1, tzinfo=UTC) for year in range(first_year, 2100) for month in (1, 7)]
    wrong = [i for i in instants if offset_at(changes, i) != i.astimezone(zone).utcoffset()]
    assert not wrong, wrong[:5]
    assert b"COMMENT" not in block


def test_a_zone_with_daylight_saving_time_carries_its_current_rules_as_rrules_without_end() -> None:
    block = vtimezone_block("Europe/Berlin", 2026).decode()
    assert "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n" in block
    assert "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n" in block
    assert "UNTIL" not in block and "RDATE" not in block
    santiago = vtimezone_block("America/Santiago", 2026).decode()
    assert "RRULE:FREQ=YEARLY;BYDAY=SU;BYMONTHDAY=2,3,4,5,6,7,8;BYMONTH=4\r\n" in santiago


def test_history_is_written_only_from_the_change_in_force_at_the_first_year_on() -> None:
    recent = vtimezone_block("America/New_York", 2026).decode()
    assert "RDATE" not in recent and "DTSTART:20070311T020000" in recent
    older = vtimezone_block("America/New_York", 1995).decode()
    assert "DTSTART:19941030T020000" in older and "RDATE:20061029T020000" in older
    assert "1993" not in older
    assert vtimezone_block("Europe/Berlin", 2020) == vtimezone_block("Europe/Berlin", 2040)


def test_a_feed_covers_each_zone_from_a_year_before_its_earliest_event_and_renders_the_same_bytes_twice() -> None:
    when = datetime(2026, 2, 1, tzinfo=UTC)

    def event(uid: str, start: str) -> EventInput:
        return EventInput(uid, 0, when, when, uid, start, start, timezone="W. Europe Standard Time")

    rendered = [render_event(event("a", "2060-07-01T10:00:00")), render_event(event("b", "1995-07-01T10:00:00"))]
    assert rendered[0].tzids == (zone_need("Europe/Berlin", 2060),)
    needs = [need for r in rendered for need in r.tzids]
    assert first_years([*needs, "Europe/Berlin"]) == {"Europe/Berlin": 1970}  # a need stored before years
    assert first_years(needs) == {"Europe/Berlin": 1994}
    header = render_header(CalendarHeader(name="Years"))
    body = assemble(header, needs, [r.block for r in rendered], vtimezone_block)
    assert body.count(b"BEGIN:VTIMEZONE") == 1 and vtimezone_block("Europe/Berlin", 1994) in body
    assert body == assemble(header, reversed(needs), [r.block for r in rendered], vtimezone_block)
    assert b"METHOD" not in body


def test_a_zone_icalendar_deems_equivalent_to_utc_keeps_its_tzid_so_its_history_applies() -> None:
    when = datetime(2026, 2, 1, tzinfo=UTC)
    lines = ("RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE:19500110T183000")
    start, end = "1950-01-03T18:30:00", "1950-01-03T19:30:00"
    rendered = render_event(EventInput("x", 0, when, when, "x", start, end, "Africa/Conakry", recurrence=lines))
    assert b"DTSTART;TZID=Africa/Conakry:19500103T183000\r\n" in rendered.block
    assert b"EXDATE;TZID=Africa/Conakry:19500110T183000\r\n" in rendered.block
    assert rendered.tzids == (zone_need("Africa/Conakry", 1950),)
    assert rendered.start_utc == datetime(1950, 1, 3, 18, 30, tzinfo=ZoneInfo("Africa/Conakry")).astimezone(UTC)
