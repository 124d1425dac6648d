"""Google push figures: one calendar with 1,000 Google subscribers (each consented through the Google
double), then one change to the calendar's event fanned out to all of them.

- fan-out: the PATCH answered by ingest -> every subscriber's Google calendar (in the double) shows the
  new title; goal under 30 s for 1,000 subscribers;
- pushes per second: 1,000 / that time, with one sync worker process (KALENDS_SYNC_CONCURRENCY 32);
- reference, measured in the same run: the double's own ceiling, events.update calls straight from
  this process at the same concurrency (what the double and HTTP alone allow here; the double runs in
  this benchmark's process, so it competes for the same two cores).

`python -m bench sync_google` (or `make bench`). BENCH_GOOGLE_SUBSCRIBERS changes the count.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from shared.amqp import Names
from shared.testing import (
    Stack,
    create_database,
    delete_prefixed,
    drop_database,
    random_name,
    server_urls,
    with_database,
)
from tests.doubles.google import GoogleDouble

SUBSCRIBERS = int(os.environ.get("BENCH_GOOGLE_SUBSCRIBERS", "1000"))
CONCURRENCY = 32
SETUP_CONCURRENCY = 16


async def _subscribe(
    session: aiohttp.ClientSession, stack: Stack, google: GoogleDouble, code: str, calendar: str, n: int
) -> None:
    body = {"subscriberId": f"fan{n}", "subscriptionMethod": "google", "redirectTo": "https://merchant.test/ok"}
    async with session.post(f"{stack.url('ingest')}/v1/subscribe/{code}/{calendar}", json=body) as response:
        answer = await response.json()
        assert response.status == 200, answer
    location = await google.consent(answer["redirectTo"], f"fan{n}@gmail.test")
    async with aiohttp.ClientSession() as browser, browser.get(location, allow_redirects=False) as response:
        result = dict(parse_qsl(urlsplit(response.headers["Location"]).query))
        assert result.get("success") == "true", result


async def _fan_out(session: aiohttp.ClientSession, stack: Stack, google: GoogleDouble, path: str) -> float:
    before = google.calls["calendar.events.update"]
    started = time.perf_counter()
    async with session.patch(stack.url("ingest") + path, json={"title": "Kick-off moved"}) as response:
        assert response.status == 200, await response.text()
    # Counting calls is cheap (the double shares this process); the titles are checked once at the end.
    while google.calls["calendar.events.update"] - before < SUBSCRIBERS:
        if time.perf_counter() - started > 300:
            raise TimeoutError(f"{google.calls['calendar.events.update'] - before} updates after 300 s")
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    moved = sum(1 for c in google.calendars.values() for e in c.live_events() if e["summary"] == "Kick-off moved")
    assert moved == SUBSCRIBERS, f"{moved} of {SUBSCRIBERS} calendars show the change"
    return elapsed


async def _ceiling(google: GoogleDouble, count: int) -> float:
    """events.update calls per second straight to the double, CONCURRENCY at a time."""
    targets: list[tuple[str, str, dict[str, Any]]] = []
    for calendar in list(google.calendars.values())[:count]:
        event = calendar.live_events()[0]
        token = next(t for t, a in google.access_tokens.items() if a.grant.email == calendar.owner)
        body = {k: event[k] for k in ("iCalUID", "summary", "start", "end")}
        targets.append((token, f"{google.url}/calendar/v3/calendars/{calendar.id}/events/{event['id']}", body))
    queue = list(targets)
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while queue:
                token, url, body = queue.pop()
                async with session.put(url, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
                    assert response.status == 200, await response.text()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return len(targets) / (time.perf_counter() - started)


async def _run() -> str:
    with server_urls() as (server_db, amqp_url):
        name = random_name("kalends_bench_google")
        await create_database(server_db, name)
        names = Names(random_name("bench") + ".")
        google = await GoogleDouble().start()
        stack = Stack(
            {
                "KALENDS_DATABASE_URL": with_database(server_db, name),
                "KALENDS_AMQP_URL": amqp_url,
                "KALENDS_AMQP_PREFIX": names.prefix,
                "KALENDS_LOG_LEVEL": "warning",
                "KALENDS_SYNC_CONCURRENCY": str(CONCURRENCY),
                **google.settings(),
            }
        )
        stack.env["KALENDS_PUBLIC_API_URL"] = stack.url("ingest")
        try:
            for service in ("auth", "ingest", "sync"):
                await stack.start(service)
            merchant = await stack.new_account()
            code = str(merchant["accountCode"])
            headers = {"Authorization": f"Bearer {await stack.token(merchant)}"}
            async with aiohttp.ClientSession(headers=headers) as session:
                base = f"{stack.url('ingest')}/v1/calendars/{code}"
                async with session.post(base, json={"code": "benchcal", "name": "Bench", "timezone": "UTC"}) as r:
                    assert r.status == 201, await r.text()
                event = {"eventId": "k1", "title": "Kick-off", "start": "2026-12-05T15:00:00"}
                async with session.post(f"{base}/benchcal/events", json=event) as r:
                    assert r.status == 201, await r.text()
                setup_started = time.perf_counter()
                gate = asyncio.Semaphore(SETUP_CONCURRENCY)

                async def one(n: int) -> None:
                    async with gate:
                        await _subscribe(session, stack, google, code, "benchcal", n)

                await asyncio.gather(*(one(n) for n in range(SUBSCRIBERS)))
                setup = time.perf_counter() - setup_started
                await asyncio.sleep(2)  # let the activation messages settle before measuring
                fan_out = await _fan_out(session, stack, google, "/v1/calendars/" + code + "/benchcal/events/k1")
            ceiling = await _ceiling(google, min(SUBSCRIBERS, 1000))
            rejected = len(google.rejections)
        finally:
            stack.stop_all()
            await google.stop()
            await delete_prefixed(amqp_url, {names.prefix})
            await drop_database(server_db, name)
    rows = [
        f"| measure, {SUBSCRIBERS} Google subscribers on one calendar | sync (1 process) | reference |",
        "|---|---|---|",
        f"| fan-out of one change: ingest answered -> every Google calendar shows it (goal < 30 s) |"
        f" {fan_out:.1f} s | - |",
        f"| pushes per second (events.update) | {SUBSCRIBERS / fan_out:,.0f} /s"
        f" | {ceiling:,.0f} /s (the double's ceiling: direct calls, {CONCURRENCY} concurrent) |",
        f"| consent + callback (calendar made and filled) per subscriber, {SETUP_CONCURRENCY} at once |"
        f" {setup / SUBSCRIBERS * 1000:.0f} ms each, {SUBSCRIBERS / setup:.1f} /s | - |",
        f"| requests the double refused as Google would | {rejected} | 0 expected |",
    ]
    return "\n".join(rows)


def main() -> str:
    return asyncio.run(_run())


if __name__ == "__main__":
    print(main())
