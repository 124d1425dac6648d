"""Sync benchmark: a change accepted by ingest until it is visible in a pushed CalDAV calendar, side
by side with the same change becoming visible in the subscriber's webcal feed, in the same run.

Real processes on 127.0.0.1: auth, ingest, feed, sync, PostgreSQL, RabbitMQ and a Radicale CalDAV
server. Each change is a PATCH of an event's title; the clock starts at ingest's 200 and stops when
the new title is in the pushed resource (GET on Radicale) and, separately, in the feed. Then a
fan-out: one change to KALENDS_BENCH_FANOUT CalDAV subscribers of one calendar, until every one of
their calendars shows it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from shared.testing import Stack, running_stack
from tests.tools.radicale_server import RadicaleServer

CHANGES = int(os.environ.get("KALENDS_BENCH_CHANGES", "500"))
FANOUT = int(os.environ.get("KALENDS_BENCH_FANOUT", "200"))
EVENTS = 50


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None) -> Any:
    async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
        text = await response.text()
        assert response.status < 300, (method, url, response.status, text[:500])
        return await response.json(content_type=None) if text.strip() else None


async def _until(probe: Any, timeout: float = 60.0) -> float:
    """Poll `probe()` until true; returns when it first held (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while True:
        if await probe():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError("change not visible in time")
        await asyncio.sleep(0.02)


class Calendars:
    def __init__(self, session: aiohttp.ClientSession, stack: Stack, account: dict[str, Any], token: str) -> None:
        self.session, self.stack, self.account, self.token = session, stack, account, token
        self.base = f"{stack.url('ingest')}/v1"

    async def calendar(self, events: int) -> tuple[str, list[dict[str, Any]]]:
        code = f"bench{uuid.uuid4().hex[:6]}"
        calendars = f"{self.base}/calendars/{self.account['accountCode']}"
        await _call(self.session, "POST", calendars, self.token, {"code": code, "name": "Bench", "timezone": "UTC"})
        made = []
        for i in range(events):
            day = f"2027-01-{1 + i % 28:02d}"
            body = {"title": f"Game {i}", "start": f"{day}T19:00:00", "end": f"{day}T21:00:00"}
            made.append(await _call(self.session, "POST", f"{calendars}/{code}/events", self.token, body))
        return code, made

    async def subscribe_caldav(self, code: str, radicale: RadicaleServer) -> dict[str, Any]:
        user, password = f"b{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
        radicale.add_user(user, password)
        caldav = {"url": radicale.url, "username": user, "password": password}
        body = {"subscriberId": user, "subscriptionMethod": "caldav", "caldav": caldav}
        answer: dict[str, Any] = await _call(
            self.session, "POST", f"{self.base}/subscribe/{self.account['accountCode']}/{code}", self.token, body
        )
        answer["auth"] = _basic(user, password)
        return answer

    async def resource_has(self, subscriber: dict[str, Any], event_id: str, marker: str) -> bool:
        url = f"{subscriber['calendarUrl']}{event_id}.ics"
        async with self.session.get(url, headers={"Authorization": subscriber["auth"]}) as response:
            return response.status == 200 and marker.encode() in await response.read()


async def _changes(
    cal: Calendars, code: str, events: list[dict[str, Any]], pushed: dict[str, Any], feed: str
) -> tuple[list[float], list[float]]:
    to_caldav: list[float] = []
    to_feed: list[float] = []
    etag = ""
    for n in range(CHANGES):
        event = events[n % len(events)]
        marker = f"Changed {n} {uuid.uuid4().hex[:6]}"
        url = f"{cal.base}/calendars/{cal.account['accountCode']}/{code}/events/{event['id']}"
        await _call(cal.session, "PATCH", url, cal.token, {"title": marker})
        accepted = time.perf_counter()

        async def in_feed(marker: str = marker) -> bool:
            nonlocal etag
            async with cal.session.get(feed, headers={"If-None-Match": etag}) as response:
                if response.status != 200:
                    return False
                etag = response.headers.get("ETag", "")
                return marker.encode() in await response.read()

        caldav_seen, feed_seen = await asyncio.gather(
            _until(lambda e=event, m=marker: cal.resource_has(pushed, e["id"], m)), _until(in_feed)
        )
        to_caldav.append(caldav_seen - accepted)
        to_feed.append(feed_seen - accepted)
    return to_caldav, to_feed


async def _fan_out(cal: Calendars, radicale: RadicaleServer) -> tuple[float, float]:
    code, events = await cal.calendar(1)
    subscribers = []
    for _ in range(FANOUT):
        subscribers.append(await cal.subscribe_caldav(code, radicale))
    event_id = events[0]["id"]
    for subscriber in subscribers:
        await _until(lambda s=subscriber: cal.resource_has(s, event_id, "Game 0"), timeout=300)
    marker = f"Everyone {uuid.uuid4().hex[:6]}"
    url = f"{cal.base}/calendars/{cal.account['accountCode']}/{code}/events/{event_id}"
    await _call(cal.session, "PATCH", url, cal.token, {"title": marker})
    started = time.perf_counter()
    for subscriber in subscribers:
        await _until(lambda s=subscriber: cal.resource_has(s, event_id, marker), timeout=300)
    elapsed = time.perf_counter() - started
    return elapsed, FANOUT / elapsed


async def _radicale_alone(radicale: RadicaleServer, count: int) -> tuple[float, float]:
    """Radicale's own figures with sync's client and no Kalends around it: (p50 s of one PUT, PUTs/s
    at the engine's default concurrency of 32)."""
    from datetime import UTC, datetime

    from services.sync.adapters.caldav import CalDavProvider
    from services.sync.domain.provider import CalendarMeta, Connection
    from shared.messages import EventData

    user, password = f"ref{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    radicale.add_user(user, password)
    provider = CalDavProvider(timeout=30, allow_private=True)
    meta = CalendarMeta(uuid.uuid4(), "Reference")
    try:
        found = await provider.connect(radicale.url, user, password, meta)
        connection = Connection(uuid.uuid4(), uuid.uuid4(), "caldav", user, {"username": user, "password": password})
        now = datetime.now(UTC)

        def event(n: int) -> EventData:
            return EventData(event_id=uuid.uuid4(), calendar_id=meta.calendar_id, account_id=uuid.uuid4(),
                             sequence=1, changed_at=now, created_at=now, title=f"Ref {n}",
                             start="2027-02-01T10:00:00", end="2027-02-01T11:00:00")  # fmt: skip

        singles = []
        for n in range(50):
            started = time.perf_counter()
            await provider.put_event(connection, found.collection_url, meta, event(n), None, None)
            singles.append(time.perf_counter() - started)
        slots = asyncio.Semaphore(32)

        async def one(n: int) -> None:
            async with slots:
                await provider.put_event(connection, found.collection_url, meta, event(n), None, None)

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        return _pct(singles, 0.5), count / (time.perf_counter() - started)
    finally:
        await provider.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _row(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {1000 * _pct(values, 0.5):.0f} | {1000 * _pct(values, 0.99):.0f} | {1000 * max(values):.0f}"
        f" | {1000 * statistics.fmean(values):.0f} |"
    )


async def _run(workdir: Path) -> str:
    radicale = RadicaleServer(workdir / "radicale").start()
    try:
        async with running_stack("bench_sync") as stack:
            await stack.start("auth")
            await stack.start("ingest")
            await stack.start("feed", env={"KALENDS_PUBLIC_API_URL": stack.url("ingest")})
            await stack.start("sync", env={"KALENDS_SYNC_ALLOW_PRIVATE": "1"})
            account = await stack.new_account()
            token = await stack.token(account)
            async with aiohttp.ClientSession() as session:
                cal = Calendars(session, stack, account, token)
                code, events = await cal.calendar(EVENTS)
                pushed = await cal.subscribe_caldav(code, radicale)
                feed = f"{stack.url('feed')}/v1/webcal/{pushed['subscriptionId']}"
                await _until(lambda: cal.resource_has(pushed, events[-1]["id"], "Game"), timeout=120)
                to_caldav, to_feed = await _changes(cal, code, events, pushed, feed)
                fan_seconds, fan_rate = await _fan_out(cal, radicale)
                put_p50, put_rate = await _radicale_alone(radicale, max(FANOUT, 100))
    finally:
        radicale.stop()
    return "\n".join(
        [
            f"Change to visible: PATCH accepted by ingest -> new title in the pushed CalDAV resource (Radicale,"
            f" sync default settings) and in the same subscription's webcal feed; {len(to_caldav)} changes,"
            f" {EVENTS}-event calendar, sequential.",
            "",
            "| target | p50 ms | p99 ms | max ms | mean ms |",
            "|---|---|---|---|---|",
            _row("pushed CalDAV calendar (sync)", to_caldav),
            _row("webcal feed (feed)", to_feed),
            "",
            f"Fan-out: one change to {FANOUT} CalDAV subscribers of one calendar (one Radicale, sync concurrency 32):"
            f" all calendars show it after {fan_seconds:.1f} s ({fan_rate:.0f} subscriber calendars per second).",
            "",
            f"Radicale alone (the same CalDAV client, no Kalends): one PUT p50 {1000 * put_p50:.0f} ms;"
            f" {put_rate:.0f} PUTs per second at 32 concurrent.",
        ]
    )


def main() -> str:
    with tempfile.TemporaryDirectory(prefix="kalends-bench-sync-") as workdir:
        return asyncio.run(_run(Path(workdir)))


if __name__ == "__main__":
    print(main())
