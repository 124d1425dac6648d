"""A calendar page's content from ingest's answers, and the subscribe form checked against it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.web.domain.devices import App
from services.web.domain.embed import button_script, no_script_button
from services.web.domain.page import MAX_EVENTS, CalendarPage, calendar_page
from services.web.domain.subscribe import ACTION_TYPE, FormProblem, read_form, subscribe_body

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CALENDAR = {"code": "league", "name": "League", "timezone": "Europe/Paris", "color": "#112233", "version": 3}
TAGS = [{"id": "t-tigers", "name": "Tigers"}, {"id": "t-lions", "name": "Lions"}]


def event(title: str, start: str, **more: Any) -> dict[str, Any]:
    return {"title": title, "start": start, "end": None, "tags": [], **more}


def page(**calendar: Any) -> CalendarPage:
    events = [event("Final", "2026-06-02T20:00:00", tags=["t-lions"], timeZoneTag="Eastern Standard Time")]
    return calendar_page("acme", {**CALENDAR, **calendar}, TAGS, events, NOW)


def test_upcoming_public_events_are_listed_soonest_first_in_their_zone() -> None:
    events = [
        event("Later", "2026-06-10T18:00:00"),
        event("Past", "2026-05-01T18:00:00"),
        event("Weekly", "2026-01-01T18:00:00", recurrence=["RRULE:FREQ=WEEKLY"]),
        event("Secret", "2026-06-03T18:00:00", **{"class": "private"}),
        event("Called off", "2026-06-03T18:00:00", status="cancelled"),
        event("Soon", "2026-06-02T09:30:00", tags=["t-lions", "unknown"]),
        event("Holiday", "2026-06-05", allDayEvent=True),
    ]
    shown = calendar_page("acme", CALENDAR, TAGS, events, NOW).events
    assert [e.title for e in shown] == ["Weekly", "Soon", "Holiday", "Later"]
    soon = shown[1]
    assert soon.when == "Tue 2 Jun 2026, 09:30 (Europe/Paris)" and soon.tags == ("Lions",)
    assert soon.iso == "2026-06-02T09:30:00+02:00"
    assert shown[0].repeats and shown[2].when == "Fri 5 Jun 2026 (all day)"


def test_a_page_lists_at_most_max_events() -> None:
    events = [event(f"E{i}", f"2026-07-{1 + i % 28:02d}T10:00:00") for i in range(200)]
    assert len(calendar_page("acme", CALENDAR, TAGS, events, NOW).events) == MAX_EVENTS


def test_tags_are_choices_in_name_order_and_time_zones_come_from_the_events_tags() -> None:
    shown = page()
    assert [(c.value, c.label) for c in shown.tags] == [("t-lions", "Lions"), ("t-tigers", "Tigers")]
    assert [c.value for c in shown.time_zones] == ["Eastern Standard Time"]


def test_a_color_that_is_not_a_plain_color_is_dropped() -> None:
    assert page(color="red;}body{display:none").color is None
    assert page().color == "#112233"


def test_the_form_becomes_ingests_subscribe_body_with_the_calendar_page_action() -> None:
    shown = page(subscribePage={"email": "optional", "marketingOptIn": "News please"})
    form = {
        "app": "google",
        "timezone": "Eastern Standard Time",
        "email": " fan@example.com ",
        "marketing": "yes",
        "utm_source": "newsletter",
        "utm_campaign": "x" * 400,
        "referrer": "https://club.example/fixtures",
    }
    choice = read_form(form, ["t-lions", "all", "t-lions"], shown)
    body = subscribe_body(choice, user_agent="UA", ip_address="203.0.113.9", subscriber_id=None)
    assert body == {
        "actionType": ACTION_TYPE,
        "subscriptionMethod": "Google",
        "calendarTags": [{"internalId": "t-lions"}],
        "timeZoneId": "Eastern Standard Time",
        "emailAddress": "fan@example.com",
        "marketingAllowed": True,
        "userAgent": "UA",
        "ipAddress": "203.0.113.9",
        "urlReferrer": "https://club.example/fixtures",
        "utmSource": "newsletter",
        "utmCampaign": "x" * 255,
    }


def test_no_tag_means_every_event_and_a_webcal_subscription() -> None:
    choice = read_form({"app": "apple"}, [], page())
    body = subscribe_body(choice, user_agent=None, ip_address=None, subscriber_id="page-1")
    assert body == {
        "actionType": ACTION_TYPE,
        "subscriptionMethod": "webcal",
        "calendarTags": [],
        "subscriberId": "page-1",
    }


def test_an_email_is_ignored_when_the_page_asks_for_none() -> None:
    assert read_form({"app": "ics", "email": "a@b.co"}, [], page()).email is None


@pytest.mark.parametrize(
    ("form", "tags", "field"),
    [
        ({"app": "fax"}, [], "app"),
        ({}, [], "app"),
        ({"app": "apple"}, ["t-gone"], "tag"),
        ({"app": "apple", "timezone": "Mars Standard Time"}, [], "timezone"),
        ({"app": "apple"}, [], "email"),
        ({"app": "apple", "email": "not-an-address"}, [], "email"),
    ],
)
def test_a_choice_the_page_did_not_offer_is_a_problem_naming_its_field(
    form: dict[str, str], tags: list[str], field: str
) -> None:
    with pytest.raises(FormProblem) as raised:
        read_form(form, tags, page(subscribePage={"email": "required"}))
    assert raised.value.field == field and raised.value.message


def test_the_embed_script_cannot_be_broken_out_of_by_a_calendar_name() -> None:
    script = button_script("https://cal.example", "acme", "league", "</script><script>alert(1)</script>")
    assert "</script>" not in script
    assert '"https://cal.example/c/acme/league?utm_medium=embed"' in script
    link = no_script_button("https://cal.example", "acme", "league", "A <b>&</b>")
    assert link == (
        '<a class="kalends-subscribe" href="https://cal.example/c/acme/league">'
        "Subscribe to A &lt;b&gt;&amp;&lt;/b&gt;</a>"
    )


def test_every_app_is_a_valid_form_value() -> None:
    for app in App:
        assert read_form({"app": app.value}, [], page()).app is app
