"""shared.timezones and shared.recurrence: the one resolution and parser ingest validates with and feed renders with."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.recurrence import MAX_SUB_DAILY_OCCURRENCES, InvalidRecurrence, parse_line, parse_recurrence
from shared.timezones import WINDOWS_TO_IANA, UnknownTimezone, resolve

PARIS = datetime(2026, 1, 5, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize("name", ["posixrules", "right/UTC", "posix/Europe/Berlin", "Factory", "localtime", "../UTC"])
def test_files_of_the_zoneinfo_directory_that_are_not_places_are_unknown_time_zones(name: str) -> None:
    with pytest.raises(UnknownTimezone, match="unknown time zone"):
        resolve(name)


def test_iana_names_resolve_in_any_case_and_windows_ids_even_retired_ones_map_to_listed_zones() -> None:
    assert resolve("europe/berlin") == "Europe/Berlin"
    assert resolve("Etc/UTC") == resolve("Z") == "UTC"
    assert resolve("Mid-Atlantic Standard Time") == "Etc/GMT+2"
    assert resolve("kamchatka standard time") == "Asia/Kamchatka"
    for windows, iana in WINDOWS_TO_IANA.items():
        assert resolve(windows) in (iana, "UTC")  # "UTC" and "Etc/UTC" are one zone
        assert resolve(iana) in (iana, "UTC")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("RRULE:FREQ=DAILY;INTERVAL=0", "INTERVAL must be at least 1, not 0"),
        ("RRULE:FREQ=DAILY;COUNT=-3", "COUNT must be at least 1, not -3"),
        ("RRULE:FREQ=DAILY;COUNT=0", "COUNT must be at least 1, not 0"),
        ("RRULE:FREQ=DAILY;COUNT=3;UNTIL=20260301T000000Z", "COUNT and UNTIL together"),
        ("RRULE:FREQ=YEARLY;BYMONTH=13", "BYMONTH values are 1 to 12, not 13"),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY values are 1 to 31 or -31 to -1, not 0"),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=-32", "BYMONTHDAY values are 1 to 31 or -31 to -1, not -32"),
        ("RRULE:FREQ=DAILY;BYHOUR=24", "BYHOUR values are 0 to 23, not 24"),
        ("RRULE:FREQ=DAILY;BYMINUTE=60", "BYMINUTE values are 0 to 59, not 60"),
        ("RRULE:FREQ=YEARLY;BYYEARDAY=367", "BYYEARDAY values are 1 to 366 or -366 to -1, not 367"),
        ("RRULE:FREQ=YEARLY;BYWEEKNO=54", "BYWEEKNO values are 1 to 53 or -53 to -1, not 54"),
        ("RRULE:FREQ=MONTHLY;BYWEEKNO=2", "BYWEEKNO is not allowed with FREQ=MONTHLY"),
        ("RRULE:FREQ=WEEKLY;BYMONTHDAY=2", "BYMONTHDAY is not allowed with FREQ=WEEKLY"),
        ("RRULE:FREQ=MONTHLY;BYDAY=6MO", "BYDAY=6MO: with FREQ=MONTHLY the number is 1 to 5"),
        ("RRULE:FREQ=WEEKLY;BYDAY=1MO", "BYDAY=1MO: a numbered weekday needs FREQ=MONTHLY or YEARLY"),
        ("RRULE:FREQ=MONTHLY;BYSETPOS=0;BYDAY=MO", "BYSETPOS values are 1 to 366 or -366 to -1, not 0"),
        ("RRULE:FREQ=MONTHLY;BYSETPOS=1", "BYSETPOS needs another BYxxx part"),
        ("RRULE:FREQ=HOURLY", "FREQ=HOURLY needs COUNT or UNTIL"),
        ("RRULE:FREQ=MINUTELY;COUNT=1001", f"at most {MAX_SUB_DAILY_OCCURRENCES} occurrences, not COUNT=1001"),
        ("RRULE:FREQ=MINUTELY;UNTIL=20260201T000000Z", f"at most {MAX_SUB_DAILY_OCCURRENCES} occurrences"),
        ("RRULE:FREQ=HOURLY;UNTIL=20280101T000000Z;BYHOUR=9", "end within 366 days of the start (UNTIL)"),
        ("RRULE:FREQ=HOURLY;COUNT=5;BYMONTH=2;BYMONTHDAY=29", "end within 366 days of the start (COUNT=5)"),
        ("RRULE:FREQ=FORTNIGHTLY", "is not a recurrence rule"),
        ("RDATE;VALUE=PERIOD:20260404T190000Z/20260404T200000Z", "VALUE=PERIOD is not accepted"),
        ("RDATE:P1D", "is not a DATE (YYYYMMDD) or DATE-TIME"),
        ("EXDATE;TZID=posixrules:20260404T190000", "unknown time zone 'posixrules'"),
        ("EXDATE;TZID=right/UTC:20260404T190000", "unknown time zone 'right/UTC'"),
        ("EXDATE:18000101T100000", "the year must be between 1900 and 2200"),
    ],
)
def test_a_line_no_consumer_can_use_is_refused_naming_the_field_the_line_and_why(line: str, says: str) -> None:
    with pytest.raises(InvalidRecurrence) as refused:
        parse_line(line, 2, PARIS)
    assert refused.value.field == "recurrence[2]"
    assert str(refused.value).startswith("recurrence[2]: ") and str(refused.value).endswith(f" (in {line!r})")
    assert says in refused.value.reason


def test_sub_daily_rules_within_the_bounds_are_accepted_and_only_for_timed_events() -> None:
    assert parse_line("RRULE:FREQ=HOURLY;COUNT=1000", 0, PARIS).rule is not None
    assert parse_line("RRULE:FREQ=MINUTELY;INTERVAL=15;UNTIL=20260106T100000Z", 0, PARIS).rule is not None
    with pytest.raises(InvalidRecurrence, match="an all-day event cannot"):
        parse_line("RRULE:FREQ=HOURLY;COUNT=3", 0, date(2026, 1, 5))


def test_until_takes_the_form_rfc_5545_wants_for_the_events_start() -> None:
    floating = parse_line("RRULE:FREQ=DAILY;UNTIL=20260301T000000", 0, PARIS).rule
    assert floating is not None and floating["UNTIL"] == [datetime(2026, 2, 28, 23, 0, tzinfo=UTC)]
    all_day = parse_line("RRULE:FREQ=DAILY;UNTIL=20260301T000000Z", 0, date(2026, 1, 5)).rule
    assert all_day is not None and all_day["UNTIL"] == [date(2026, 3, 1)]


def test_dates_are_given_in_the_events_own_terms_and_lines_are_stored_with_upper_case_names() -> None:
    lines = parse_recurrence(
        [
            "exdate;TZID=Mid-Atlantic Standard Time:20260404T190000",
            "RDATE;VALUE=DATE:20260107",
            "EXDATE:20260110T090000Z",
        ],
        PARIS,
    )
    assert lines[0].text == "EXDATE;TZID=Mid-Atlantic Standard Time:20260404T190000"
    assert lines[0].dates == (datetime(2026, 4, 4, 23, 0, tzinfo=ZoneInfo("Europe/Paris")),)  # 19:00 at UTC-2
    assert lines[1].dates == (datetime(2026, 1, 7, 10, 0, tzinfo=ZoneInfo("Europe/Paris")),)
    assert lines[2].dates == (datetime(2026, 1, 10, 10, 0, tzinfo=ZoneInfo("Europe/Paris")),)
    assert parse_line("EXDATE:20260404T190000Z", 0, date(2026, 1, 5)).dates == (date(2026, 4, 4),)
