"""Rendering VEVENT blocks and the calendar header (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.ical import (
    CalendarHeader,
    EventInput,
    InvalidEvent,
    assemble,
    render_event,
    render_header,
)
from shared.timezones import resolve
from shared.zone_needs import vtimezone_block

WHEN = datetime(2026, 2, 1, 12, 30, 15, 123456, tzinfo=UTC)


def event(**overrides: object) -> EventInput:
    values: dict[str, object] = {
        "uid": "e1@kalends",
        "sequence": 3,
        "changed_at": WHEN,
        "created_at": WHEN - timedelta(days=1),
        "title": "Game",
        "start": "2026-03-28T19:00:00",
        "end": "2026-03-28T21:00:00",
        "timezone": "Europe/Berlin",
    }
    values.update(overrides)
    return EventInput(**values)  # type: ignore[arg-type]


def feed_of(*blocks: bytes, tzids: tuple[str, ...] = ()) -> bytes:
    return assemble(render_header(CalendarHeader(name="Cal")), tzids, blocks, vtimezone_block)


def test_a_timed_event_carries_its_tzid_sequence_and_change_time_as_dtstamp() -> None:
    rendered = render_event(event())
    assert rendered.tzids == ("Europe/Berlin@2026",)
    assert b"DTSTART;TZID=Europe/Berlin:20260328T190000\r\n" in rendered.block
    assert b"DTSTAMP:20260201T123015Z\r\n" in rendered.block
    assert b"LAST-MODIFIED:20260201T123015Z\r\n" in rendered.block
    assert b"SEQUENCE:3\r\n" in rendered.block
    assert rendered.start_utc == datetime(2026, 3, 28, 18, 0, tzinfo=UTC)


def test_an_all_day_event_has_date_values_and_an_exclusive_end() -> None:
    block = render_event(event(all_day=True, start="2026-03-28", end="2026-03-29")).block
    assert b"DTSTART;VALUE=DATE:20260328\r\n" in block
    assert b"DTEND;VALUE=DATE:20260330\r\n" in block


def test_a_windows_time_zone_id_is_written_as_its_iana_zone() -> None:
    assert resolve("W. Europe Standard Time") == "Europe/Berlin"
    assert resolve("eastern standard time") == "America/New_York"
    assert render_event(event(timezone="Tokyo Standard Time")).tzids == ("Asia/Tokyo@2026",)


def test_recurrence_lines_become_rrule_and_zoned_exdates_with_a_utc_until() -> None:
    block = render_event(event(recurrence=["RRULE:FREQ=WEEKLY;UNTIL=20260430T190000", "EXDATE:20260404T190000"])).block
    assert b"RRULE:FREQ=WEEKLY;UNTIL=20260430T170000Z\r\n" in block
    assert b"EXDATE;TZID=Europe/Berlin:20260404T190000\r\n" in block


def test_a_recurrence_line_stored_before_ingest_refused_it_is_left_out_saying_why_not_the_whole_event() -> None:
    lines = ["RRULE:FREQ=WEEKLY;COUNT=3", "RDATE;VALUE=PERIOD:20260404T190000Z/20260404T200000Z", "RRULE:FREQ=NEVER"]
    rendered = render_event(event(recurrence=lines))
    assert b"RRULE:FREQ=WEEKLY;COUNT=3\r\n" in rendered.block
    assert b"RDATE" not in rendered.block and b"NEVER" not in rendered.block
    assert [reason.split(":")[0] for reason in rendered.skipped] == ["recurrence[1]", "recurrence[2]"]
    many = render_event(event(recurrence=["RRULE:FREQ=DAILY;COUNT=2"] * 51))
    assert many.skipped == ("recurrence: at most 50 lines",)
    with pytest.raises(InvalidEvent):
        render_event(event(timezone="posixrules"))


def test_a_cancelled_event_says_so_and_has_no_alarm() -> None:
    block = render_event(event(cancelled=True, notify_before=10)).block
    assert b"STATUS:CANCELLED\r\n" in block and b"VALARM" not in block
    assert b"TRIGGER:-PT10M" in render_event(event(notify_before=10)).block


def test_calendar_text_properties_are_escaped_and_there_is_no_calendar_uid() -> None:
    header = render_header(CalendarHeader(name="A, B; C", description="line\nnext", color="#ff0000"))
    assert b"X-WR-CALNAME:A\\, B\\; C\r\n" in header and b"NAME:A\\, B\\; C\r\n" in header
    assert b"X-WR-CALDESC:line\\nnext\r\n" in header
    assert b"COLOR:red\r\n" in header
    assert b"\r\nUID" not in header


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=300))
def test_folding_never_splits_utf8_and_round_trips_through_a_parser(title: str) -> None:
    body = feed_of(render_event(event(title=title, description=title * 2)).block, tzids=("Europe/Berlin",))
    for line in body.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")  # every physical line is valid UTF-8 on its own
    parsed = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
    assert str(parsed["SUMMARY"]) == title


def test_the_same_event_renders_the_same_bytes() -> None:
    assert render_event(event(recurrence=["RRULE:FREQ=DAILY;COUNT=3"])) == render_event(
        event(recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    )
