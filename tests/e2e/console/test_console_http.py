"""The console over HTTP as a browser without script uses it: login, CSRF, calendars, events."""

from __future__ import annotations

from tests.e2e.console.conftest import Console, Merchant


async def test_login_opens_the_accounts_calendars_and_a_calendar_with_an_event_can_be_made(
    console: Console, merchant: Merchant
) -> None:
    page = await console.login(merchant.email)
    assert "Calendars" in page and merchant.email in page
    page = await console.post(
        "/console/calendars", {"code": "league", "name": "League", "timezone": "Europe/London", "protected": "on"}
    )
    assert "Calendar “League” created." in page
    page = await console.post(
        "/console/calendars/league/events",
        {
            "title": "Derby",
            "start": "2030-03-04T19:30",
            "end": "2030-03-04T21:30",
            "frequency": "WEEKLY",
            "interval": "1",
            "byday": "MO",
            "count": "10",
        },
    )
    assert "Event “Derby” created." in page and "Every week on Monday, 10 times" in page
    calendar = await merchant.call("GET", "ingest", f"/v1/calendars/{merchant.code}/league")
    assert calendar["protected"] is True and calendar["timezone"] == "Europe/London"
