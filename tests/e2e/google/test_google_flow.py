"""Google subscriptions end to end: seed 002's Android subscribe, the consent screen in headless Chromium,
the callback, the calendar and its events in the Google double, changes pushed within seconds,
re-authorization after a revoke, the user deleting our calendar, and Cancel."""

from __future__ import annotations

from typing import Any

import pytest

from shared.testing import Stack
from tests.doubles.google import GoogleDouble
from tests.e2e.ingest.browser import chromium_page, install_chromium
from tests.integration.webhook.receiver import Receiver

from .conftest import ANDROID, Shop, calendar_of, eventually, new_code, titles

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chromium() -> str:
    return install_chromium()


async def fixtures_calendar(shop: Shop) -> dict[str, Any]:
    """A calendar with a tag and three events: timed with a reminder, all-day, weekly with a colour."""
    code = new_code()
    await shop.call(
        "POST",
        "ingest",
        f"/v1/calendars/{shop.code}",
        {
            "code": code,
            "name": "Acme Fixtures",
            "description": "Every match",
            "color": "navy",
            "timezone": "Europe/London",
        },
        201,
    )
    team = await shop.call("POST", "ingest", f"/v1/calendars/{shop.code}/{code}/tags", {"name": "Team A"}, 201)
    events = f"/v1/calendars/{shop.code}/{code}/events"
    kickoff = await shop.call(
        "POST",
        "ingest",
        events,
        {
            "eventId": "m1",
            "title": "Acme v Rovers",
            "location": "Acme Park",
            "description": "Kick-off 3pm",
            "start": "2026-12-05T15:00:00",
            "end": "2026-12-05T17:00:00",
            "timezone": "Europe/London",
            "notifyBefore": 60,
            "tags": [team["id"]],
        },
        201,
    )
    await shop.call(
        "POST",
        "ingest",
        events,
        {"eventId": "m2", "title": "Open day", "start": "2026-12-12", "end": "2026-12-12", "allDayEvent": True},
        201,
    )
    await shop.call(
        "POST",
        "ingest",
        events,
        {
            "eventId": "m3",
            "title": "Training",
            "start": "2026-12-01T18:00:00",
            "end": "2026-12-01T19:30:00",
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=8"],
            "color": "#dc2127",
        },
        201,
    )
    return {"code": code, "team": team["id"], "kickoff": kickoff["id"]}


