"""Webhook figures: deliveries per second to a fast local receiver with one worker process, and
first-attempt latency (subscription accepted by ingest -> the receiver has it), p50 and p99.

References, measured in the same run on the same machine:
- throughput: plain aiohttp POSTs of the same body to the same receiver at the same concurrency
  (what HTTP alone allows here, no queue, no database, no signing);
- latency: a bare AMQP consumer bound to `subscription.created` (how long the broker hop alone takes
  from ingest's answer; the webhook adds the consumer's transaction, the dispatcher's claim,
  signing and the POST).

Each throughput run is measured twice: live (this process publishes the events while the worker
delivers them, as ingest would) and backlog (the events are queued while the webhook processes are
stopped with SIGSTOP, then the worker drains them alone; the reference has no producer beside it
either, so this is the like-for-like pair).

CPU per delivery beside each rate (shared machines make req/s noisy, CPU per request much less so):
the webhook process (bench/cputime.py; with BENCH_WEBHOOK_WORKERS=N, `--workers N`: its N processes),
the PostgreSQL backends serving the bench database, and this process (the receiver, plus the AMQP
driver or the reference's client).

`python -m bench webhook` (or `make bench`). Takes about a minute; the throughput phase stops after
KALENDS_BENCH_SECONDS (default 60) even if not every delivery has arrived. With
BENCH_WEBHOOK_PROFILE=<file.svg>, py-spy records the webhook process during the throughput phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import uvloop

from bench.cputime import CpuMeter, tree_cpu_seconds, tree_pids
from services.webhook import services
from services.webhook.adapters import repository as repo
from services.webhook.adapters.sender import RESPONSE_BODY_LIMIT, USER_AGENT
from services.webhook.domain.signing import new_secret
from shared.amqp import Names, Publisher
from shared.crypto import SecretBox
from shared.messages import Envelope, SubscriptionData, make_envelope
from shared.testing import (
    Stack,
    create_database,
    delete_prefixed,
    drop_database,
    random_name,
    server_urls,
)

DELIVERIES = int(os.environ.get("BENCH_WEBHOOK_DELIVERIES", "10000"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_WEBHOOK_LATENCY_SAMPLES", "200"))
CONCURRENCY = 128
DURATION = float(os.environ.get("KALENDS_BENCH_SECONDS", "60"))
PROFILE = os.environ.get("BENCH_WEBHOOK_PROFILE")
# Throughput runs, by how many merchants (one endpoint each) the events are spread over. With 16,
# the worker's limit of 8 attempts per endpoint allows 128 in flight, the reference's concurrency;
# with 1, that limit is the bound.
ENDPOINTS = [int(n) for n in os.environ.get("BENCH_WEBHOOK_ENDPOINTS", "16,1").split(",")]
# Webhook processes (`--workers N`: each one a delivery worker); the goal is stated for 1.
WORKERS = int(os.environ.get("BENCH_WEBHOOK_WORKERS", "1"))
# Pin the receiver process to these CPUs (taskset -c), e.g. "1"; unset: the scheduler decides.
RECEIVER_CPUS = os.environ.get("BENCH_WEBHOOK_RECEIVER_CPUS", "")
ROOT = Path(__file__).resolve().parent.parent


class DatabaseCpu:
    """CPU seconds of the PostgreSQL backends connected to one database, over a `with` block (a
    backend that connects inside the block counts from zero; one that exits inside it is lost)."""

    def __init__(self, url: str, database: str) -> None:
        self._url = url
        self._database = database
        self._before: dict[int, float] = {}
        self.seconds = 0.0

    async def _sample(self) -> dict[int, float]:
        conn = await asyncpg.connect(self._url)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", self._database
            )
        finally:
            await conn.close()
        return {r["pid"]: tree_cpu_seconds(r["pid"]) for r in rows}

    async def __aenter__(self) -> DatabaseCpu:
        self._before = await self._sample()
        return self

    async def __aexit__(self, *_: object) -> None:
        after = await self._sample()
        self.seconds = sum(max(0.0, cpu - self._before.get(pid, 0.0)) for pid, cpu in after.items())


@dataclass
class Run:
    """One measured phase: how many deliveries in how long, and the CPU each side spent."""

    count: int = 0
    seconds: float = 0.0
    service_cpu: float = 0.0  # the webhook process
    database_cpu: float = 0.0  # PostgreSQL backends of the bench database
    local_cpu: float = 0.0  # this process: the AMQP driver (or the reference's client)
    receiver_cpu: float = 0.0  # the receiver process
    load: float = 0.0  # 1-minute load average, mean of start and end

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def ms(self, seconds: float) -> float:
        return seconds * 1000 / self.count if self.count else 0.0


class FastReceiver:
    """The receiver process (bench/receiver.py): answers 200 at once; its arrival lines tell this
    process when each event arrived (perf_counter is the same clock in both processes)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.by_subscription: dict[str, float] = {}
        self.count = 0
        self.done = asyncio.Event()
        self.expect = 0
        self.port = 0
        self.pid = 0
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # The same process, one core if asked (BENCH_WEBHOOK_RECEIVER_CPUS), serves both runs.
        pin = ["taskset", "-c", RECEIVER_CPUS] if RECEIVER_CPUS else []
        self._process = await asyncio.create_subprocess_exec(
            *pin, sys.executable, "-m", "bench.receiver", cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        assert self._process.stdout is not None
        self.port = int(await asyncio.wait_for(self._process.stdout.readline(), 30))
        self.pid = self._process.pid
        self._reader = asyncio.create_task(self._read(self._process.stdout))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            event_id, sub, at = line.decode().split()
            now = float(at)
            self.count += 1
            self.arrivals.setdefault(event_id, now)
            if sub != "-":
                self.by_subscription.setdefault(sub, now)
            if self.expect and self.count >= self.expect:
                self.done.set()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def _subscription(account_id: uuid.UUID) -> SubscriptionData:
    return SubscriptionData(
        subscription_id=uuid.uuid4(),
        account_id=account_id,
        account_code="bench",
        merchant_name="Bench",
        calendar_id=uuid.uuid4(),
        calendar_code="cal",
        calendar_title="Bench calendar",
        subscription_type="webcal",
        created_at=datetime.now(UTC),
        email_address="fan@example.com",
        user_agent="Mozilla/5.0 (Macintosh)",
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _raw_http_rate(receiver: FastReceiver, body: bytes, count: int) -> Run:
    """The reference: `count` POSTs of the same body to the same receiver process, CONCURRENCY at a
    time, with the client settings of the webhook sender (one session, a TCPConnector of twice the
    concurrency, keep-alive, its User-Agent and the same set of headers), on uvloop like the service."""
    sem = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2, ttl_dns_cache=10)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": str(uuid.uuid4()),
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1," + "A" * 44,
        "kalends-delivery-id": str(uuid.uuid4()),
        "kalends-attempt": "1",
    }
    async with aiohttp.ClientSession(
        connector=connector, trust_env=False, headers={"User-Agent": USER_AGENT}
    ) as session:

        async def one() -> None:
            async with (
                sem,
                session.post(
                    f"http://127.0.0.1:{receiver.port}/raw", data=body, headers=headers, allow_redirects=False
                ) as r,
            ):
                await r.content.read(RESPONSE_BODY_LIMIT)

        run = Run(count)
        load = os.getloadavg()[0]
        with CpuMeter([receiver.pid]) as receiving:
            local = time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(count)))
            run.seconds = time.perf_counter() - started
            run.local_cpu = time.process_time() - local
        run.receiver_cpu, run.load = receiving.seconds, (load + os.getloadavg()[0]) / 2
        return run


