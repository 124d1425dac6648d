"""Ingest under load: subscriptions created per second and latency with 32 concurrent clients
against one ingest process (role all: API, outbox relay and consumer), side by side with its
references on the same process: the framework floor (`/healthz`) and an authenticated read.

Beside the ingest process's CPU per request, the CPU of the PostgreSQL backends serving the bench's
database (bench.cputime.BackendMeter) and the load average at the end of each row.
KALENDS_BENCH_INGEST_SPLIT=1 runs ingest as two processes, `--role api` (measured) and `--role worker`
(the outbox relay and consumers, measured apart); KALENDS_BENCH_PG_SOCKET=1 gives the services a
Unix-socket PostgreSQL URL (/var/run/postgresql, or the directory the variable names).

Runs auth and ingest as processes over a database and broker prefix of its own (shared.testing),
with a real client-credentials token. The load generator shares the machine's cores.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg

from bench.cputime import BackendMeter, CpuMeter
from bench.seed_ingest import capture_plans, seed
from shared.testing import (
    ServiceProcess,
    Stack,
    create_database,
    delete_prefixed,
    drop_database,
    random_name,
    server_urls,
    with_database,
)

CLIENTS = 32
READ_SUBSCRIPTIONS = 2000  # the read row's subscriptions, each read in turn
DURATION = float(os.environ.get("KALENDS_BENCH_SECONDS", "15"))
WARMUP = 2.0
# KALENDS_BENCH_PROFILE=<label>: py-spy records each measured row into
# bench/results/ingest-<label>-<row>.svg (the sampling slows the server: figures of such a run are not comparable).
PROFILE = os.environ.get("KALENDS_BENCH_PROFILE", "")
RESULTS = Path(__file__).resolve().parent / "results"
# KALENDS_BENCH_SEEDED=1 (or `python -m bench.ingest --seeded`): after the rows on an empty database, seed
# it with 1,000,000 subscriptions (bench/seed_ingest.py), run the rows again and save the hot queries' plans.
SEEDED = os.environ.get("KALENDS_BENCH_SEEDED", "") not in ("", "0") or "--seeded" in sys.argv
SPLIT = os.environ.get("KALENDS_BENCH_INGEST_SPLIT", "") not in ("", "0")
_SOCKET = os.environ.get("KALENDS_BENCH_PG_SOCKET", "")
PG_SOCKET = "" if _SOCKET in ("", "0") else ("/var/run/postgresql" if _SOCKET == "1" else _SOCKET)


@dataclass
class Result:
    name: str
    count: int
    errors: int
    seconds: float
    latencies: list[float]
    cpu_ms: float = 0.0
    pg_cpu_ms: float = 0.0
    worker_cpu_ms: float | None = None
    load: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def row(self, floor: float) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rate = self.rate
        worker = "" if self.worker_cpu_ms is None else f" {self.worker_cpu_ms:.3f} |"
        return (
            f"| {self.name} | {CLIENTS} | {self.count} | {self.errors} | {rate:,.0f} | {self.cpu_ms:.3f} |{worker}"
            f" {self.pg_cpu_ms:.3f} | {rate / floor if floor else 0:.0%} | {p50:.1f} | {p99:.1f} | {self.load} |"
        )


def _profiler(slug: str, pid: int) -> subprocess.Popen[bytes] | None:
    if not PROFILE:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--duration", str(int(DURATION)), "--subprocesses"]
    # The collapsed stacks too (for reading the top frames as text), from a second sampler.
    raw = RESULTS / f"ingest-{PROFILE}-{slug}.txt"
    subprocess.Popen([*command, "--nonblocking", "-f", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL)
    out = RESULTS / f"ingest-{PROFILE}-{slug}.svg"
    return subprocess.Popen([*command, "--nonblocking", "-o", str(out)], stdout=subprocess.DEVNULL)


async def load(
    name: str,
    session: aiohttp.ClientSession,
    request: Callable[[aiohttp.ClientSession, int], Awaitable[int]],
    server_pid: int,
    database: str,
    worker_pid: int | None = None,
) -> Result:
    """CLIENTS workers issue requests back to back for DURATION seconds (after a warm-up), with the
    server's CPU time measured over the measured part only."""
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
    path = [part for part in name.split()[1].split("/") if part and part != "v1" and not part.startswith("{")]
    profiler = _profiler(path[-1], server_pid)
    started = time.monotonic()
    with (
        CpuMeter([server_pid]) as cpu,
        CpuMeter([worker_pid] if worker_pid else []) as worker_cpu,
        BackendMeter(database) as pg_cpu,
    ):
        await asyncio.gather(*(worker(started + DURATION) for _ in range(CLIENTS)))
    elapsed = time.monotonic() - started
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    if profiler is not None:
        await asyncio.to_thread(profiler.wait)
    served = len(latencies) + errors
    return Result(
        name,
        len(latencies),
        errors,
        elapsed,
        latencies,
        cpu.per_request_ms(served),
        pg_cpu.per_request_ms(served),
        worker_cpu.per_request_ms(served) if worker_pid else None,
        load,
    )