async def test_an_android_subscriber_consents_in_the_browser_and_gets_a_filled_google_calendar(
    shop: Shop, google: GoogleDouble, receiver: Receiver, chromium: str, hooks: str
) -> None:
    cal = await fixtures_calendar(shop)
    body = {  # seed 002's Android example, with this calendar's tag and the recording receiver's page
        "calendarTags": [{"internalId": cal["team"]}],
        "timeZoneId": "GMT Standard Time",
        "emailAddress": "jsmith@gmail.com",
        "additionalOptIn": False,
        "marketingAllowed": False,
        "urlReferrer": "http://m.facebook.com/",
        "ipAddress": "64.64.64.64",
        "userAgent": ANDROID,
        "utmSource": "Facebook",
        "utmMedium": "Display",
        "utmCampaign": "2016",
        "utmContent": "Mobile_320x50",
        "externalEventIds": ["90712", "37818"],
        "subscriberId": "jsmith",
        "redirectTo": shop.page,
    }
    answer = await shop.call("POST", "ingest", f"/v1/subscribe/{shop.code}/{cal['code']}", body)
    assert answer["success"] is True and answer["subscriptionType"] == "google"
    assert answer["redirectTo"].startswith(google.settings()["KALENDS_GOOGLE_AUTH_URL"])
    subscription_id = answer["subscriptionId"]
    pending = await shop.call("GET", "ingest", f"/v1/subscription/{subscription_id}")
    assert pending["isActive"] is False

    google.default_email = "jsmith.android@gmail.test"
    async with chromium_page(chromium) as page:
        await page.send("Page.enable")
        await page.send("DOM.enable")
        await page.navigate(answer["redirectTo"])
        assert "Kalends wants to access your Google Account" in await page.html()
        landed = page.expect("Page.loadEventFired")
        await page.click("#allow")
        await landed.get()
        [arrived] = await receiver.wait_for(f"/{shop.code}/confirmation", 1, timeout=30)
        assert "Subscribed" in await page.html()
    google.default_email = None
    assert arrived.query == {
        "success": "true",
        "new": "true",
        "subscriberId": "jsmith",
        "subscriptionId": subscription_id,
    }
    # The callback pushes before it redirects, unless a busy machine made it defer the first push
    # to the engine: then the calendar fills a moment later.
    assert await eventually(lambda: google.calendars_of("jsmith.android@gmail.test"))
    calendar = calendar_of(google, "jsmith.android@gmail.test")
    assert calendar.body["summary"] == "Acme Fixtures" and calendar.body["timeZone"] == "Europe/London"
    assert calendar.list_entry["backgroundColor"] == "#000080"
    [kickoff] = await eventually(calendar.live_events)  # the Team A filter: only the tagged match
    assert kickoff["summary"] == "Acme v Rovers" and kickoff["iCalUID"] == cal["kickoff"]
    assert kickoff["start"] == {"dateTime": "2026-12-05T15:00:00", "timeZone": "Europe/London"}
    assert kickoff["reminders"]["overrides"] == [{"method": "popup", "minutes": 60}]
    assert kickoff["location"] == "Acme Park"

    async def active() -> bool:  # the callback waits up to 5 s for it; a busy machine may take longer
        return bool((await shop.call("GET", "ingest", f"/v1/subscription/{subscription_id}"))["isActive"])

    assert await eventually(active)
    async with shop.session.get(shop.stack.url("feed") + f"/v1/webcal/{subscription_id}") as feed:
        text = await feed.text()  # the webcal feed shows what is pushed, the fallback it always is
        assert feed.status == 200 and "SUMMARY:Acme v Rovers" in text and "Open day" not in text
    # The Subscribe webhook goes out now, once consented (a pending subscription sends none).
    hook = await eventually(
        lambda: [r for r in receiver.at(hooks) if r.json["eventDetails"]["calendarSubscriptionId"] == subscription_id]
    )
    assert [h.json["eventType"] for h in hook] == ["Subscribe"]


async def test_events_and_changes_reach_the_google_calendar_within_seconds(shop: Shop, google: GoogleDouble) -> None:
    cal = await fixtures_calendar(shop)
    _, result = await shop.subscribe_google(cal["code"], "ada")
    assert result["success"] == "true" and result["new"] == "true"
    calendar = calendar_of(google, "ada@gmail.test")
    assert titles(calendar) == {"Acme v Rovers", "Open day", "Training"}
    by_title = {e["summary"]: e for e in calendar.live_events()}
    assert by_title["Open day"]["start"] == {"date": "2026-12-12"} and by_title["Open day"]["end"] == {
        "date": "2026-12-13"
    }
    assert (
        by_title["Training"]["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=8"] and by_title["Training"]["colorId"] == "11"
    )
    event_path = f"/v1/calendars/{shop.code}/{cal['code']}/events/m1"
    await shop.call("PATCH", "ingest", event_path, {"title": "Acme v Rovers (moved to 4pm)"})
    await eventually(lambda: "Acme v Rovers (moved to 4pm)" in titles(calendar), timeout=20)
    assert len(calendar.live_events()) == 3  # updated in place, never a copy
    await shop.call("DELETE", "ingest", event_path, want=None)
    await eventually(lambda: titles(calendar) == {"Open day", "Training"}, timeout=20)
    renamed = {"name": "Acme Cup", "description": "Cup ties", "color": "green", "timezone": "Europe/London"}
    await shop.call("PUT", "ingest", f"/v1/calendars/{shop.code}/{cal['code']}", renamed)
    await eventually(lambda: calendar.body["summary"] == "Acme Cup", timeout=20)
    assert calendar.body["description"] == "Cup ties" and calendar.list_entry["backgroundColor"] == "#008000"


