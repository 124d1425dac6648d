"""auth, ingest, webhook and sync as processes, sync and ingest pointed at the Google double; a merchant
with a webhook and a confirmation page on a real recording receiver."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from shared.testing import Stack
from tests.doubles.google import GoogleDouble
from tests.doubles.google_calendar import GoogleCalendar
from tests.e2e.webhook.conftest import E2E_WEBHOOK_ENV
from tests.integration.webhook.receiver import Receiver, Reply

PAGE = Reply(
    200, body=b"<!doctype html><title>Thanks</title><h1>Subscribed</h1>", headers={"Content-Type": "text/html"}
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 4.4.4; SM-G360P Build/KTU84P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/54.0.2840.85 Mobile Safari/537.36"
)


@pytest.fixture(scope="module")
async def google() -> AsyncIterator[GoogleDouble]:
    double = await GoogleDouble().start()
    yield double
    await double.stop()
    assert double.rejections == [], "requests Google would have refused"


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    recorder = await Receiver().start()
    yield recorder
    await recorder.stop()


@pytest.fixture(scope="module")
async def google_stack(stack: Stack, google: GoogleDouble) -> AsyncIterator[Stack]:
    env = {**google.settings(), "KALENDS_PUBLIC_API_URL": stack.url("ingest")}
    stack.env.update(env)
    # Generous start timeouts: the machine running the suite may be busy with other stacks.
    await stack.start("auth", timeout=90)
    await stack.start("ingest", timeout=90)
    await stack.start("webhook", env=E2E_WEBHOOK_ENV, timeout=90)
    await stack.start("feed", timeout=90)
    sync_env = {"KALENDS_SYNC_POLL_INTERVAL": "0.2", "KALENDS_SYNC_BACKOFF_BASE": "0.2"}
    await stack.start("sync", env=sync_env, timeout=90)
    yield stack


@dataclass
class Shop:
    """A merchant: its account, a session with its Bearer token, a calendar and the stack's URLs."""

    account: dict[str, Any]
    session: aiohttp.ClientSession
    stack: Stack
    google: GoogleDouble
    receiver: Receiver

    @property
    def code(self) -> str:
        return str(self.account["accountCode"])

    async def call(self, method: str, service: str, path: str, body: Any = None, want: int | None = 200) -> Any:
        async with self.session.request(
            method, self.stack.url(service) + path, json=body, allow_redirects=False
        ) as response:
            payload = await response.json() if response.content_type == "application/json" else response
            if want is not None:
                assert response.status == want, payload
            return payload

    async def callback(self, location: str) -> dict[str, str]:
        """Follow Google's redirect to sync's callback (as the browser would); the result parameters."""
        async with aiohttp.ClientSession() as browser, browser.get(location, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            answer = response.headers["Location"]
        return dict(parse_qsl(urlsplit(answer).query))

    async def subscribe_google(
        self, calendar: str, subscriber: str, **extra: Any
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Subscribe with Google, consent over HTTP as `subscriber`@gmail.test; (answer, result parameters)."""
        body = {"subscriberId": subscriber, "subscriptionMethod": "google", "redirectTo": self.page, **extra}
        answer = await self.call("POST", "ingest", f"/v1/subscribe/{self.code}/{calendar}", body)
        location = await self.google.consent(answer["redirectTo"], f"{subscriber}@gmail.test")
        return answer, await self.callback(location)

    @property
    def page(self) -> str:
        return self.receiver.url(f"/{self.code}/confirmation")


@pytest.fixture(scope="module")
async def shop(google_stack: Stack, google: GoogleDouble, receiver: Receiver) -> AsyncIterator[Shop]:
    account = await google_stack.new_account(name="Acme Sports")
    token = await google_stack.token(account)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        merchant = Shop(account, session, google_stack, google, receiver)
        receiver.script(f"/{merchant.code}/confirmation", then=PAGE)
        yield merchant


async def eventually(check: Callable[[], Awaitable[Any] | Any], timeout: float = 15.0) -> Any:
    """Poll `check` until it returns something truthy (pushes are asynchronous by design)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s")
        await asyncio.sleep(0.1)


def calendar_of(google: GoogleDouble, email: str) -> GoogleCalendar:
    [calendar] = google.calendars_of(email)
    return calendar


def titles(calendar: GoogleCalendar) -> set[str]:
    return {e["summary"] for e in calendar.live_events()}


def new_code(prefix: str = "cal") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def hooks(shop: Shop, receiver: Receiver) -> str:
    """The merchant's webhook, registered once for the module: the receiver's path it posts to."""
    await shop.call("POST", "webhook", f"/v1/webhooks/{shop.code}", {"url": receiver.url("/hooks")}, 201)
    return "/hooks"
