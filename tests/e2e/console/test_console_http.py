"""The console over HTTP as a browser without script uses it: login, CSRF, calendars, events."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import aiohttp
from yarl import URL

from shared.testing import Stack, basic_auth
from tests.e2e.console.conftest import PASSWORD, Console, Merchant, new_merchant
from tests.integration.webhook.receiver import Receiver

# An API key as auth makes them (services/auth/domain/credentials.py): "kk" and 64 hex digits.
API_KEY = re.compile(r"kk[0-9a-f]{64}")


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


async def test_a_form_without_its_csrf_token_or_from_another_site_is_refused_and_changes_nothing(
    console: Console, merchant: Merchant
) -> None:
    await console.login(merchant.email)
    page = await console.post("/console/calendars", {"code": "nocsrf", "name": "No"}, want=403, csrf=False)
    assert "the form expired" in page
    page = await console.post("/console/calendars", {"code": "nocsrf", "name": "No", "csrf": "forged"}, want=403)
    async with console.session.post(
        console.base + "/console/calendars",
        data={"csrf": console.csrf, "code": "nocsrf", "name": "No"},
        headers={"Origin": "https://evil.example"},
    ) as response:
        assert response.status == 403
    calendars = await merchant.call("GET", "ingest", f"/v1/calendars/{merchant.code}")
    assert [c["code"] for c in calendars] == []


async def test_pages_without_a_session_lead_to_the_login_and_back(console: Console, merchant: Merchant) -> None:
    async with console.session.get(console.base + "/console/subscribers?q=x", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"].startswith("/console/login?next=")
    await console.get("/console/login?next=%2Fconsole%2Fsubscribers%3Fq%3Dx")
    async with console.session.post(
        console.base + "/console/login",
        data={"csrf": console.csrf, "email": merchant.email, "password": PASSWORD, "next": "/console/subscribers?q=x"},
        allow_redirects=False,
    ) as response:
        assert response.status == 303 and response.headers["Location"] == "/console/subscribers?q=x"
        cookie = response.cookies["kalends_console"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/console"
    await console.get("/console/login")
    async with console.session.post(
        console.base + "/console/login",
        data={"csrf": console.csrf, "email": merchant.email, "password": PASSWORD, "next": "https://evil.example/"},
        allow_redirects=False,
    ) as response:
        assert response.headers["Location"] == "/console/calendars"  # never off the site


async def test_a_wrong_password_says_so_and_repeated_failures_lock_the_login_with_the_apis_words(
    console: Console, console_stack: Stack
) -> None:
    merchant = await new_merchant(console_stack)
    page = await console.login(merchant.email, "not the password", want=401)
    assert "the email or the password is wrong" in page
    for _ in range(3):
        await console.login(merchant.email, "not the password", want=401)
    page = await console.login(merchant.email, "not the password", want=429)
    assert "too many failed logins" in page
    page = await console.login(merchant.email, PASSWORD, want=429)  # locked: the right password too
    assert "locked for about 15 minutes" in page


async def test_logout_ends_the_session_here_and_at_auth(console: Console, merchant: Merchant) -> None:
    await console.login(merchant.email)
    cookie = console.session.cookie_jar.filter_cookies(URL(console.base + "/console/"))["kalends_console"].value
    page = await console.post("/console/logout", {})
    assert "You are logged out." in page
    async with aiohttp.ClientSession(cookies={"kalends_console": cookie}) as stale:
        async with stale.get(console.base + "/console/calendars", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].startswith("/console/login")


async def test_a_bad_calendar_is_refused_with_ingests_reason_and_the_form_keeps_what_was_typed(
    console: Console, merchant: Merchant
) -> None:
    await console.login(merchant.email)
    page = await console.post("/console/calendars", {"code": "Bad Code!", "name": "Kept name"}, want=400)
    assert "This was refused" in page and "Kept name" in page
    assert "code" in page.split("This was refused", 1)[1].split("</ul>", 1)[0]


async def test_subscribers_are_found_filtered_shown_with_their_feed_and_deactivated(
    console: Console, merchant: Merchant
) -> None:
    await merchant.call("POST", "ingest", f"/v1/calendars/{merchant.code}", {"code": "club", "name": "Club"}, want=201)
    tag = await merchant.call(
        "POST", "ingest", f"/v1/calendars/{merchant.code}/club/tags", {"name": "Juniors"}, want=201
    )
    event = {"title": "Junior cup", "start": "2030-05-01T10:00:00Z", "tags": [tag["id"]]}
    await merchant.call("POST", "ingest", f"/v1/calendars/{merchant.code}/club/events", event, want=201)
    other = {"title": "Senior cup", "start": "2030-05-02T10:00:00Z"}
    await merchant.call("POST", "ingest", f"/v1/calendars/{merchant.code}/club/events", other, want=201)
    subscribed = await merchant.call(
        "POST",
        "ingest",
        f"/v1/subscribe/{merchant.code}/club",
        {
            "subscriberId": "fan-1",
            "emailAddress": "fan@example.com",
            "subscriptionMethod": "webcal",
            "calendarTags": [tag["id"]],
        },
    )
    sid = subscribed["subscriptionId"]
    await console.login(merchant.email)
    page = await console.get("/console/subscribers?q=fan%40example.com")
    assert "fan-1" in page and f"/console/subscribers/{sid}" in page
    page = await console.get(f"/console/subscribers?calendarCode=club&tag={tag['id']}&active=true&method=webcal")
    assert "fan-1" in page
    page = await console.get("/console/subscribers?method=google")
    assert "fan-1" not in page
    page = await console.get(f"/console/subscribers/{sid}")
    assert "Junior cup" in page  # the feed holds the tag's event ...
    assert "Senior cup" not in page  # ... and not the other one
    page = await console.post(f"/console/subscribers/{sid}/deactivate", {"calendarCode": "club"})
    assert "Subscription deactivated." in page
    details = await merchant.call("GET", "ingest", f"/v1/subscription/{sid}")
    assert details["isActive"] is False
    exported = await console.get("/console/analytics.csv?calendarCode=club")
    today = datetime.now(UTC).date().isoformat()
    assert exported.splitlines()[0] == "dimension,value,subscriptions,unsubscriptions"
    assert f"day,{today},1,1" in exported.splitlines() and "tag,Juniors,1,1" in exported.splitlines()


async def test_api_keys_and_clients_are_created_shown_once_and_revoked_from_the_console(
    console: Console, merchant: Merchant
) -> None:
    await console.login(merchant.email)
    page = await console.post("/console/keys/api-keys", {})
    api_key = re.search(r'API key: <span class="secret">(kk[0-9a-f]+)</span>', page)
    assert api_key is not None
    page = await console.post("/console/keys/clients", {})
    client_id = re.search(r'Client id: <span class="secret">([^<]+)</span>', page)
    secret = re.search(r'Client secret: <span class="secret">([^<]+)</span>', page)
    assert client_id is not None and secret is not None
    token_url = merchant.stack.url("auth") + "/oauth2/token"
    async with aiohttp.ClientSession() as http:
        grant = {"grant_type": "client_credentials"}
        async with http.post(
            token_url, data=grant, headers={"Authorization": basic_auth(client_id[1], secret[1])}
        ) as r:
            assert r.status == 200

        page = await console.get("/console/keys")
        # The list never shows a key again. (Not `"kk" not in page`: a form's random token or a client id
        # may hold those two letters; it failed so once in CI.)
        assert api_key[1] not in page and API_KEY.search(page) is None
        key_id = re.search(r'action="/console/keys/api-keys/([0-9a-f-]+)/revoke"', page)
        assert key_id is not None
        page = await console.post(f"/console/keys/api-keys/{key_id[1]}/revoke", {})
        assert "API key revoked." in page
        page = await console.post(f"/console/keys/clients/{client_id[1]}/revoke", {})
        assert f"Client {client_id[1]} revoked." in page
        async with http.post(
            token_url, data=grant, headers={"Authorization": basic_auth(client_id[1], secret[1])}
        ) as r:
            assert r.status == 401
    keys = await merchant.call("GET", "auth", f"/v1/accounts/{merchant.code}/api-keys")
    assert [k["revokedAt"] is not None for k in keys["apiKeys"]] == [True]


async def test_the_key_endpoints_take_only_a_live_token_of_the_account_in_the_path(merchant: Merchant) -> None:
    other = await new_merchant(merchant.stack)
    base = merchant.stack.url("auth")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/v1/accounts/{merchant.code}/clients") as r:
            assert r.status == 401
        headers = {"Authorization": f"Bearer {other.token}"}
        async with http.get(f"{base}/v1/accounts/{merchant.code}/clients", headers=headers) as r:
            assert r.status == 403
        login = {"email": merchant.email, "password": PASSWORD}
        async with http.post(f"{base}/v1/users/login", json=login) as r:
            session = await r.json()
        headers = {"Authorization": f"Bearer {session['accessToken']}"}
        async with http.get(f"{base}/v1/accounts/{merchant.code}/clients", headers=headers) as r:
            assert r.status == 200 and len((await r.json())["clients"]) == 1
        async with http.post(f"{base}/v1/users/logout", json={"refreshToken": session["refreshToken"]}) as r:
            assert r.status == 204
        async with http.get(f"{base}/v1/accounts/{merchant.code}/clients", headers=headers) as r:
            assert r.status == 401  # logged out: refused at once, where revocation starts


async def test_a_protected_subscribers_feed_is_shown_with_the_feeds_own_selection_rule(
    console: Console, merchant: Merchant
) -> None:
    calendar = {"code": "vault", "name": "Vault", "protected": True}
    await merchant.call("POST", "ingest", f"/v1/calendars/{merchant.code}", calendar, want=201)
    tag = await merchant.call("POST", "ingest", f"/v1/calendars/{merchant.code}/vault/tags", {"name": "Gold"}, want=201)
    for title, tags in (("Gold night", [tag["id"]]), ("Silver night", [])):
        body = {"title": title, "start": "2030-06-01T20:00:00Z", "tags": tags}
        await merchant.call("POST", "ingest", f"/v1/calendars/{merchant.code}/vault/events", body, want=201)
    subscribed = await merchant.call(
        "POST",
        "ingest",
        f"/v1/subscribe/{merchant.code}/vault",
        {"subscriberId": "vip", "subscriptionMethod": "webcal", "calendarTags": [tag["id"]]},
    )
    await console.login(merchant.email)
    page = await console.get(f"/console/subscribers/{subscribed['subscriptionId']}")
    assert "This calendar is protected" in page
    assert "Gold night" in page and "Silver night" not in page


async def test_saving_an_event_with_a_field_emptied_clears_it_and_keeps_what_the_form_does_not_show(
    console: Console, merchant: Merchant
) -> None:
    await console.login(merchant.email)
    await console.post("/console/calendars", {"code": "clearing", "name": "Clearing"})
    base = f"/v1/calendars/{merchant.code}/clearing/events"
    event = {
        "eventId": "match-1",
        "title": "Match",
        "start": "2030-05-01T18:00:00",
        "end": "2030-05-01T20:00:00",
        "timezone": "Europe/Paris",
        "url": "https://tickets.example/match-1",
        "location": "Stadium",
        "organizer": {"name": "League", "email": "league@example.com"},
    }
    await merchant.call("POST", "ingest", base, event, want=201)
    page = await console.post(
        "/console/calendars/clearing/events/match-1",
        {"title": "Match", "start": "2030-05-01T18:00", "end": "", "timezone": "", "url": "", "location": ""},
    )
    assert "Event “Match” saved." in page
    stored = await merchant.call("GET", "ingest", base + "/match-1")
    # Emptied, each falls back to ingest's default: an hour's duration, the calendar's zone, no link.
    assert (stored["end"], stored["timezone"], stored["url"]) == ("2030-05-01T19:00:00", "UTC", None), stored
    assert stored["location"] == "", stored
    assert stored["organizer"]["email"] == "league@example.com"  # not on the form: kept


def form_id(page: str, action: str) -> str:
    """The one-time id of the form that posts to `action` on `page`."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None, action
    found = re.search(r'name="formId" value="([^"]+)"', form[1])
    assert found is not None, form[1]
    return found[1]