async def test_a_filter_update_removes_the_events_the_subscription_no_longer_sees(
    shop: Shop, google: GoogleDouble
) -> None:
    cal = await fixtures_calendar(shop)
    answer, _ = await shop.subscribe_google(cal["code"], "bea")
    calendar = calendar_of(google, "bea@gmail.test")
    assert len(calendar.live_events()) == 3
    path = f"/v1/subscription/{shop.code}/{cal['code']}/{answer['subscriptionId']}"
    updated = await shop.call("PUT", "ingest", path, {"calendarTags": [{"internalId": cal["team"]}]})
    assert "RedirectTo" not in updated  # Google access is fine: nothing to re-authorize
    await eventually(lambda: titles(calendar) == {"Acme v Rovers"}, timeout=20)


async def test_a_revoked_grant_asks_for_reauthorization_and_resumes_the_same_subscription(
    shop: Shop, google: GoogleDouble
) -> None:
    cal = await fixtures_calendar(shop)
    answer, _ = await shop.subscribe_google(cal["code"], "cyd")
    calendar = calendar_of(google, "cyd@gmail.test")
    google.revoke_user("cyd@gmail.test")  # the user removes Kalends in their Google account
    await shop.call("PATCH", "ingest", f"/v1/calendars/{shop.code}/{cal['code']}/events/m2", {"title": "Open day!"})
    path = f"/v1/subscription/{shop.code}/{cal['code']}/{answer['subscriptionId']}"

    async def reauthorization() -> str | None:
        body = await shop.call("PUT", "ingest", path, {"redirectTo": shop.page})
        return body.get("RedirectTo")

    consent = await eventually(reauthorization, timeout=15)
    assert "login_hint=cyd%40gmail.test" in consent
    result = await shop.callback(await google.consent(consent, "cyd@gmail.test"))
    assert result == {
        "success": "true",
        "new": "false",
        "subscriberId": "cyd",
        "subscriptionId": answer["subscriptionId"],
    }
    assert google.calendars_of("cyd@gmail.test") == [calendar]  # the same calendar, filled in again
    await eventually(lambda: "Open day!" in titles(calendar), timeout=20)
    again = await shop.call("PUT", "ingest", path, {"redirectTo": shop.page})
    assert "RedirectTo" not in again


async def test_the_user_deleting_our_calendar_ends_the_subscription_with_an_unsubscribe_webhook(
    shop: Shop, google: GoogleDouble, receiver: Receiver, hooks: str
) -> None:
    cal = await fixtures_calendar(shop)
    answer, _ = await shop.subscribe_google(cal["code"], "dot")
    # The user deletes the calendar in Google Calendar (calendars.delete with their own token).
    doomed = calendar_of(google, "dot@gmail.test").id
    token = next(t for t, a in google.access_tokens.items() if a.grant.email == "dot@gmail.test")
    async with shop.session.delete(
        f"{google.url}/calendar/v3/calendars/{doomed}", headers={"Authorization": f"Bearer {token}"}
    ) as deleted:
        assert deleted.status == 204
    await shop.call("PATCH", "ingest", f"/v1/calendars/{shop.code}/{cal['code']}/events/m1", {"title": "Changed"})

    def unsubscribed() -> list[Any]:
        return [
            r
            for r in receiver.at(hooks)
            if r.json["eventType"] == "Unsubscribe"
            and r.json["eventDetails"]["calendarSubscriptionId"] == answer["subscriptionId"]
        ]

    await eventually(unsubscribed, timeout=20)
    gone = await shop.call("GET", "ingest", f"/v1/subscription/{answer['subscriptionId']}")
    assert gone["isActive"] is False
    # dot@ has no other subscription with us: the grant is revoked (the calendar is left alone).
    await eventually(lambda: "dot@gmail.test" in google.revoked, timeout=20)


async def test_cancel_on_the_consent_screen_comes_back_unsuccessful_and_leaves_no_active_subscription(
    shop: Shop, google: GoogleDouble
) -> None:
    cal = await fixtures_calendar(shop)
    body = {"subscriberId": "eli", "subscriptionMethod": "Google", "redirectTo": shop.page}
    answer = await shop.call("POST", "ingest", f"/v1/subscribe/{shop.code}/{cal['code']}", body)
    result = await shop.callback(await google.consent(answer["redirectTo"], "eli@gmail.test", allow=False))
    assert result["success"] == "false" and result["subscriberId"] == "eli"
    assert '"code": "AccessDenied"' in result["errors"]
    assert google.calendars_of("eli@gmail.test") == []
    pending = await shop.call("GET", "ingest", f"/v1/subscription/{answer['subscriptionId']}")
    assert pending["isActive"] is False


