"""Ingest under load: subscriptions created per second and latency with 32 concurrent clients
against one ingest process (role all: API, outbox relay and consumer), side by side with its
references on the same process: the framework floor (`/healthz`) and an authenticated read.

Runs auth and ingest as processes over a database and broker prefix of its own (shared.testing),
with a real client-credentials token. The load generator shares the machine's cores.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import asyncpg

from shared.testing import (
    Stack,
    create_database,
    delete_prefixed,
    drop_database,
    random_name,
    server_urls,
    with_database,
)

CLIENTS = 32
DURATION = float(os.environ.get("KALENDS_BENCH_SECONDS", "15"))
WARMUP = 2.0


@dataclass
class Result:
    name: str
    count: int
    errors: int
    seconds: float
    latencies: list[float]

    def row(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rate = self.count / self.seconds if self.seconds else 0.0
        return f"| {self.name} | {CLIENTS} | {self.count} | {self.errors} | {rate:,.0f} | {p50:.1f} | {p99:.1f} |"


async def load(
    name: str, session: aiohttp.ClientSession, request: Callable[[aiohttp.ClientSession, int], Awaitable[int]]
) -> Result:
    """CLIENTS workers issue requests back to back for DURATION seconds (after a warm-up)."""
    latencies: list[float] = []
    errors = 0
    sequence = iter(range(10**9))
    measuring = False

    async def worker(stop_at: float) -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            status = await request(session, next(sequence))
            elapsed = time.perf_counter() - started
            if not measuring:
                continue
            if status >= 400:
                errors += 1
            else:
                latencies.append(elapsed)

    await asyncio.gather(*(worker(time.monotonic() + WARMUP) for _ in range(CLIENTS)))
    measuring = True
    started = time.monotonic()
    await asyncio.gather(*(worker(started + DURATION) for _ in range(CLIENTS)))
    return Result(name, len(latencies), errors, time.monotonic() - started, latencies)


async def outbox_backlog(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM ingest.outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


async def run() -> str:
    with server_urls() as (server_db, amqp_url):
        name = random_name("kalends_bench")
        await create_database(server_db, name)
        database_url = with_database(server_db, name)
        prefix = random_name("bench") + "."
        stack = Stack(
            {
                "KALENDS_DATABASE_URL": database_url,
                "KALENDS_AMQP_URL": amqp_url,
                "KALENDS_AMQP_PREFIX": prefix,
                "KALENDS_LOG_LEVEL": "warning",
                "KALENDS_DB_POOL_MAX": "20",
            }
        )
        try:
            await stack.start("auth")
            await stack.start("ingest")
            account = await stack.new_account(name="Bench")
            token = await stack.token(account)
            code = account["accountCode"]
            base = stack.url("ingest")
            headers = {"Authorization": f"Bearer {token}"}
            connector = aiohttp.TCPConnector(limit=CLIENTS)
            async with aiohttp.ClientSession(base, connector=connector, headers=headers) as session:
                async with session.post(f"/v1/calendars/{code}", json={"code": "bench", "name": "Bench"}) as r:
                    assert r.status == 201, await r.text()
                async with session.post(
                    f"/v1/subscribe/{code}/bench", json={"subscriberId": "seed", "subscriptionMethod": "webcal"}
                ) as r:
                    known = (await r.json())["subscriptionId"]
                run_id = uuid.uuid4().hex[:8]

                async def healthz(s: aiohttp.ClientSession, _: int) -> int:
                    async with s.get("/healthz") as response:
                        await response.read()
                        return response.status

                async def read(s: aiohttp.ClientSession, _: int) -> int:
                    async with s.get(f"/v1/subscription/{known}") as response:
                        await response.read()
                        return response.status

                async def subscribe(s: aiohttp.ClientSession, n: int) -> int:
                    body = {
                        "subscriberId": f"user-{run_id}-{n}",
                        "emailAddress": f"user{n}@example.com",
                        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
                        "utmSource": "bench",
                    }
                    async with s.post(f"/v1/subscribe/{code}/bench", json=body) as response:
                        await response.read()
                        return response.status

                results = [
                    await load("GET /healthz (framework floor)", session, healthz),
                    await load("GET /v1/subscription/{id} (token + read)", session, read),
                    await load("POST /v1/subscribe (new subscriber, + outbox)", session, subscribe),
                ]
            deadline = time.monotonic() + 30
            while (backlog := await outbox_backlog(database_url)) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        finally:
            stack.stop_all()
            await drop_database(server_db, name)
            # The services' quorum queues under this run's prefix would otherwise stay on the broker.
            await delete_prefixed(amqp_url, {prefix})
    lines = [
        f"One ingest process (role all), {CLIENTS} concurrent clients, {DURATION:.0f} s per row after"
        f" {WARMUP:.0f} s warm-up, on this machine ({os.cpu_count()} cores shared with the load generator).",
        "",
        "| request | clients | requests | errors | per second | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
        *(r.row() for r in results),
        "",
        f"Outbox rows still unpublished 30 s after the run: {backlog} (the relay keeps up when this is 0).",
    ]
    return "\n".join(lines)


def main() -> str:
    return asyncio.run(run())


if __name__ == "__main__":
    print(main())