async def test_reloading_the_page_that_showed_a_secret_makes_no_second_key_endpoint_or_rotation(
    console: Console, merchant: Merchant, receiver: Receiver
) -> None:
    await console.login(merchant.email)
    page = await console.get("/console/keys")
    once = form_id(page, "/console/keys/api-keys")
    page = await console.post("/console/keys/api-keys", {"formId": once})
    assert re.search(r'API key: <span class="secret">kk[0-9a-f]+</span>', page)
    # The browser's reload posts the same form again: back to the list, no second key.
    page = await console.post("/console/keys/api-keys", {"formId": once})
    assert "That form was sent already" in page and API_KEY.search(page) is None
    keys = await merchant.call("GET", "auth", f"/v1/accounts/{merchant.code}/api-keys")
    assert len(keys["apiKeys"]) == 1
    # A fresh form still makes a key.
    page = await console.post("/console/keys/api-keys", {"formId": form_id(page, "/console/keys/api-keys")})
    assert re.search(r'API key: <span class="secret">kk[0-9a-f]+</span>', page)

    page = await console.get("/console/webhooks")
    once = form_id(page, "/console/webhooks")
    form = {"formId": once, "url": receiver.url("/once"), "description": "once"}
    page = await console.post("/console/webhooks", form)
    assert "Endpoint created." in page
    page = await console.post("/console/webhooks", form)
    assert "That form was sent already" in page
    endpoints = await merchant.call("GET", "webhook", f"/v1/webhooks/{merchant.code}")
    assert [e["description"] for e in endpoints["webhooks"]] == ["once"]

    webhook_id = endpoints["webhooks"][0]["id"]
    action = f"/console/webhooks/{webhook_id}/rotate-secret"
    rotate = {"formId": form_id(await console.get(f"/console/webhooks/{webhook_id}"), action)}
    page = await console.post(action, rotate)
    assert "Secret rotated." in page
    page = await console.post(action, rotate)
    assert "That form was sent already" in page and "Secret rotated." not in page