async def test_a_replayed_or_forged_state_is_refused(shop: Shop, google: GoogleDouble) -> None:
    cal = await fixtures_calendar(shop)
    body = {"subscriberId": "fin", "subscriptionMethod": "google", "redirectTo": shop.page}
    answer = await shop.call("POST", "ingest", f"/v1/subscribe/{shop.code}/{cal['code']}", body)
    location = await google.consent(answer["redirectTo"], "fin@gmail.test")
    assert (await shop.callback(location))["success"] == "true"
    async with shop.session.get(location, allow_redirects=False) as replayed:
        assert replayed.status == 400 and "already" in (await replayed.json())["errors"][0]["reason"]
    forged = location.split("state=")[0] + "state=eyJuIjoiMSJ9.forged&code=x"
    async with shop.session.get(forged, allow_redirects=False) as response:
        assert response.status == 400 and (await response.json())["errors"][0]["code"] == "InvalidState"


async def test_the_google_route_answers_302_to_the_consent_screen_and_needs_redirect_to(
    shop: Shop, google: GoogleDouble
) -> None:
    cal = await fixtures_calendar(shop)
    path = f"/v1/google/{shop.code}/{cal['code']}"
    refused = await shop.call("POST", "sync", path, {"UserName": "gus"}, want=400)
    assert "redirectTo" in refused["errors"][0]["reason"]
    async with shop.session.post(
        shop.stack.url("sync") + path, json={"subscriberId": "gus", "redirectTo": shop.page}, allow_redirects=False
    ) as response:
        assert response.status == 302
        location = response.headers["Location"]
    assert location.startswith(google.settings()["KALENDS_GOOGLE_AUTH_URL"])
    result = await shop.callback(await google.consent(location, "gus@gmail.test"))
    assert result["success"] == "true" and result["subscriberId"] == "gus"
    assert len(calendar_of(google, "gus@gmail.test").live_events()) == 3


async def test_a_subscription_event_reaches_fifty_google_subscribers(shop: Shop, google: GoogleDouble) -> None:
    cal = await fixtures_calendar(shop)
    ids = []
    for n in range(50):
        answer, result = await shop.subscribe_google(cal["code"], f"fan{n}")
        assert result["success"] == "true"
        ids.append(answer["subscriptionId"])
    event = {"eventId": "bonus", "title": "Meet the team", "start": "2026-12-20T12:00:00", "end": "2026-12-20T13:00:00"}
    await shop.call(
        "POST", "ingest", f"/v1/subscriptionevent/{shop.code}", {"subscriptionIds": ids, "event": event}, 202
    )

    def everyone_has_it() -> bool:
        return all("Meet the team" in titles(calendar_of(google, f"fan{n}@gmail.test")) for n in range(50))

    await eventually(everyone_has_it, timeout=60)


async def test_a_merchant_cannot_ask_consent_for_another_merchants_subscription(
    shop: Shop, google: GoogleDouble, google_stack: Stack
) -> None:
    cal = await fixtures_calendar(shop)
    answer, _ = await shop.subscribe_google(cal["code"], "hal")
    rival = await google_stack.new_account(name="Rival")
    headers = {"Authorization": f"Bearer {await google_stack.token(rival)}"}
    consent = google_stack.url("sync") + f"/v1/google/{rival['accountCode']}/{cal['code']}/consent"
    hijack = {"subscriptionId": answer["subscriptionId"], "redirectTo": "https://rival.test/"}
    async with shop.session.post(consent, json=hijack, headers=headers) as response:
        assert response.status == 404, await response.text()
    pending = {"subscriptionId": answer["subscriptionId"], "redirectTo": "https://rival.test/", "subscription": {}}
    async with shop.session.post(consent, json=pending, headers=headers) as response:
        assert response.status == 400, await response.text()