async def _subscribed(session: aiohttp.ClientSession, code: str, count: int) -> list[str]:
    """`count` subscriptions made through the API, 32 at a time; their ids in random order."""
    ids: list[str] = []

    async def one(n: int) -> None:
        body = {"subscriberId": f"known-{n}", "subscriptionMethod": "webcal"}
        async with session.post(f"/v1/subscribe/{code}/bench", json=body) as r:
            assert r.status == 200, await r.text()
            ids.append((await r.json())["subscriptionId"])

    for start in range(0, count, CLIENTS):
        await asyncio.gather(*(one(n) for n in range(start, min(count, start + CLIENTS))))
    random.shuffle(ids)
    return ids


async def outbox_backlog(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM ingest.outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


async def drained(database_url: str) -> int:
    """Outbox rows still unpublished after waiting up to 30 s for the relay."""
    deadline = time.monotonic() + 30
    while (backlog := await outbox_backlog(database_url)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return backlog


async def run() -> str:
    with server_urls() as (server_db, amqp_url):
        name = random_name("kalends_bench")
        await create_database(server_db, name)
        database_url = with_database(server_db, name)
        # The socket's directory as the URL's host, percent-encoded (asyncpg reads it so; the settings
        # want a URL with a host, which `?host=` alone would not give).
        socket_host = PG_SOCKET.replace("/", "%2F")
        service_database_url = f"postgresql://postgres@{socket_host}/{name}" if PG_SOCKET else database_url
        prefix = random_name("bench") + "."
        stack = Stack(
            {
                "KALENDS_DATABASE_URL": service_database_url,
                "KALENDS_AMQP_URL": amqp_url,
                "KALENDS_AMQP_PREFIX": prefix,
                "KALENDS_LOG_LEVEL": "warning",
                "KALENDS_DB_POOL_MAX": "20",
            }
        )
        worker_process: ServiceProcess | None = None
        try:
            await stack.start("auth")
            if SPLIT:
                await stack.start("ingest", "--role", "api")
                worker_process = ServiceProcess("ingest", stack.env, ["--role", "worker"]).start()
                await worker_process.wait_ready()
            else:
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
                # The read row asks for these in turn: distinct rows, as a merchant's reads are (one id read
                # by every client would let the grouped reads share one row).
                known = await _subscribed(session, code, READ_SUBSCRIPTIONS)
                # Subscriber ids unique to each pass of the rows: the seeded pass runs the rows again, and
                # reusing the first pass's ids made its "new subscriber" row re-subscribe existing ones
                # (the general path, a different operation at 2.5x the CPU: 0.79 against 0.32 ms).
                run_id = uuid.uuid4().hex[:8]

                async def healthz(s: aiohttp.ClientSession, _: int) -> int:
                    async with s.get("/healthz") as response:
                        await response.read()
                        return response.status

                async def read(s: aiohttp.ClientSession, n: int) -> int:
                    async with s.get(f"/v1/subscription/{known[n % len(known)]}") as response:
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

                server = stack.processes["ingest"].process
                assert server is not None
                pid = server.pid
                worker_pid = worker_process.process.pid if worker_process and worker_process.process else None

                async def rows() -> list[Result]:
                    nonlocal run_id
                    run_id = uuid.uuid4().hex[:8]
                    return [
                        await load("GET /healthz (framework floor)", session, healthz, pid, name, worker_pid),
                        await load("GET /v1/subscription/{id} (token + read)", session, read, pid, name, worker_pid),
                        await load(
                            "POST /v1/subscribe (new subscriber, + outbox)", session, subscribe, pid, name, worker_pid
                        ),
                    ]

                results = await rows()
                backlog = await drained(database_url)
                if SEEDED:
                    seeded = await seed(database_url)
                    seeded_results = await rows()
                    backlog = max(backlog, await drained(database_url))
                    plans = await capture_plans(database_url, account, known)
                    (RESULTS / "ingest-plans.txt").write_text(plans)
        finally:
            if worker_process is not None:
                worker_process.stop()
            stack.stop_all()
            await drop_database(server_db, name)
            # The services' quorum queues under this run's prefix would otherwise stay on the broker.
            await delete_prefixed(amqp_url, {prefix})
    shape = (
        "Two ingest processes, `--role api` (measured as server CPU) and `--role worker` (relay and consumers)"
        if SPLIT
        else "One ingest process (role all)"
    )
    worker_head = " worker CPU ms/request |" if SPLIT else ""
    lines = [
        f"{shape}, {CLIENTS} concurrent clients, {DURATION:.0f} s per row after"
        f" {WARMUP:.0f} s warm-up, on this machine ({os.cpu_count()} cores shared with the load generator),"
        f" PostgreSQL over {'a Unix socket' if PG_SOCKET else 'loopback TCP'}."
        " Server CPU is the ingest process's user + system time over the measured seconds, PostgreSQL CPU"
        " that of the backends serving the bench's database (bench.cputime); the share is req/s over /healthz's;"
        " load is /proc/loadavg at the end of the row.",
        "",
        # Server CPU stays the sixth column: bench/capacity.py reads it from there.
        f"| request | clients | requests | errors | per second | server CPU ms/request |{worker_head}"
        " PostgreSQL CPU ms/request | of healthz | p50 ms | p99 ms | load |",
        "|---|---|---|---|---|---|---|" + ("---|" if SPLIT else "") + "---|---|---|---|",
        *(r.row(results[0].rate) for r in results),
        "",
        f"Outbox rows still unpublished 30 s after the run: {backlog} (the relay keeps up when this is 0).",
    ]
    if SEEDED:
        lines += [
            "",
            f"Then seeded by COPY with {seeded.accounts:,} accounts, {seeded.subscriptions:,} subscriptions,"
            f" {seeded.events:,} events and their {seeded.outbox:,} sent outbox rows in {seeded.seconds:.1f} s"
            " (bench/seed_ingest.py; " + ", ".join(f"{k} {v:.1f} s" for k, v in seeded.steps.items()) + "),"
            " the same rows again; the ratio is req/s seeded over empty:",
            "",
            "| request | empty per second | seeded per second | ratio | empty CPU ms/request | seeded CPU ms/request |",
            "|---|---|---|---|---|---|",
            *(
                f"| {e.name} | {e.rate:,.0f} | {d.rate:,.0f} | {d.rate / e.rate if e.rate else 0:.0%}"
                f" | {e.cpu_ms:.3f} | {d.cpu_ms:.3f} |"
                for e, d in zip(results, seeded_results, strict=True)
            ),
            "",
            "Query plans on the seeded database: bench/results/ingest-plans.txt.",
        ]
    return "\n".join(lines)


def main() -> str:
    return asyncio.run(run())


if __name__ == "__main__":
    print(main())