def _profile(pid: int, label: str) -> subprocess.Popen[bytes] | None:
    if not PROFILE:
        return None
    duration = str(max(5, min(int(DURATION), 30)))
    py_spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    base, ext = os.path.splitext(PROFILE)
    # A .txt name asks for py-spy's collapsed stacks (one line per stack, for reading and diffing).
    fmt = ["--format", "raw"] if ext == ".txt" else []
    return subprocess.Popen(
        [py_spy, "record", "-o", f"{base}-{label}{ext}", "--pid", str(pid), "--duration", duration, *fmt],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _endpoints(
    stack: Stack, database_url: str, merchant: dict[str, Any], receiver: FastReceiver, n: int
) -> list[uuid.UUID]:
    """The accounts whose events the throughput phase sends: the merchant's, whose endpoint was made
    through the API, and n - 1 more merchants with one endpoint each to the same receiver (rows
    written with the service's own repository function; the accounts need not exist elsewhere)."""
    accounts = [uuid.UUID(merchant["accountId"])]
    if n <= 1:
        return accounts
    box = SecretBox.from_env(stack.env)
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(n - 1):
            account = uuid.uuid4()
            await repo.insert_endpoint(
                conn,
                box,
                account_id=account,
                url=f"http://127.0.0.1:{receiver.port}/hook",
                description="bench",
                event_types=["Subscribe"],
                enabled=True,
                secret=new_secret(),
            )
            accounts.append(account)
    finally:
        await conn.close()
    return accounts


async def _throughput(
    stack: Stack,
    names: Names,
    amqp_url: str,
    receiver: FastReceiver,
    accounts: list[uuid.UUID],
    database: DatabaseCpu,
) -> tuple[Run, Run, Run]:
    """(live: the worker delivers while this process publishes the events; backlog: the events were
    queued while the worker was stopped, then it drains them; the plain aiohttp reference)."""
    connection = await aio_pika.connect_robust(amqp_url)
    publisher = Publisher(connection, names)
    service = stack.processes["webhook"].process
    assert service is not None

    def events() -> list[Envelope]:
        return [
            make_envelope("subscription.created", _subscription(account), account_id=account)
            for account in (accounts[i % len(accounts)] for i in range(DELIVERIES))
        ]

    async def publish(envelopes: list[Envelope]) -> None:
        for i in range(0, len(envelopes), 200):
            batch = envelopes[i : i + 200]
            await asyncio.gather(*(publisher.publish(e.to_bytes(), e.type, str(e.id)) for e in batch))

    async def measure(envelopes: list[Envelope], label: str, backlog: bool) -> Run:
        receiver.count = 0
        receiver.arrivals.clear()
        receiver.expect = DELIVERIES
        receiver.done.clear()
        if backlog:
            # The queue fills while the worker (every webhook process) is stopped; the measured
            # drain is the worker alone, without this process publishing beside it.
            stopped = tree_pids(service.pid)
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
            try:
                await publish(envelopes)
            finally:
                for pid in stopped:
                    os.kill(pid, signal.SIGCONT)
        profiler = _profile(service.pid, label)
        run = Run()
        load = os.getloadavg()[0]
        async with database:
            with CpuMeter([service.pid]) as meter, CpuMeter([receiver.pid]) as receiving:
                local = time.process_time()
                started = time.perf_counter()
                if not backlog:
                    await publish(envelopes)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(receiver.done.wait(), DURATION)
                run.count, run.seconds = receiver.count, time.perf_counter() - started
                run.local_cpu = time.process_time() - local
        run.service_cpu, run.database_cpu, run.receiver_cpu = meter.seconds, database.seconds, receiving.seconds
        run.load = (load + os.getloadavg()[0]) / 2
        if profiler is not None:
            profiler.wait()
        return run

    live_events = events()
    live = await measure(live_events, f"{len(accounts)}ep", backlog=False)
    backlog = await measure(events(), f"{len(accounts)}ep-backlog", backlog=True)
    await publisher.close()
    await connection.close()
    # The exact body the webhook sent for the first event (the receiver parses it the same way).
    first = services.incoming_event(live_events[0])
    assert first is not None
    body = first.body()
    receiver.expect = 0
    reference = await _raw_http_rate(receiver, body, DELIVERIES)
    return live, backlog, reference


async def _latency(
    stack: Stack,
    names: Names,
    amqp_url: str,
    receiver: FastReceiver,
    merchant: dict[str, Any],
    session: aiohttp.ClientSession,
    calendar: str,
) -> tuple[list[float], list[float]]:
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    events = await channel.get_exchange(names.events)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(events, routing_key="subscription.created")
    seen_by_consumer: dict[str, float] = {}

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        data = json.loads(message.body)["data"]
        seen_by_consumer.setdefault(data["subscriptionId"], time.perf_counter())
        await message.ack()

    await queue.consume(on_message)
    webhook_ms: list[float] = []
    broker_ms: list[float] = []
    url = f"{stack.url('ingest')}/v1/subscribe/{merchant['accountCode']}/{calendar}"
    for i in range(LATENCY_SAMPLES):
        async with session.post(url, json={"subscriberId": f"fan-{i}", "userAgent": "Mozilla/5.0"}) as r:
            answer = await r.json()
            accepted = time.perf_counter()
            assert r.status in (200, 201), answer
        sub = str(answer["subscriptionId"])
        deadline = time.monotonic() + 10
        while (sub not in receiver.by_subscription or sub not in seen_by_consumer) and time.monotonic() < deadline:
            await asyncio.sleep(0.0005)
        webhook_ms.append((receiver.by_subscription[sub] - accepted) * 1000)
        broker_ms.append((seen_by_consumer[sub] - accepted) * 1000)
    await connection.close()
    return webhook_ms, broker_ms


async def _run() -> str:
    with server_urls() as (server_db, amqp_url):
        name = random_name("kalends_bench_webhook")
        database_url = await create_database(server_db, name)
        names = Names(random_name("bench") + ".")
        stack = Stack(
            {
                "KALENDS_DATABASE_URL": database_url,
                "KALENDS_AMQP_URL": amqp_url,
                "KALENDS_AMQP_PREFIX": names.prefix,
                "KALENDS_WEBHOOK_ALLOW_PRIVATE": "1",
                "KALENDS_WEBHOOK_TIMEOUT": "5",
                "KALENDS_LOG_LEVEL": "warning",
            }
        )
        receiver = FastReceiver()
        await receiver.start()
        runs: list[tuple[int, Run, Run, Run]] = []
        try:
            await stack.start("auth")
            await stack.start("ingest")
            await stack.start("webhook", *(["--workers", str(WORKERS)] if WORKERS > 1 else []))
            merchant = await stack.new_account()
            token = await stack.token(merchant)
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(headers=headers) as session:
                calendar = "benchcal"
                async with session.post(
                    f"{stack.url('ingest')}/v1/calendars/{merchant['accountCode']}",
                    json={"code": calendar, "name": "Bench", "timezone": "UTC"},
                ) as r:
                    assert r.status == 201, await r.text()
                async with session.post(
                    f"{stack.url('webhook')}/v1/webhooks/{merchant['accountCode']}",
                    json={"url": f"http://127.0.0.1:{receiver.port}/hook", "eventTypes": ["Subscribe"]},
                ) as r:
                    assert r.status == 201, await r.text()
                webhook_ms, broker_ms = await _latency(stack, names, amqp_url, receiver, merchant, session, calendar)
                made = 1
                for n in ENDPOINTS:
                    if n > made:  # endpoints of earlier runs stay: each run uses the first n accounts
                        await _endpoints(stack, database_url, merchant, receiver, n - made + 1)
                        made = n
                    accounts = await _accounts(database_url, n)
                    database = DatabaseCpu(server_db, name)
                    run, backlog, reference = await _throughput(stack, names, amqp_url, receiver, accounts, database)
                    runs.append((n, run, backlog, reference))
        finally:
            stack.stop_all()
            await receiver.stop()
            await drop_database(server_db, name)
            # The services' quorum queues under this run's prefix would otherwise stay on the broker.
            await delete_prefixed(amqp_url, {names.prefix})
    plural = "es" if WORKERS > 1 else ""
    rows = [
        f"| measure | webhook service ({WORKERS} worker process{plural})"
        " | reference: plain aiohttp POSTs, same receiver |",
        "|---|---|---|",
    ]
    for n, run, backlog, reference in runs:
        rows += [
            f"| **{n} merchant endpoint(s)**: deliveries per second, {run.count}/{DELIVERIES} events in"
            f" {run.seconds:.1f} s (load average {run.load:.1f})"
            f" | {run.rate:,.0f} /s | {reference.rate:,.0f} /s ({CONCURRENCY} concurrent, load average"
            f" {reference.load:.1f}) = {run.rate / reference.rate:.1%} |",
            f"| CPU ms per delivery, webhook process{plural} | {run.ms(run.service_cpu):.3f} ms | - |",
            f"| CPU ms per delivery, PostgreSQL backends | {run.ms(run.database_cpu):.3f} ms | - |",
            f"| CPU ms per delivery, receiver process{' (taskset ' + RECEIVER_CPUS + ')' if RECEIVER_CPUS else ''}"
            f" | {run.ms(run.receiver_cpu):.3f} ms | {reference.ms(reference.receiver_cpu):.3f} ms |",
            f"| CPU ms per delivery, bench process (AMQP publisher / reference client) |"
            f" {run.ms(run.local_cpu):.3f} ms | {reference.ms(reference.local_cpu):.3f} ms |",
            f"| CPU ms per delivery, sender side (webhook + PostgreSQL / reference client) |"
            f" {run.ms(run.service_cpu + run.database_cpu):.3f} ms | {reference.ms(reference.local_cpu):.3f} ms |",
            # The receiver does the same work per request in both runs: its CPU per request says how
            # slow the machine was then, so these ratios compare runs made under different loads.
            f"| the same in receiver requests (sender-side CPU / the receiver's CPU per request) |"
            f" {_per_receiver(run.service_cpu + run.database_cpu, run):.2f}"
            f" (webhook {_per_receiver(run.service_cpu, run):.2f},"
            f" PostgreSQL {_per_receiver(run.database_cpu, run):.2f})"
            f" | {_per_receiver(reference.local_cpu, reference):.2f} |",
            f"| {n} endpoint(s), **backlog**: the same number of events queued while the worker was stopped,"
            f" then drained (load average {backlog.load:.1f}) | {backlog.rate:,.0f} /s in {backlog.seconds:.1f} s"
            f" ({backlog.count}/{DELIVERIES}) | = {backlog.rate / reference.rate:.1%} of the reference |",
            f"| backlog: CPU ms per delivery, webhook process{plural} + PostgreSQL"
            f" | {backlog.ms(backlog.service_cpu):.3f} + {backlog.ms(backlog.database_cpu):.3f} ms | - |",
        ]
    rows += [
        f"| first-attempt latency p50 (ingest answered -> receiver has it), n={LATENCY_SAMPLES} |"
        f" {statistics.median(webhook_ms):.1f} ms | {statistics.median(broker_ms):.1f} ms (bare AMQP consumer) |",
        f"| first-attempt latency p99 | {_pct(webhook_ms, 0.99):.1f} ms | {_pct(broker_ms, 0.99):.1f} ms |",
    ]
    return "\n".join(rows)


def _per_receiver(seconds: float, run: Run) -> float:
    return seconds / run.receiver_cpu if run.receiver_cpu else 0.0


async def _accounts(database_url: str, n: int) -> list[uuid.UUID]:
    """The accounts of the first n endpoints, oldest first (the API-made one is the oldest)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(f"SELECT account_id FROM {repo.SCHEMA}.endpoints ORDER BY created_at, id LIMIT $1", n)
    finally:
        await conn.close()
    return [r["account_id"] for r in rows]


def main() -> str:
    # uvloop, as the services run: the reference client and the AMQP driver get the same event loop.
    return uvloop.run(_run())


if __name__ == "__main__":
    print(main())
