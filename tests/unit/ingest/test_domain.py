"""The ingest domain rules: time zones, event times, recurrence lines, subscription decisions."""

from __future__ import annotations

import re
import uuid
import zoneinfo
from pathlib import Path

import pytest

from services.ingest.domain.calendars import refresh_interval
from services.ingest.domain.events import EventDraft, event_fields
from services.ingest.domain.recurrence import validate_recurrence
from services.ingest.domain.subscriptions import (
    device_name,
    feed_password_matches,
    hash_feed_password,
    new_feed_password,
    referrer_source,
    subscription_type,
    webcal_url,
)
from services.ingest.domain.times import event_times
from services.ingest.domain.timezones import WINDOWS_TO_IANA, require_windows_id, to_iana
from shared.errors import InvalidRequest

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "002_6a8047386103ba78.md"
SEED_FALLBACK = Path("/work/shared/seeds/002_6a8047386103ba78.md")


def seed_timezone_ids() -> list[str]:
    path = SEED if SEED.exists() else SEED_FALLBACK
    text = path.read_text(encoding="utf-8")
    section = text[text.index("## Timezones") : text.index("(`subscription-event-introduction`)")]
    rows = re.findall(r"^\| ([^|]+?) \| \(UTC", section, flags=re.MULTILINE)
    return [r.strip() for r in rows]


def test_every_windows_id_on_the_seeds_timezones_page_maps_to_a_loadable_iana_zone() -> None:
    ids = seed_timezone_ids()
    assert len(ids) > 100
    for windows in ids:
        iana = to_iana(windows, "timezone")
        assert zoneinfo.ZoneInfo(iana) is not None
        assert require_windows_id(windows.upper(), "timeZoneTag") == windows


def test_time_zones_accept_windows_ids_in_any_case_and_iana_names_and_refuse_the_rest() -> None:
    assert to_iana("aus eastern standard time", "timezone") == "Australia/Sydney"
    assert to_iana("Europe/Paris", "timezone") == "Europe/Paris"
    assert WINDOWS_TO_IANA["Eastern Standard Time"] == "America/New_York"
    for bad in ("Mars/Olympus", "../../etc/passwd", "", "/usr/share/zoneinfo/UTC"):
        with pytest.raises(InvalidRequest, match=r"^timezone: unknown time zone"):
            to_iana(bad, "timezone")
    with pytest.raises(InvalidRequest, match=r"^timeZoneTag:"):
        require_windows_id("Europe/Paris", "timeZoneTag")


def test_a_timed_events_offset_is_ignored_and_its_wall_clock_kept() -> None:
    times = event_times("2016-06-04T19:00:00+10", "2016-06-04T23:00:00Z", all_day=False)
    assert (times.start, times.end, times.all_day) == ("2016-06-04T19:00:00", "2016-06-04T23:00:00", False)


def test_a_timed_event_without_end_lasts_an_hour_and_one_ending_before_it_starts_is_refused() -> None:
    assert event_times("2018-10-24T16:33:00", None, all_day=False).end == "2018-10-24T17:33:00"
    with pytest.raises(InvalidRequest, match=r"^end: the event ends before it starts"):
        event_times("2018-10-24T16:33:00", "2018-10-24T16:00:00", all_day=False)


def test_all_day_events_keep_dates_with_the_last_day_inclusive() -> None:
    assert event_times("2018-10-24T00:00:00", None, all_day=True).end == "2018-10-24"
    times = event_times("2018-10-24", "2018-10-26T00:00:00", all_day=True)
    assert (times.start, times.end) == ("2018-10-24", "2018-10-26")
    with pytest.raises(InvalidRequest, match=r"^end:"):
        event_times("2018-10-24", "2018-10-23", all_day=True)


