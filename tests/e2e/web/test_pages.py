"""The calendar pages over HTTP against real auth, ingest, feed and webhook processes: what a page
shows, what subscribing from it records (actionType, UTM, referrer) and hands back, and what the
web service's platform token may and may not do."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from shared.testing import Stack, basic_auth
from tests.e2e.web.conftest import Calendar, Shop, make_calendar
from tests.integration.webhook.receiver import Receiver

pytestmark = pytest.mark.e2e

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


async def get_page(stack: Stack, path: str, **headers: str) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(stack.url("web") + path, headers={"Accept": "text/html", **headers}) as response,
    ):
        return response.status, await response.text(), response.headers


async def post_form(stack: Stack, path: str, form: list[tuple[str, str]], **headers: str) -> tuple[int, str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            stack.url("web") + path, data=form, headers={"Accept": "text/html", **headers}, allow_redirects=False
        ) as response,
    ):
        return response.status, await response.text(), response.headers


def hidden_fields(page: str) -> list[tuple[str, str]]:
    return [(n, html.unescape(v)) for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)]


def link(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*href="([^"]+)"|href="([^"]+)"[^>]*id="{element_id}"', page)
    assert found, f"no #{element_id} link"
    return html.unescape(found.group(1) or found.group(2))


def feed_value(page: str) -> str:
    found = re.search(r'id="feed-url" class="feed-url" readonly value="([^"]+)"', page)
    assert found
    return html.unescape(found.group(1))


async def feed_text(url: str) -> tuple[int, str]:
    """The feed at `url` (its credentials sent as HTTP Basic, as calendar apps do)."""
    parts = urlsplit(url)
    auth = basic_auth(parts.username or "", parts.password or "") if parts.username else None
    plain = parts._replace(netloc=f"{parts.hostname}:{parts.port}").geturl()
    async with (
        aiohttp.ClientSession() as session,
        session.get(plain, headers={"Authorization": auth} if auth else {}) as response,
    ):
        return response.status, await response.text()


async def wait_for_feed(url: str, present: str, timeout: float = 15.0) -> str:
    """The feed once the projection has it (feed consumes ingest's messages: a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        status, text = await feed_text(url)
        if (status == 200 and present in text) or time.monotonic() > deadline:
            assert status == 200, text
            return text
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def league(shop: Shop) -> Calendar:
    return await make_calendar(shop)


async def test_the_page_shows_the_calendar_its_tags_and_upcoming_events_with_the_devices_primary_button(
    web_stack: Stack, league: Calendar
) -> None:
    for user_agent, primary, label in [
        (IPHONE, "apple", "Add to Apple Calendar"),
        (ANDROID, "google", "Add to Google Calendar"),
        (WINDOWS, "outlook", "Add to Outlook desktop"),
    ]:
        status, page, headers = await get_page(web_stack, league.page_path, **{"User-Agent": user_agent})
        assert status == 200 and headers["Vary"] == "User-Agent"
        assert "Acme League" in page and "Every match of the season." in page
        assert all(f"<strong>{title}</strong>" in page for title in league.events)
        assert all(f'value="{tag_id}"> {name}' in page for name, tag_id in league.tags.items())
        assert f'class="primary" name="app" value="{primary}" id="primary">{label}</button>' in page
        assert ("qr-code" in page) is (user_agent is WINDOWS)  # a QR code for desktop visitors only
        assert "Content-Security-Policy" in headers
    async with aiohttp.ClientSession() as session, session.head(web_stack.url("web") + league.page_path) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "text/html; charset=utf-8"


async def test_subscribing_from_the_page_records_the_page_action_utm_and_referrer_and_the_feed_has_the_tags_events(
    web_stack: Stack, shop: Shop, league: Calendar
) -> None:
    receiver = await Receiver().start()
    try:
        hook = await shop.call("POST", "webhook", f"/v1/webhooks/{shop.code}", {"url": receiver.url("/crm")}, want=201)
        assert hook["id"]
        query = "?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_content=%3Cb%3E"
        status, page, _ = await get_page(
            web_stack, league.page_path + query, **{"User-Agent": IPHONE, "Referer": "https://club.example/fixtures"}
        )
        assert status == 200
        visit = hidden_fields(page)
        assert visit == [
            ("utm_source", "newsletter"),
            ("utm_medium", "email"),
            ("utm_campaign", "spring"),
            ("utm_content", "<b>"),
            ("referrer", "https://club.example/fixtures"),
        ]
        status, done, headers = await post_form(
            web_stack,
            league.page_path,
            [*visit, ("tag", league.tags["Lions"]), ("app", "apple")],
            **{"User-Agent": IPHONE},
        )
        assert status == 200, done
        assert headers["Cache-Control"] == "no-store"
        webcal = link(done, "open")
        assert webcal.startswith("webcal://") and "/v1/webcal/" in webcal
        subscription_id = webcal.rsplit("/", 1)[1]
        assert link(done, "unsubscribe") == f"{web_stack.url('ingest')}/v1/unsubscribe/{subscription_id}"

        details = await shop.call("GET", "ingest", f"/v1/subscription/{subscription_id}")
        assert details["actionType"] == "SubscriptionViaCalendarPage"
        assert (details["utmSource"], details["utmMedium"], details["utmCampaign"], details["utmContent"]) == (
            "newsletter",
            "email",
            "spring",
            "<b>",
        )
        assert details["urlReferrer"] == "https://club.example/fixtures" and details["userAgent"] == IPHONE
        assert [t["name"] for t in details["tags"]] == ["Lions"]

        (delivery,) = await receiver.wait_for("/crm", 1, timeout=15)
        event = delivery.json
        assert event["eventType"] == "Subscribe"
        assert event["eventDetails"]["actionType"] == "SubscriptionViaCalendarPage"
        assert event["eventDetails"]["utmSource"] == "newsletter"
        assert event["eventDetails"]["calendarTags"] == [{"tagId": league.tags["Lions"], "tagText": "Lions"}]

        feed = await wait_for_feed(feed_value(done), "Lions match 1")
        assert "SUMMARY:Lions match 1" in feed and "SUMMARY:Lions match 2" in feed
        assert "Tigers" not in feed
    finally:
        await receiver.stop()


async def test_a_protected_calendars_credentials_are_only_in_the_confirmations_body(
    web_stack: Stack, shop: Shop
) -> None:
    vault = await make_calendar(shop, events_per_tag=1, protected=True)
    status, done, headers = await post_form(web_stack, vault.page_path, [("app", "copy")])
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer" and "Location" not in headers
    url = feed_value(done)
    parts = urlsplit(url)
    assert parts.username and parts.username.startswith("page-") and parts.password
    feed = await wait_for_feed(url, "Lions match 1")
    assert "Lions match 1" in feed and "Tigers match 1" in feed
    async with aiohttp.ClientSession() as session:
        bare = parts._replace(netloc=f"{parts.hostname}:{parts.port}").geturl()
        async with session.get(bare) as response:
            assert response.status == 401


async def test_google_without_the_sync_flow_gets_googles_add_by_url_page_with_the_feed(
    web_stack: Stack, league: Calendar
) -> None:
    status, done, _ = await post_form(web_stack, league.page_path, [("app", "google")], **{"User-Agent": ANDROID})
    assert status == 200, done
    google = urlsplit(link(done, "open"))
    assert (google.netloc, google.path) == ("calendar.google.com", "/calendar/render")
    assert "cid=webcal%3A%2F%2F" in google.query


async def test_choices_the_page_did_not_offer_show_the_page_again_with_the_problem(
    web_stack: Stack, shop: Shop
) -> None:
    page = {"email": "required", "marketingOptIn": "Send me the club's news"}
    newsletter = await make_calendar(shop, events_per_tag=1, subscribePage=page)
    status, shown, _ = await get_page(web_stack, newsletter.page_path)
    assert 'type="email" id="email" name="email"' in shown and "Send me the club&#39;s news" in shown
    status, again, _ = await post_form(web_stack, newsletter.page_path, [("app", "apple"), ("utm_source", "ad")])
    assert status == 400 and 'role="alert"' in again and "enter your email address" in again
    assert ("utm_source", "ad") in hidden_fields(again)
    status, again, _ = await post_form(web_stack, newsletter.page_path, [("app", "apple"), ("tag", str(uuid.uuid4()))])
    assert status == 400 and "no longer exists" in again
    status, done, _ = await post_form(
        web_stack, newsletter.page_path, [("app", "ics"), ("email", "fan@example.com"), ("marketing", "yes")]
    )
    assert status == 200 and link(done, "open").startswith("http://")


async def test_an_unknown_calendar_is_a_not_found_page_and_an_unknown_account_too(web_stack: Stack, shop: Shop) -> None:
    for path in (f"/c/{shop.code}/nope", "/c/no-such-account/nope", "/embed/no-such-account/nope.js"):
        status, page, _ = await get_page(web_stack, path)
        assert status == 404, path
    status, page, _ = await get_page(web_stack, f"/c/{shop.code}/nope")
    assert "<h1>Not found</h1>" in page


async def test_the_embed_script_puts_a_link_to_the_page_and_the_page_works_without_it(
    web_stack: Stack, league: Calendar
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(web_stack.url("web") + f"/embed/{league.shop.code}/{league.code}.js") as response,
    ):
        assert response.status == 200 and response.content_type == "text/javascript"
        script = await response.text()
    assert f'"{web_stack.url("web")}{league.page_path}?utm_medium=embed"' in script
    assert '"Subscribe to Acme League"' in script


async def test_the_platform_token_reads_and_subscribes_for_any_account_and_nothing_more(
    web_stack: Stack, shop: Shop, league: Calendar
) -> None:
    platform = await web_stack.new_account(name="Another platform")
    client = await web_stack.admin("create-client", platform["accountCode"], "--scope", "calendar-pages")
    token = await web_stack.token(client)
    merchant_token = await web_stack.token(platform)  # the same account's ordinary client
    base = f"{web_stack.url('ingest')}/v1/calendars/{shop.code}/{league.code}"
    async with aiohttp.ClientSession() as session:

        async def status(method: str, url: str, bearer: str, body: Any = None) -> int:
            async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {bearer}"}) as r:
                return r.status

        assert await status("GET", base, token) == 200
        assert await status("GET", base + "/tags", token) == 200
        assert await status("GET", base + "/events", token) == 200
        # What it reads of events is what a public page may show: no private event, no people.
        hidden = await make_calendar(shop, events_per_tag=1)
        events_path = f"/v1/calendars/{shop.code}/{hidden.code}/events"
        when = {"start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z"}
        people = {"attendees": [{"email": "fan@example.com"}], "organizer": {"email": "boss@example.com"}}
        await shop.call("POST", "ingest", events_path, {"title": "Board meeting", "class": "private", **when}, want=201)
        await shop.call("POST", "ingest", events_path, {"title": "Open day", **when, **people}, want=201)
        async with session.get(
            f"{web_stack.url('ingest')}{events_path}", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            seen = await response.json()
        assert "Open day" in {e["title"] for e in seen} and "Board meeting" not in {e["title"] for e in seen}
        assert not any({"attendees", "organizer", "externalId"} & set(e) for e in seen), seen
        merchant_view = await shop.call("GET", "ingest", events_path)
        assert {"Open day", "Board meeting"} <= {e["title"] for e in merchant_view}  # the merchant sees all
        assert await status("GET", base, merchant_token) == 403  # no scope: still its own account only
        assert await status("PUT", base, token, {"name": "Hijacked"}) == 403
        assert await status("DELETE", base, token) == 403
        assert await status("POST", base + "/events", token, {"title": "x", "start": "2030-01-01T00:00:00Z"}) == 403
        assert await status("POST", f"{web_stack.url('ingest')}/v1/calendars/{shop.code}", token, {"code": "x"}) == 403
        assert await status("GET", f"{web_stack.url('webhook')}/v1/webhooks/{shop.code}", token) == 403
    # actionType is validated: a merchant may state one of the seed's subscribe actions, nothing else.
    path = f"/v1/subscribe/{shop.code}/{league.code}"
    refused = await shop.call("POST", "ingest", path, {"actionType": "Hacked", "subscriptionMethod": "webcal"}, 400)
    assert "actionType" in str(refused)
    stated = {"actionType": "SubscriptionViaSms", "subscriptionMethod": "webcal", "subscriberId": "sms-1"}
    created = await shop.call("POST", "ingest", path, stated)
    got = await shop.call("GET", "ingest", f"/v1/subscription/{created['subscriptionId']}")
    assert got["actionType"] == "SubscriptionViaSms"
    with pytest.raises(RuntimeError, match="scopes must be among"):
        await web_stack.admin("create-client", platform["accountCode"], "--scope", "admin")


async def test_one_address_gets_a_burst_of_subscribes_then_a_429_page_and_others_still_subscribe(
    web_stack: Stack, shop: Shop, league: Calendar
) -> None:
    """Runs last in this module: it restarts web with a limit of 2 (behind a trusted proxy, so each
    visitor's address comes from X-Forwarded-For) and puts the module's settings back after."""
    before = dict(web_stack.processes["web"].env)
    search = f"/v1/subscriptions/{shop.code}?calendarCode={league.code}&limit=1"
    total = (await shop.call("GET", "ingest", search))["total"]
    await web_stack.start(
        "web", env={**before, "KALENDS_WEB_SUBSCRIBE_LIMIT": "2", "KALENDS_TRUSTED_PROXIES": "127.0.0.1"}
    )
    try:
        form = [("app", "apple")]

        async def subscribe(address: str) -> tuple[int, str, Any]:
            return await post_form(web_stack, league.page_path, form, **{"X-Forwarded-For": address})

        assert [(await subscribe("203.0.113.9"))[0] for _ in range(2)] == [200, 200]
        status, page, headers = await subscribe("203.0.113.9")
        assert status == 429, page
        assert "too many subscriptions from your network; try again in 5 minutes" in page
        assert int(headers["Retry-After"]) == 300  # 2 per 600 s: the next in 300 s
        assert (await subscribe("198.51.100.20"))[0] == 200
        # The refused one made nothing: three subscribers more, not four.
        assert (await shop.call("GET", "ingest", search))["total"] == total + 3
    finally:
        await web_stack.start("web", env=before)
