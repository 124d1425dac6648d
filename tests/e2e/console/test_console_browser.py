"""The console in headless Chromium (DevTools protocol): log in, create a calendar and an event, see the
subscriber and the day's count on the chart, retry a failed webhook delivery; axe-core on every console
page (no serious or critical violation); screenshots under .cache/artifacts/web/console-*.png."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from shared.testing import Stack
from tests.e2e.console.conftest import PASSWORD, Merchant
from tests.e2e.ingest.browser import Page, chromium_page, install_chromium
from tests.e2e.web.browser_tools import assert_accessible, emulate, evaluate, install_axe, screenshot
from tests.integration.webhook.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture(scope="module")
def axe_source() -> str:
    return install_axe()


@pytest.fixture
async def browser() -> AsyncIterator[Page]:
    async with chromium_page(install_chromium()) as page:
        await page.send("Page.enable")
        await page.send("DOM.enable")
        await page.send("Runtime.enable")
        await emulate(page, "Mozilla/5.0 (X11; Linux x86_64) Chrome/120 Safari/537.36", mobile=False)
        yield page


async def submit(page: Page, selector: str) -> None:
    """Click a form's button and wait for the page the form's answer loads."""
    loaded = page.expect("Page.loadEventFired")
    await page.click(selector)
    await asyncio.wait_for(loaded.get(), 30)


async def text(page: Page, selector: str = "main") -> str:
    return str(await evaluate(page, f"document.querySelector({selector!r}).innerText"))


async def checked_page(page: Page, axe_source: str, name: str) -> None:
    await assert_accessible(page, axe_source, f"console {name}")
    await screenshot(page, f"console-{name}")


async def wait_until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.25)


async def test_a_merchant_runs_the_console_in_a_browser_from_login_to_a_retried_webhook(
    console_stack: Stack, merchant: Merchant, receiver: Receiver, browser: Page, axe_source: str
) -> None:
    started = time.monotonic()
    web = console_stack.url("web")

    # Login (the form, a wrong password, then the right one).
    await browser.navigate(web + "/console/calendars")
    assert "/console/login" in str(await evaluate(browser, "location.pathname"))
    await checked_page(browser, axe_source, "login")
    await browser.type_into("#email", merchant.email)
    await browser.type_into("#password", "wrong password")
    await submit(browser, "button.primary")
    assert "the email or the password is wrong" in await text(browser, ".errors")
    await checked_page(browser, axe_source, "login-refused")
    await browser.type_into("#password", PASSWORD)
    await submit(browser, "button.primary")
    assert await text(browser, "h1") == "Calendars"
    await checked_page(browser, axe_source, "calendars-empty")

    # A calendar and an event.
    await browser.type_into("#code", "league")
    await browser.type_into("#name", "Acme League")
    await submit(browser, "button.primary")
    assert await text(browser, "h1") == "Acme League"
    await browser.type_into("#tag-name", "Lions")
    await submit(browser, "form[action$='/tags'] button")
    await browser.navigate(web + "/console/calendars/league/new-event")
    await checked_page(browser, axe_source, "event-new")
    await browser.type_into("#title", "Lions v Tigers")
    await browser.type_into("#start", "2030-04-06T15:00")
    await browser.type_into("#end", "2030-04-06T17:00")
    await evaluate(browser, "document.getElementById('frequency').value = 'WEEKLY'")
    await browser.click("input[name=byday][value=SA]")
    await browser.type_into("#count", "6")
    await submit(browser, "button.primary")
    assert "Every week on Saturday, 6 times" in await text(browser, "#events + p + table")
    await checked_page(browser, axe_source, "calendar")

    # A webhook endpoint whose receiver fails every scheduled attempt.
    hook_url = receiver.url("/hooks")
    receiver.fail("/hooks", 3)
    await browser.navigate(web + "/console/webhooks")
    await browser.type_into("#url", hook_url)
    await browser.click("input[name=eventTypes][value=Subscribe]")
    await submit(browser, "button.primary")
    assert "Signing secret" in await text(browser)
    # The create form's answer is the endpoint's page (so the secret is shown once, never stored).
    test_action = str(
        await evaluate(browser, "document.querySelector(\"form[action$='/test']\").getAttribute('action')")
    )
    webhook_path = test_action.removesuffix("/test")
    await checked_page(browser, axe_source, "webhook-created")

    # A fan subscribes (through the API, as the merchant's site does).
    subscribed = await merchant.call(
        "POST",
        "ingest",
        f"/v1/subscribe/{merchant.code}/league",
        {"subscriberId": "fan-7", "emailAddress": "fan7@example.com", "userAgent": IPHONE, "utmSource": "poster"},
    )
    await browser.navigate(web + "/console/subscribers?q=fan-7")
    assert "fan7@example.com" in await text(browser, "table")
    await checked_page(browser, axe_source, "subscribers")
    await browser.navigate(web + f"/console/subscribers/{subscribed['subscriptionId']}")
    await checked_page(browser, axe_source, "subscriber")

    # The day's count on the chart.
    await browser.navigate(web + "/console/analytics?calendarCode=league")
    today = datetime.now(UTC).date().isoformat()
    bar = f"rect[data-day='{today}'][data-kind='subscriptions']"
    assert await evaluate(browser, f"document.querySelector({bar!r}).getAttribute('data-value')") == "1"
    assert float(await evaluate(browser, f"document.querySelector({bar!r}).getAttribute('height')")) > 0
    assert await text(browser, "#total-subscriptions") == "1"
    await checked_page(browser, axe_source, "analytics")

    # The failed delivery, retried from its row.
    webhook_id = webhook_path.rsplit("/", 1)[1]

    async def exhausted() -> bool:
        log = await merchant.call("GET", "webhook", f"/v1/webhooks/{merchant.code}/{webhook_id}/deliveries")
        return bool(log["deliveries"]) and log["deliveries"][0]["status"] == "failed"

    await wait_until(exhausted)
    await browser.navigate(web + webhook_path)
    assert "failed" in await text(browser, "#deliveries + form + table")
    await checked_page(browser, axe_source, "webhook-failed")
    await submit(browser, "form[action*='/retry'] button")
    assert "Retried: attempt 4 succeeded (HTTP 200)." in await text(browser, ".notice")
    assert "succeeded" in await text(browser, "#deliveries + form + table")
    await checked_page(browser, axe_source, "webhook-retried")

    # Every other console page, for axe: lists with rows, an event's form, a refusal, the link's form.
    event_link = 'document.querySelector(\'a[href*="/events/"]:not([href$="/new"])\')'
    await browser.navigate(web + "/console/calendars/league")
    await browser.navigate(web + str(await evaluate(browser, f"{event_link}.getAttribute('href')")))
    await checked_page(browser, axe_source, "event-edit")
    for name, path in {
        "calendars": "/console/calendars",
        "webhooks": "/console/webhooks",
        "keys": "/console/keys",
        "subscribers-filtered": "/console/subscribers?calendarCode=league&active=true&method=webcal",
        "not-found": "/console/calendars/no-such-calendar",
        "analytics-refused": "/console/analytics?from=2026-02-01&to=2026-01-01",
    }.items():
        await browser.navigate(web + path)
        await checked_page(browser, axe_source, name)

    # Log out.
    await submit(browser, "nav.console form button")
    assert "You are logged out." in await text(browser)
    await browser.navigate(web + "/console/set-password/pt_not-a-real-link")
    await checked_page(browser, axe_source, "set-password")
    assert time.monotonic() - started < 90