async def test_a_calendar_with_more_events_than_a_page_shows_them_a_page_at_a_time(
    console: Console, merchant: Merchant
) -> None:
    await console.login(merchant.email)
    await console.post("/console/calendars", {"code": "busy", "name": "Busy"})
    base = f"/v1/calendars/{merchant.code}/busy/events"
    for n in range(101):
        event = {"eventId": f"ev-{n:03d}", "title": f"Event {n:03d}", "start": "2030-06-01T10:00:00"}
        await merchant.call("POST", "ingest", base, event, want=201)
    page = await console.get("/console/calendars/busy")
    shown = re.findall(r">Event (\d{3})</a>", page)
    assert len(shown) == 100 and shown[0] == "000" and "Events 1\u2013100" in page
    assert "Previous events" not in page
    following = re.search(r'href="(/console/calendars/busy\?offset=100)#events">Next events', page)
    assert following is not None
    page = await console.get(following[1])
    assert re.findall(r">Event (\d{3})</a>", page) == ["100"] and "Events 101\u2013101" in page
    assert "Next events" not in page and 'href="/console/calendars/busy?offset=0#events">Previous events' in page


async def test_tags_are_renamed_and_an_unused_one_deleted_from_the_console_and_a_used_one_is_kept_with_the_reason(
    console: Console, merchant: Merchant
) -> None:
    await console.login(merchant.email)
    await console.post("/console/calendars", {"code": "teams", "name": "Teams"})
    await console.post("/console/calendars/teams/tags", {"name": "Lions"})
    await console.post("/console/calendars/teams/tags", {"name": "Tigers"})
    listed = await merchant.call("GET", "ingest", f"/v1/calendars/{merchant.code}/teams/tags")
    tags = {t["name"]: t["id"] for t in listed}
    event = {"eventId": "derby", "title": "Derby", "start": "2030-07-01T15:00:00", "tags": [{"id": tags["Lions"]}]}
    await merchant.call("POST", "ingest", f"/v1/calendars/{merchant.code}/teams/events", event, want=201)

    page = await console.post(f"/console/calendars/teams/tags/{tags['Tigers']}", {"name": "Bears"})
    assert "Tag renamed “Bears”." in page
    page = await console.post(f"/console/calendars/teams/tags/{tags['Lions']}/delete", {}, want=409)
    assert "is on 1 event(s)" in page
    page = await console.post(f"/console/calendars/teams/tags/{tags['Tigers']}/delete", {})
    assert "Tag deleted." in page
    listed = await merchant.call("GET", "ingest", f"/v1/calendars/{merchant.code}/teams/tags")
    assert [t["name"] for t in listed] == ["Lions"]


