"""Load for fault runs, and the check that follows: every accepted change in every affected feed and
every due webhook delivered, each exactly once.

A merchant keeps adding events to one calendar and subscribing new subscribers (each a Subscribe
webhook) while a fault happens. A change counts as accepted when ingest answered 2xx; what failed or
timed out is counted as refused (it may or may not have happened, so it may appear at most once).
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from shared.testing import Stack
from tests.integration.webhook.receiver import Receiver

CALENDAR = "faults"
HOOK_PATH = "/hook"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=5)


@dataclass
class Tenant:
    stack: Stack
    account: dict[str, Any]
    token: str
    subscriptions: list[str] = field(default_factory=list)  # accepted, so due a Subscribe webhook each
    events: list[str] = field(default_factory=list)  # titles of accepted events
    refused: int = 0

    @property
    def code(self) -> str:
        return str(self.account["accountCode"])

    async def call(self, method: str, service: str, path: str, body: Any) -> tuple[int, Any]:
        """(status, JSON body); status 0 when the request failed or timed out."""
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            async with (
                aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session,
                session.request(method, self.stack.url(service) + path, json=body, headers=headers) as response,
            ):
                return response.status, await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return 0, None

    async def subscribe(self, subscriber: str) -> bool:
        body = {"subscriberId": subscriber, "userAgent": "fault-run", "subscriptionMethod": "WebCal"}
        status, answer = await self.call("POST", "ingest", f"/v1/subscribe/{self.code}/{CALENDAR}", body)
        if status == 200:
            self.subscriptions.append(str(answer["subscriptionId"]))
            return True
        self.refused += 1
        return False

    async def add_event(self, title: str, day: int) -> bool:
        body = {"externalId": title.replace(" ", "-"), "title": title, "start": f"2031-01-{day:02d}T10:00:00"}
        status, _ = await self.call("POST", "ingest", f"/v1/calendars/{self.code}/{CALENDAR}/events", body)
        if status in (200, 201):
            self.events.append(title)
            return True
        self.refused += 1
        return False


async def prepare(stack: Stack, receiver: Receiver) -> Tenant:
    """An account with a webhook to `receiver`, a calendar and two subscriptions (feeds to watch)."""
    account = await stack.new_account(name="Fault Run")
    tenant = Tenant(stack, account, await stack.token(account))
    status, hook = await tenant.call("POST", "webhook", f"/v1/webhooks/{tenant.code}", {"url": receiver.url(HOOK_PATH)})
    assert status == 201, hook
    status, calendar = await tenant.call(
        "POST", "ingest", f"/v1/calendars/{tenant.code}", {"code": CALENDAR, "name": "Fault run"}
    )
    assert status == 201, calendar
    for subscriber in ("watcher-1", "watcher-2"):
        assert await tenant.subscribe(subscriber)
    return tenant


async def drive(tenant: Tenant, stop: asyncio.Event, pause: float) -> None:
    i = 0
    while not stop.is_set():
        await tenant.add_event(f"Load {i:03d}", 1 + i % 28)
        if i % 3 == 0:
            await tenant.subscribe(f"load-{i:03d}")
        i += 1
        await asyncio.sleep(pause)


async def under_fault(
    tenant: Tenant, fault: Callable[[], Awaitable[None]], before: float = 1.0, after: float = 2.0, pause: float = 0.05
) -> int:
    """Load for `before` seconds, then the fault (which returns once the system is back), then `after`
    seconds more; returns how many changes were accepted after the fault (the system came back)."""
    stop = asyncio.Event()
    load = asyncio.create_task(drive(tenant, stop, pause))
    await asyncio.sleep(before)
    await fault()
    accepted_before = len(tenant.events) + len(tenant.subscriptions)
    await asyncio.sleep(after)
    stop.set()
    await load
    return len(tenant.events) + len(tenant.subscriptions) - accepted_before


SUMMARY = re.compile(r"(?m)^SUMMARY:(Load \d{3})\r?$")


async def _feed_titles(session: aiohttp.ClientSession, url: str) -> collections.Counter[str] | None:
    try:
        async with session.get(url) as response:
            if response.status != 200:
                return None
            return collections.Counter(SUMMARY.findall(await response.text()))
    except (aiohttp.ClientError, TimeoutError):
        return None


def _subscribed(receiver: Receiver) -> collections.Counter[str]:
    return collections.Counter(
        r.json["eventDetails"]["calendarSubscriptionId"]
        for r in receiver.at(HOOK_PATH)
        if r.status == 200 and r.json.get("eventType") == "Subscribe"
    )


@dataclass
class Outcome:
    accepted_events: int
    accepted_subscriptions: int
    refused: int
    feeds: int
    missing: dict[str, list[str]]  # feed -> accepted titles it lacks
    duplicated: dict[str, dict[str, int]]  # feed -> titles it has more than once
    undelivered: list[str]  # accepted subscriptions without a Subscribe webhook
    redelivered: dict[str, int]  # subscriptions whose Subscribe webhook arrived more than once
    seconds_to_converge: float

    def summary(self) -> str:
        return (
            f"accepted {self.accepted_events} events and {self.accepted_subscriptions} subscriptions, refused"
            f" {self.refused}; {self.feeds} feeds: {len(self.missing)} missing some, {len(self.duplicated)} with"
            f" duplicates; webhooks: {self.accepted_subscriptions - len(self.undelivered)} delivered,"
            f" {len(self.undelivered)} undelivered, {len(self.redelivered)} more than once;"
            f" converged in {self.seconds_to_converge:.1f} s"
        )


async def converge(tenant: Tenant, receiver: Receiver, timeout: float = 60.0, quiet: float = 2.0) -> Outcome:
    """Wait until every feed has every accepted event and every Subscribe webhook arrived (or time is
    up), then `quiet` seconds more for late duplicates; what is missing or doubled."""
    feed = tenant.stack.url("feed")
    urls = [f"{feed}/v1/webcal/{sid}" for sid in tenant.subscriptions]
    urls.append(f"{feed}/v1/calendars/{tenant.code}/{CALENDAR}.ics")
    wanted = set(tenant.events)
    started = time.monotonic()
    counts: dict[str, collections.Counter[str]] = {}
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
        while True:
            for url in urls:
                if url not in counts or not wanted <= set(counts[url]):
                    found = await _feed_titles(session, url)
                    if found is not None:
                        counts[url] = found
            feeds_done = all(url in counts and wanted <= set(counts[url]) for url in urls)
            hooks_done = set(tenant.subscriptions) <= set(_subscribed(receiver))
            if (feeds_done and hooks_done) or time.monotonic() - started > timeout:
                break
            await asyncio.sleep(0.3)
        took = time.monotonic() - started
        await asyncio.sleep(quiet)
        for url in urls:
            found = await _feed_titles(session, url)
            if found is not None:
                counts[url] = found
    delivered = _subscribed(receiver)
    return Outcome(
        accepted_events=len(tenant.events),
        accepted_subscriptions=len(tenant.subscriptions),
        refused=tenant.refused,
        feeds=len(urls),
        missing={u: sorted(wanted - set(counts.get(u, {}))) for u in urls if not wanted <= set(counts.get(u, {}))},
        duplicated={
            u: {t: n for t, n in c.items() if n > 1} for u, c in counts.items() if max(c.values(), default=0) > 1
        },
        undelivered=[sid for sid in tenant.subscriptions if sid not in delivered],
        redelivered={sid: n for sid, n in delivered.items() if n > 1},
        seconds_to_converge=took,
    )
