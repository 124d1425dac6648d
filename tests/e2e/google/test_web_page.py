"""The calendar page's Google button when sync runs Google: web -> ingest (platform token) -> sync's
consent URL -> Google (the double) -> sync's callback -> back to web's page, the subscription active
and recorded as SubscriptionViaCalendarPage."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from shared.testing import Stack
from tests.e2e.google.conftest import ANDROID, Shop, eventually, new_code

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def web(google_stack: Stack) -> str:
    await google_stack.start_web({"KALENDS_PUBLIC_WEB_URL": google_stack.url("web")}, timeout=90)
    return google_stack.url("web")


async def test_the_pages_google_button_runs_syncs_consent_flow_and_comes_back_to_the_page(shop: Shop, web: str) -> None:
    code = new_code()
    await shop.call("POST", "ingest", f"/v1/calendars/{shop.code}", {"code": code, "name": "Acme Cup"}, 201)
    page = f"{web}/c/{shop.code}/{code}"
    async with (
        aiohttp.ClientSession() as browser,
        browser.post(
            page,
            data={"app": "google", "utm_source": "poster"},
            headers={"User-Agent": ANDROID, "Accept": "text/html"},
            allow_redirects=False,
        ) as response,
    ):
        assert response.status == 303, await response.text()
        consent = response.headers["Location"]
    assert consent.startswith(shop.google.settings()["KALENDS_GOOGLE_AUTH_URL"])
    callback = await shop.google.consent(consent, "fan@gmail.test")
    async with aiohttp.ClientSession() as browser, browser.get(callback, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        back = response.headers["Location"]
    assert back.startswith(f"{page}/google?")
    result = dict(parse_qsl(urlsplit(back).query))
    assert result["success"] == "true"
    async with aiohttp.ClientSession() as browser, browser.get(back, headers={"Accept": "text/html"}) as response:
        assert response.status == 200
        assert "Acme Cup is in your Google Calendar" in await response.text()

    async def recorded() -> dict[str, object] | None:
        details = await shop.call("GET", "ingest", f"/v1/subscription/{result['subscriptionId']}")
        return details if details["isActive"] else None

    details = await eventually(recorded)
    assert details["actionType"] == "SubscriptionViaCalendarPage" and details["utmSource"] == "poster"
    assert details["subscriptionType"] == "google"
