"""The calendar pages in headless Chromium (DevTools protocol): each device's primary button and its
link, keyboard-only subscribing to one tag (and the feed then holds that tag's events only), axe-core
on every subscriber page, screenshots of each saved under .cache/artifacts/web/."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from shared.testing import Stack
from tests.e2e.ingest.browser import Page, chromium_page, install_chromium
from tests.e2e.web.browser_tools import (
    assert_accessible,
    axe_violations,
    emulate,
    evaluate,
    install_axe,
    press,
    screenshot,
    tab_to,
)
from tests.e2e.web.conftest import Calendar, Shop, make_calendar
from tests.e2e.web.test_pages import ANDROID, IPHONE, WINDOWS, wait_for_feed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def axe_source() -> str:
    return install_axe()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Page]:
    async with chromium_page(install_chromium()) as page:
        await page.send("Page.enable")
        await page.send("DOM.enable")
        await page.send("Runtime.enable")
        yield page


@pytest.fixture(scope="module")
async def fixtures(shop: Shop) -> Calendar:
    page = {"email": "optional", "marketingOptIn": "Tell me about ticket sales"}
    return await make_calendar(shop, subscribePage=page, image="https://images.example/lion.png")


async def open_page(page: Page, url: str) -> None:
    await page.navigate(url)


async def text_of(page: Page, selector: str) -> str:
    return str(await evaluate(page, f"document.querySelector({selector!r}).textContent.trim()"))


async def attribute(page: Page, selector: str, name: str) -> str:
    return str(await evaluate(page, f"document.querySelector({selector!r}).getAttribute({name!r})"))


async def submit(page: Page, action: object) -> None:
    """Do `action` (a coroutine that submits the form) and wait for the page it loads."""
    loaded = page.expect("Page.loadEventFired")
    await action  # type: ignore[misc]
    await asyncio.wait_for(loaded.get(), 30)


@pytest.mark.parametrize(
    ("device", "user_agent", "mobile", "label", "scheme"),
    [
        ("iphone", IPHONE, True, "Add to Apple Calendar", "webcal"),
        ("android", ANDROID, True, "Add to Google Calendar", "https"),
        ("windows", WINDOWS, False, "Add to Outlook desktop", "webcal"),
    ],
)
async def test_each_device_gets_its_primary_button_and_the_link_its_calendar_app_takes(
    web_stack: Stack,
    browser: Page,
    axe_source: str,
    fixtures: Calendar,
    device: str,
    user_agent: str,
    mobile: bool,
    label: str,
    scheme: str,
) -> None:
    started = time.monotonic()
    await emulate(browser, user_agent, mobile=mobile)
    await open_page(browser, web_stack.url("web") + fixtures.page_path + "?utm_source=browser-test")
    assert await text_of(browser, "#primary") == label
    assert bool(await evaluate(browser, "!!document.querySelector('.qr-code')")) is (not mobile)
    await assert_accessible(browser, axe_source, f"calendar page ({device})")
    await screenshot(browser, f"calendar-page-{device}")

    await submit(browser, browser.click("#primary"))
    assert (await text_of(browser, "h1")).startswith("You're subscribed to Acme League")
    link = await attribute(browser, "#open", "href")
    assert urlsplit(link).scheme == scheme
    if device == "android":
        assert urlsplit(link).netloc == "calendar.google.com"
    else:
        assert "/v1/webcal/" in link
    assert (await attribute(browser, "#unsubscribe", "href")).startswith(web_stack.url("ingest") + "/v1/unsubscribe/")
    await assert_accessible(browser, axe_source, f"confirmation ({device})")
    await screenshot(browser, f"confirmation-{device}")
    assert time.monotonic() - started < 30


async def test_keyboard_only_subscribing_to_one_tag_gives_a_feed_of_that_tags_events_only(
    web_stack: Stack, browser: Page, axe_source: str, fixtures: Calendar
) -> None:
    await emulate(browser, WINDOWS, mobile=False)
    await open_page(browser, web_stack.url("web") + fixtures.page_path)
    tigers = fixtures.tags["Tigers"]
    await tab_to(browser, f"el.name === 'tag' && el.value === '{tigers}'")
    await press(browser, " ")
    assert await evaluate(browser, f"document.querySelector('input[value=\"{tigers}\"]').checked") is True
    await tab_to(browser, "el.id === 'app-copy'")
    await submit(browser, press(browser, "Enter"))
    assert (await text_of(browser, "h1")).startswith("You're subscribed")
    await screenshot(browser, "confirmation-copy-link")
    feed_url = str(await evaluate(browser, "document.getElementById('feed-url').value"))
    # The Copy button is the script's: shown only when it runs.
    assert await evaluate(browser, "document.querySelector('[data-copy]').hidden") is False
    feed = await wait_for_feed(feed_url, "Tigers match 1")
    assert "SUMMARY:Tigers match 1" in feed and "SUMMARY:Tigers match 2" in feed
    assert "Lions" not in feed


async def test_every_other_subscriber_page_passes_axe_core(
    web_stack: Stack, browser: Page, axe_source: str, fixtures: Calendar
) -> None:
    await emulate(browser, IPHONE, mobile=True)
    base = web_stack.url("web")
    pages = {
        "not-found": f"/c/{fixtures.shop.code}/no-such-calendar",
        "google-returned": fixtures.page_path + "/google?success=true&subscriptionId=0b2c",
        "home": "/",
    }
    for name, path in pages.items():
        await open_page(browser, base + path)
        await assert_accessible(browser, axe_source, name)
        await screenshot(browser, name)
    # The form shown again with a problem (an address that is not one): the script-less path.
    await open_page(browser, base + fixtures.page_path)
    await evaluate(browser, "document.getElementById('email').type = 'text'")  # past the browser's own check
    await browser.type_into("#email", "not-an-address")
    await submit(browser, browser.click("#primary"))
    assert "enter an email address like" in await text_of(browser, "#problem")
    assert await attribute(browser, "#email", "aria-invalid") == "true"
    await assert_accessible(browser, axe_source, "form with a problem")
    await screenshot(browser, "calendar-page-problem")
    # The check can fail: an image without a text alternative is one of axe's critical findings.
    await evaluate(browser, "document.body.insertAdjacentHTML('beforeend', '<img src=\"/static/none.png\">')")
    assert "image-alt" in {v["id"] for v in await axe_violations(browser, axe_source)}


async def test_with_script_disabled_the_page_still_subscribes_and_shows_the_address_to_copy(
    web_stack: Stack, browser: Page, fixtures: Calendar
) -> None:
    await emulate(browser, WINDOWS, mobile=False)
    await browser.send("Emulation.setScriptExecutionDisabled", value=True)
    try:
        await open_page(browser, web_stack.url("web") + fixtures.page_path)
        await submit(browser, browser.click("#app-copy"))
        html = await browser.html()
        assert "You're subscribed to Acme League" in html
        assert re.search(r'<input[^>]*id="feed-url"[^>]*value="http://[^"]+/v1/webcal/', html)
        assert '<button type="button" data-copy="feed-url" hidden="">' in html  # the script's button stays hidden
        await screenshot(browser, "confirmation-no-script")
    finally:
        await browser.send("Emulation.setScriptExecutionDisabled", value=False)
