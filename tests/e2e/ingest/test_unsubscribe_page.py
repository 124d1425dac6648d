"""The subscriber's unsubscribe page in a real browser (headless Chromium), with script disabled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.ingest.api.unsubscribe_page import REASONS

from .browser import chromium_page, install_chromium
from .conftest import Merchant

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chromium() -> str:
    return install_chromium()


def named(nodes: list[dict[str, Any]], role: str) -> list[str]:
    """Accessible names of the nodes of one role in Chromium's accessibility tree."""
    return [
        str(n.get("name", {}).get("value", ""))
        for n in nodes
        if n.get("role", {}).get("value") == role and not n.get("ignored")
    ]


async def test_a_subscriber_unsubscribes_with_a_reason_in_a_browser_without_script(
    acme: Merchant, chromium: str
) -> None:
    status, _ = await acme.call("POST", f"/v1/calendars/{acme.code}", {"code": "unsub", "name": "Fixtures <2026>"})
    assert status == 201
    status, sub = await acme.call(
        "POST", f"/v1/subscribe/{acme.code}/unsub", {"subscriberId": "leaver", "subscriptionMethod": "webcal"}
    )
    assert status == 200
    url = f"{acme.base}/v1/unsubscribe/{sub['subscriptionId']}"

    async with chromium_page(chromium) as page:
        await page.send("Page.enable")
        await page.send("DOM.enable")
        await page.send("Accessibility.enable")
        await page.send("Emulation.setScriptExecutionDisabled", value=True)
        await page.navigate(url)

        tree = await page.accessibility_tree()
        assert "Unsubscribe from Fixtures <2026>?" in named(tree, "heading")
        assert named(tree, "radio") == list(REASONS)
        assert "Anything else you would like to tell us? (optional)" in named(tree, "textbox")
        assert named(tree, "button") == ["Unsubscribe"]
        assert "Why are you leaving? (optional)" in named(tree, "group")
        html = await page.html()
        assert "Fixtures &lt;2026&gt;" in html and "<script" not in html
        assert 'lang="en"' in html
        # The merchant's name came from auth's account.created, through RabbitMQ.
        assert "Acme Sports" in html

        await page.click('input[value="I subscribed by mistake"]')
        await page.type_into("#comment", "Too many reminders")
        loaded = page.expect("Page.loadEventFired")
        await page.click('button[type="submit"]')
        await asyncio.wait_for(loaded.get(), 30)

        done = await page.accessibility_tree()
        assert "You have been unsubscribed" in named(done, "heading")
        assert "Fixtures &lt;2026&gt;" in await page.html()

        # Opening the link again tells the subscriber they are already out.
        await page.navigate(url)
        assert "You are already unsubscribed" in named(await page.accessibility_tree(), "heading")
        await page.navigate(f"{acme.base}/v1/unsubscribe/00000000-0000-0000-0000-000000000000")
        assert "Subscription not found" in named(await page.accessibility_tree(), "heading")

    status, details = await acme.call("GET", f"/v1/subscription/{sub['subscriptionId']}")
    assert status == 200 and details["isActive"] is False
    assert details["actionType"] == "UnsubscribeUserAction"
    assert details["unsubscribeReason"] == "I subscribed by mistake - Too many reminders"
