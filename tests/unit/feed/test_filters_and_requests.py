"""Filter signatures, seed 001 request validation, feed credentials, colors (pure)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime

import pytest

from services.feed.domain.credentials import credentials_match
from services.feed.domain.ics_request import IcsFailure, parse_request, render_ics
from shared.colors import css_color_name
from shared.selection import EventFilter

TAG_A, TAG_B = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_equal_filters_share_a_signature_whatever_the_order() -> None:
    one = EventFilter(tag_ids=frozenset({TAG_A, TAG_B}), time_zone_tag="Eastern Standard Time")
    two = EventFilter(tag_ids=frozenset({TAG_B, TAG_A}), time_zone_tag="eastern standard time")
    assert one.signature == two.signature
    assert one.signature != EventFilter(tag_ids=frozenset({TAG_A})).signature


def test_filter_rules_tags_zone_include_exclude_and_cutoff() -> None:
    event_id = uuid.uuid4()

    def sees(selection: EventFilter, **kw: object) -> bool:
        args: dict[str, object] = {
            "event_id": event_id,
            "external_id": "x1",
            "tag_ids": frozenset({TAG_A}),
            "time_zone_tag": None,
            "created_at": NOW,
        }
        args.update(kw)
        return selection.matches(**args)  # type: ignore[arg-type]

    assert sees(EventFilter())
    assert sees(EventFilter(tag_ids=frozenset({TAG_A, TAG_B})))
    assert not sees(EventFilter(tag_ids=frozenset({TAG_B})))
    assert sees(EventFilter(time_zone_tag="Pacific Standard Time"))
    assert not sees(EventFilter(time_zone_tag="Pacific Standard Time"), time_zone_tag="Eastern Standard Time")
    assert sees(EventFilter(include_external=frozenset({"x1"})))
    assert not sees(EventFilter(include_ids=frozenset({uuid.uuid4()})))
    assert not sees(EventFilter(exclude_ids=frozenset({event_id})))
    assert not sees(EventFilter(cutoff=datetime(2025, 1, 1, tzinfo=UTC)))


def request(**overrides: object) -> bytes:
    body: dict[str, object] = {
        "action": "CreateCalendar",
        "event-title": "Dunder Mifflin Christmas Party",
        "event-description": "Ugly sweaters encouraged!",
        "event-location": "Fake Address",
        "event-start-datetime": "2021-12-17T11:30:00Z",
        "event-end-datetime": "2021-12-17T13:30:00Z",
        "event-timezone": "America/New_York",
        "all-day-event": False,
    }
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"event-title": ""}, "E1703"),
        ({"event-title": None}, "E1703"),
        ({"action": "delete"}, "E1702"),
        ({"event-description": None}, "E1704"),
        ({"event-location": None}, "E1705"),
        ({"event-start-datetime": "tomorrow"}, "E1706"),
        ({"event-end-datetime": None}, "E1707"),
        ({"event-timezone": "Mars/Olympus"}, "E1708"),
        ({"event-end-datetime": "2021-12-16T10:00:00"}, "E1709"),
        ({"all-day-event": "maybe"}, "E1710"),
    ],
)
def test_each_seed_001_failure_has_its_own_code(overrides: dict[str, object], code: str) -> None:
    with pytest.raises(IcsFailure) as caught:
        parse_request(request(**overrides))
    assert caught.value.code == code
    assert caught.value.body()["status"] == "failure"


def test_malformed_json_is_e1700() -> None:
    with pytest.raises(IcsFailure) as caught:
        parse_request(b'{"action": ')
    assert caught.value.code == "E1700" and "line 1" in caught.value.info


def test_seed_001_keeps_the_wall_clock_in_the_event_timezone() -> None:
    body = render_ics(parse_request(request()), account_id=uuid.uuid4(), now=NOW)
    assert b"DTSTART;TZID=America/New_York:20211217T113000\r\n" in body
    assert b"BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\n" in body
    all_day = render_ics(
        parse_request(request(**{"all-day-event": True, "event-end-datetime": "2021-12-18"})),
        account_id=uuid.uuid4(),
        now=NOW,
    )
    assert b"DTSTART;VALUE=DATE:20211217\r\n" in all_day and b"DTEND;VALUE=DATE:20211219\r\n" in all_day


def test_feed_credentials_are_checked_against_the_sha256_hash() -> None:
    stored = "sha256:" + hashlib.sha256(b"pw").hexdigest()
    good = "Basic " + base64.b64encode(b"fan:pw").decode()
    assert credentials_match(good, "fan", stored)
    assert not credentials_match(good, "other", stored)
    assert not credentials_match("Basic " + base64.b64encode(b"fan:nope").decode(), "fan", stored)
    assert not credentials_match("Bearer x", "fan", stored)


def test_colors_map_to_css3_names() -> None:
    assert css_color_name("#FF0000") == "red"
    assert css_color_name("DodgerBlue") == "dodgerblue"
    assert css_color_name("#1e90fe") == "dodgerblue"
    assert css_color_name("not a color") is None
