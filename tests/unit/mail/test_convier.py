"""Convier bodies (seed 000): bracket keys, dates, validation codes, and the generated iCalendar."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from icalendar import Calendar
from openapi_spec_validator import validate

from services.mail.api.convier import convier_routes
from services.mail.domain.convier import ConvierError, decode_form, moment
from services.mail.domain.convier_render import render_calendar
from services.mail.domain.convier_request import parse_request
from shared.openapi import openapi_document

SEED_BODY = "&".join(
    [
        "event[start][date]=04/26/2019 09:00 PM",
        "event[end][date]=04/26/2019 11:00 PM",
        "event[organizer][name]=Tony Stark",
        "event[organizer][email]=ironman@avengers.com",
        "event[summary][value]=Endgame premiere",
        "event[description][value]=Bring the popcorn.",
        "email[subject]=Yo!",
        "email[body]=This the premiere of Endgame movie. Bring the popcon.",
        "event[attendees][0][email]=user@example.com",
    ]
)
STAMP = datetime(2026, 1, 1, tzinfo=UTC)


def test_only_ascii_digits_make_an_index() -> None:
    # "\u00b2" passes str.isdigit() but not int(): it stays a key (it was a 500).
    assert decode_form("a[\u00b2]=x&b[0]=y") == {"a": {"\u00b2": "x"}, "b": ["y"]}


def test_bracket_keys_become_nested_dicts_and_indexed_keys_lists_beyond_twenty() -> None:
    body = decode_form("a[b][c]=1&l[0][e]=x&l[1][e]=y&" + "&".join(f"m[{i}]={i}" for i in range(30)))
    assert body["a"] == {"b": {"c": "1"}}
    assert body["l"] == [{"e": "x"}, {"e": "y"}]
    assert body["m"] == [str(i) for i in range(30)]


def test_the_seed_body_renders_a_vevent_request_with_organizer_and_attendee() -> None:
    request = parse_request("event", decode_form(SEED_BODY))
    assert request.email.subject == "Yo!" and request.email.locale == "en"
    ical = Calendar.from_ical(render_calendar(request, uid="u-1", sequence=0, stamp=STAMP, method="REQUEST"))
    assert ical["METHOD"] == "REQUEST"
    event = ical.walk("VEVENT")[0]
    assert event["SUMMARY"] == "Endgame premiere" and event["UID"] == "u-1"
    assert event.decoded("DTSTART") == datetime(2019, 4, 26, 21, 0)
    assert str(event["ORGANIZER"]) == "mailto:ironman@avengers.com" and event["ORGANIZER"].params["CN"] == "Tony Stark"
    assert event["ATTENDEE"].params["PARTSTAT"] == "NEEDS-ACTION" and event["ATTENDEE"].params["RSVP"] == "TRUE"


def test_a_todo_keeps_due_completed_percent_priority_and_status() -> None:
    body = {
        "todo": {
            "summary": "File taxes",
            "due": "2026-04-15T17:00:00",
            "timezone": "Eastern Standard Time",
            "completed": "2026-04-10T09:00:00Z",
            "percent": "100",
            "priority": 1,
            "status": "completed",
        }
    }
    ical = Calendar.from_ical(
        render_calendar(parse_request("todo", body), uid="t", sequence=2, stamp=STAMP, method="PUBLISH")
    )
    todo = ical.walk("VTODO")[0]
    assert todo["PERCENT-COMPLETE"] == 100 and todo["PRIORITY"] == 1 and todo["STATUS"] == "COMPLETED"
    assert todo["DUE"].params["TZID"] == "America/New_York" and ical.walk("VTIMEZONE")
    assert todo.decoded("COMPLETED") == datetime(2026, 4, 10, 9, 0, tzinfo=UTC)


def test_calendar_globals_conference_color_and_availability_are_written() -> None:
    body = {
        "calendar": {
            "name": "Team",
            "color": "#ff0000",
            "refresh-interval": "PT1H",
            "source": "https://x.example/c.ics",
        },
        "event": {
            "summary": "Standup",
            "start": "2026-05-01",
            "color": "#00FF00",
            "conference": [{"uri": "https://meet.example/s", "feature": "AUDIO,VIDEO", "label": "Join"}],
        },
        "availability": [{"start": "2026-05-01T09:00:00", "end": "2026-05-01T17:00:00", "rrule": "FREQ=WEEKLY"}],
    }
    text = render_calendar(parse_request("event", body), uid="c", sequence=0, stamp=STAMP, method="PUBLISH").decode()
    unfolded = text.replace("\r\n ", "")
    for line in (
        "NAME:Team",
        "COLOR:red",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "COLOR:lime",
        "X-APPLE-CALENDAR-COLOR:#00FF00",
        "FEATURE=AUDIO,VIDEO",
        "LABEL=Join",
        "BEGIN:VAVAILABILITY",
        "BEGIN:AVAILABLE",
        "RRULE:FREQ=WEEKLY",
        "DTSTART;VALUE=DATE:20260501",
    ):
        assert line in unfolded, line


@pytest.mark.parametrize(
    ("component", "body", "status", "named"),
    [
        ("event", {}, 400, "event"),
        ("event", {"event": {"summary": "x"}}, 400, "event[start][date]"),
        ("todo", {"todo": {"due": "2026-01-01"}}, 400, "todo[summary][value]"),
        ("event", {"event": {"start": {"date": "02/30/2026 10:00 AM"}}}, 402, "event[start]"),
        (
            "event",
            {"event": {"start": "2026-01-01", "attendees": [{"email": "nope"}]}},
            402,
            "event[attendees][0][email]",
        ),
        ("event", {"event": {"start": "2026-01-01", "timezone": "Mars/Olympus"}}, 402, "event[timezone]"),
        ("event", {"event": {"start": "2026-01-02", "end": "2026-01-01"}}, 402, "event[end]"),
        ("event", {"event": {"start": "2026-01-01", "rrule": "FREQ=SOMETIMES"}}, 402, "event[rrule]"),
        ("event", {"event": {"start": "0001-01-01T00:00:00+05:00"}}, 402, "event[start]"),
        (
            "event",
            {"calendar": {"refresh-interval": "PT45117079069H"}, "event": {"start": "2026-01-01"}},
            402,
            "calendar[refresh-interval]",
        ),
        # Each of these was a 500 (an exception out of the parser), found by schemathesis or by reading for more.
        (
            "event",
            {"calendar": {"refresh-interval": "P" + "9" * 5000 + "D"}, "event": {"start": "2026-01-01"}},
            402,
            "calendar[refresh-interval]",
        ),
        (
            "event",
            {"event": {"start": "2026-01-01", "conference": {"uri": "https://meet.example.com/x", "feature": True}}},
            402,
            "event[conference][0][feature]",
        ),
        ("todo", {"todo": {"summary": "x", "priority": "\u00b2"}}, 402, "todo[priority]"),
        ("todo", {"todo": {"summary": "x", "percent": "9" * 5000}}, 402, "todo[percent]"),
        (
            "event",
            {"availability": [{"start": "2026-01-01", "rrule": "BYDAY=MO"}], "event": {"start": "2026-01-01"}},
            402,
            "availability[0][rrule]",
        ),
    ],
)
def test_missing_parameters_are_400_and_unusable_ones_402_naming_them(
    component: str, body: dict[str, object], status: int, named: str
) -> None:
    with pytest.raises(ConvierError) as caught:
        parse_request(component, body)  # type: ignore[arg-type]
    assert caught.value.status == status and named in caught.value.message


def test_dates_read_the_seed_form_iso_with_offset_as_utc_and_plain_dates_as_all_day() -> None:
    assert moment("04/26/2019 09:00 PM", "d", "Europe/Paris") == moment("2019-04-26T21:00:00", "d", "Europe/Paris")
    utc = moment("2019-04-26T21:00:00+02:00", "d")
    assert utc is not None and utc.tzid == "UTC" and utc.value == datetime(2019, 4, 26, 19, 0)
    day = moment("2019-04-26", "d")
    assert day is not None and day.value == date(2019, 4, 26)


def test_an_unknown_locale_falls_back_to_english() -> None:
    request = parse_request("journal", {"journal": {"summary": "n"}, "email": {"locale": "pt-BR", "attach": "true"}})
    assert request.email.locale == "en" and request.email.attach
    assert parse_request("journal", {"journal": {"summary": "n"}, "email": {"locale": "fr_FR"}}).email.locale == "fr"


def test_convier_bodies_are_documented_as_bracket_keys_and_as_json_and_answers_in_convier_shape() -> None:
    document = openapi_document("mail", convier_routes())
    validate(document)
    schemas = document["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = schemas[schema["$ref"].rpartition("/")[2]]
        return resolved

    for component, required in (("event", "start"), ("todo", "summary"), ("journal", None)):
        operation = document["paths"][f"/api/{component}"]["post"]
        content = operation["requestBody"]["content"]
        form = resolve(content["application/x-www-form-urlencoded"]["schema"])
        keys = set(form["properties"])
        assert {f"{component}[attendees][0][email]", f"{component}[organizer][name]", "email[subject]"} <= keys
        assert f"{component}[summary][value]" in keys and "calendar[refresh-interval]" in keys
        form_required = {"start": ["event[start][date]"], "summary": ["todo[summary][value]"], None: []}[required]
        assert form.get("required", []) == form_required
        body = resolve(content["application/json"]["schema"])
        assert body["required"] == [component]
        fields = resolve(body["properties"][component])
        assert fields.get("required", []) == ([required] if required else [])
        assert {"attendees", "organizer", "uid", "summary"} <= set(fields["properties"])
        for status in ("200", "400", "401", "402"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ConvierAnswer"}, status
    assert set(schemas["ConvierAnswer"]["required"]) == {"error", "message"}
    # The seed's own curl example fits the documented form.
    seed = dict(pair.split("=", 1) for pair in SEED_FORM.split("&"))
    event_form = resolve(document["paths"]["/api/event"]["post"]["requestBody"]["content"][FORM]["schema"])
    for key, value in seed.items():
        assert key in event_form["properties"], key
        pattern = event_form["properties"][key].get("pattern")
        assert pattern is None or re.match(pattern, value), (key, value)


FORM = "application/x-www-form-urlencoded"
SEED_FORM = (
    "event[start][date]=04/26/2019 09:00 PM&event[end][date]=04/26/2019 11:00 PM&event[organizer][name]=Tony Stark"
    "&event[organizer][email]=ironman@avengers.com&event[summary][value]=Endgame premiere"
    "&event[description][value]=Bring the popcorn.&email[subject]=Yo!"
    "&email[body]=This the premiere of Endgame movie. Bring the popcon.&event[attendees][0][email]=peter@example.com"
)