async def test_a_body_that_is_not_a_form_is_refused_with_a_400_and_not_a_server_error(
    console: Console, merchant: Merchant
) -> None:
    # Each was a 500 (aiohttp's form parser raises ValueError or LookupError): schemathesis found the first.
    unreadable = [
        ("multipart/form-data", b"x"),  # no boundary
        ("multipart/form-data; boundary=abc", b"garbage"),  # no starting boundary
        ("application/x-www-form-urlencoded; charset=nope", b"a=b"),  # a charset Python does not know
        ("application/x-www-form-urlencoded", b"a=\xff"),  # bytes that are not UTF-8
    ]
    for content_type, body in unreadable:
        async with console.session.post(
            console.base + "/console/login", data=body, headers={"Content-Type": content_type}
        ) as response:
            assert response.status == 400, (content_type, response.status, await response.text())
    # Behind the session gate the form is read the same way (for its CSRF token) before any page runs.
    await console.login(merchant.email)
    async with console.session.post(
        console.base + "/console/calendars", data=b"x", headers={"Content-Type": "multipart/form-data"}
    ) as response:
        assert response.status == 400, await response.text()
    async with console.session.get(console.base + "/console/calendars") as response:
        assert response.status == 200 and response.url.path == "/console/calendars"  # still logged in