@pytest.mark.parametrize("value", ["tomorrow", "2018-13-01", "99999-01-01T00:00:00", "1066-10-14", "x" * 50])
def test_start_that_is_not_an_iso_date_in_range_is_refused_naming_start(value: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^start:"):
        event_times(value, None, all_day=False)


def test_recurrence_lines_are_checked_and_a_bad_one_is_named_by_its_index() -> None:
    good = [
        "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO,WE",
        "exdate;TZID=Europe/Paris:20260105T100000,20260107T100000",
        "RDATE;VALUE=DATE:20260301",
        "EXRULE:FREQ=MONTHLY;COUNT=2",
    ]
    stored = validate_recurrence(good, start="2026-01-05T10:00:00", all_day=False, timezone="Europe/Paris")
    assert stored[0] == "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO,WE"
    assert stored[1].startswith("EXDATE;TZID=Europe/Paris:")
    for index, bad in [
        (1, "RRULE:FREQ=SOMETIMES"),
        (1, "RRULE:FREQ=DAILY;COUNT=3;UNTIL=20260301T000000Z"),
        (1, "EXDATE:2026-13-45"),
        (1, "VALARM:NOPE"),
        (1, "RRULE:FREQ=DAILY\r\nX-EVIL:1"),
        (1, "EXDATE;TZID=Nowhere/City:20260105T100000"),
    ]:
        with pytest.raises(InvalidRequest, match=rf"^recurrence\[{index}\]"):
            validate_recurrence([good[0], bad], start="2026-01-05T10:00:00", all_day=False, timezone="Europe/Paris")


def test_event_fields_default_to_the_calendars_zone_and_check_the_time_zone_tag() -> None:
    draft = EventDraft(title="T", start="2026-05-01T09:00:00", time_zone_tag="pacific standard time")
    fields = event_fields(draft, default_timezone="America/Chicago", tag_ids=[uuid.UUID(int=1)])
    assert fields["timezone"] == "America/Chicago" and fields["time_zone_tag"] == "Pacific Standard Time"
    assert fields["tag_ids"] == [uuid.UUID(int=1)] and fields["end"] == "2026-05-01T10:00:00"
    with pytest.raises(InvalidRequest, match=r"^timeZoneTag:"):
        event_fields(
            EventDraft(title="T", start="2026-05-01", time_zone_tag="Nowhere"), default_timezone="UTC", tag_ids=[]
        )


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ("Mozilla/5.0 (Linux; Android 4.4.4; SM-G360P) AppleWebKit/537.36 Chrome/54.0 Mobile Safari/537.36", "google"),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "google"),
        (
            "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/46.0 Safari/537.36 [FB_IAB/FB4A;FBAV/55.0]",
            "google",
        ),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", "webcal"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_3) AppleWebKit/537.36 Chrome/56.0 Safari/537.36", "webcal"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "webcal"),
        ("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.4266)", "webcal"),
        ("curl/8.0", "webcal"),
        (None, "webcal"),
    ],
)
def test_the_subscription_path_follows_the_user_agents_platform(agent: str | None, expected: str) -> None:
    assert subscription_type(None, agent) == expected


def test_subscription_method_overrides_the_user_agent_and_must_be_webcal_google_or_caldav() -> None:
    android = "Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile"
    assert subscription_type("WebCal", android) == "webcal"
    assert subscription_type("Google", None) == "google"
    assert subscription_type("CalDAV", android) == "caldav"
    with pytest.raises(InvalidRequest, match=r"^subscriptionMethod:"):
        subscription_type("fax", None)


def test_device_names_and_referrer_sources() -> None:
    assert device_name("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_3) AppleWebKit/537.36") == "Desktop"
    assert device_name("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)") == "iPad"
    assert device_name("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile") == "Android Phone"
    assert device_name(None) == "Unknown"
    assert referrer_source("http://www.google.com/search?q=x") == "google.com"
    assert referrer_source("m.facebook.com") == "m.facebook.com"
    assert referrer_source(None) is None


def test_webcal_urls_take_the_public_feed_host_and_carry_escaped_credentials_when_protected() -> None:
    sid = uuid.UUID("705dbb47-f710-4529-b5a1-776f67e0083f")
    assert webcal_url("http://127.0.0.1:8083", sid) == f"webcal://127.0.0.1:8083/v1/webcal/{sid}"
    assert webcal_url("https://cal.example.com/base/", sid) == f"webcal://cal.example.com/base/v1/webcal/{sid}"
    url = webcal_url("https://cal.example.com", sid, username="john@x.com", password="p/w")
    assert url == f"webcal://john%40x.com:p%2Fw@cal.example.com/v1/webcal/{sid}"


def test_feed_passwords_are_long_random_and_only_their_hash_is_kept() -> None:
    first, second = new_feed_password(), new_feed_password()
    assert first != second and len(first) >= 32  # 24 random bytes, base64url: 192 bits
    stored = hash_feed_password(first)
    assert stored.startswith("sha256:") and first not in stored
    assert feed_password_matches(first, stored) and not feed_password_matches(second, stored)


def test_refresh_interval_is_an_iso_8601_duration_within_bounds() -> None:
    assert refresh_interval("pt1h") == "PT1H"
    assert refresh_interval("P1D") == "P1D"
    for bad in ("1 hour", "PT1S", "P90D", "P"):
        with pytest.raises(InvalidRequest, match=r"^refreshInterval:"):
            refresh_interval(bad)
