"""Feed benchmark: the feed service against nginx serving the same bytes as a static file.

One run on 127.0.0.1, side by side: a 200-event and a 1000-event personalised feed at 64 and 256
connections (full body, 304 revalidation, gzip), with wrk; then the time from an event change
accepted by ingest to the change being visible in every affected feed, over 1000 changes.
Everything runs as real processes: auth, ingest and feed (one process per core), RabbitMQ,
PostgreSQL, nginx from Debian. Each wrk measurement lasts a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.cputime import CpuMeter
from shared.testing import (
    Stack,
    create_database,
    delete_prefixed,
    drop_database,
    free_port,
    random_name,
    server_urls,
    with_database,
)

ROOT = Path(__file__).resolve().parent.parent
DURATION = int(os.environ.get("KALENDS_BENCH_SECONDS", "5"))
CHANGES = int(os.environ.get("KALENDS_BENCH_CHANGES", "1000"))
# Narrow a run (a before/after comparison, a profile) with comma-separated lists.
CONNECTIONS = tuple(int(c) for c in os.environ.get("KALENDS_BENCH_FEED_CONNECTIONS", "64,256").split(","))
SIZES = tuple(int(s) for s in os.environ.get("KALENDS_BENCH_FEED_SIZES", "200,1000").split(","))
MODES = tuple(os.environ.get("KALENDS_BENCH_FEED_MODES", "full,304,gzip").split(","))
# Set to a name to record a py-spy flame graph of the feed processes under the first load of
# KALENDS_BENCH_FEED_PROFILE_MODE (full, 304 or gzip; default full), written to bench/results/<name>.svg;
# KALENDS_BENCH_FEED_PROFILE_NATIVE=1 adds native (C) frames.
PROFILE = os.environ.get("KALENDS_BENCH_FEED_PROFILE", "")
PROFILE_MODE = os.environ.get("KALENDS_BENCH_FEED_PROFILE_MODE", "full")
PROFILE_NATIVE = os.environ.get("KALENDS_BENCH_FEED_PROFILE_NATIVE", "") == "1"
# Set to 1 to seed the feed's schema first (COPY: 1,000,000 subscriptions, 100,000 events, 1,000
# calendars) and save the hot queries' plans to bench/results/feed-plans.txt. Optional: minutes.
SEED = os.environ.get("KALENDS_BENCH_FEED_SEED", "") == "1"


def _tools() -> None:
    for script in ("nginx.sh", "wrk.sh"):
        subprocess.run([str(ROOT / "scripts" / "tools" / script)], check=True, timeout=900)


# --- load generation ------------------------------------------------------------------------


def _seconds(value: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        return float("nan")
    number, unit = float(match.group(1)), match.group(2)
    return number * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(url: str, connections: int, headers: dict[str, str], script: str | None = None) -> dict[str, float]:
    """Requests per second, requests, p99 latency (ms) and counts of errors (a Lua `script` may pick paths)."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{DURATION}s", "--latency", "--timeout", "5s"]
    if script:
        args += ["-s", script]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, timeout=DURATION + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p99 = _seconds(re.search(r"99%\s+(\S+)", out).group(1)) * 1000  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": float(requests),
        "p99": p99,
        "non2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
    }


# --- nginx ----------------------------------------------------------------------------------

NGINX_CONF = """
worker_processes {workers};
error_log {root}/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ "text/calendar; charset=utf-8" ics; }}
    default_type "text/calendar; charset=utf-8";
    client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp; fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {root}/www;
        gzip_static on;
        gzip_vary on;
        location / {{ add_header Cache-Control "private, max-age=0, must-revalidate"; }}
    }}
}}
"""


class Nginx:
    def __init__(self, workdir: Path) -> None:
        self.root = workdir
        self.port = free_port()
        (workdir / "www").mkdir(parents=True)
        # nginx's workers drop root: let them read the temporary directory.
        for path in (workdir.parent, workdir, workdir / "www"):
            path.chmod(0o755)
        (workdir / "tmp").mkdir()
        self.process: subprocess.Popen[bytes] | None = None

    def publish(self, name: str, body: bytes, gzipped: bytes) -> str:
        for path, data in ((self.root / "www" / name, body), (self.root / "www" / f"{name}.gz", gzipped)):
            path.write_bytes(data)
            path.chmod(0o644)
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        conf = self.root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=os.cpu_count() or 1, root=self.root, port=self.port))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{self.port}/"], timeout=2)
                return
            except (subprocess.SubprocessError, FileNotFoundError):
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


# --- the system under test ------------------------------------------------------------------


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, body: Any) -> Any:
    async with session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
        text = await response.text()
        if response.status >= 300:
            raise RuntimeError(f"{method} {url}: {response.status} {text[:300]}")
        return await response.json(content_type=None) if text.strip() else None


async def _calendar_with_events(
    session: aiohttp.ClientSession, stack: Stack, account: dict[str, Any], token: str, count: int
) -> tuple[str, list[dict[str, Any]]]:
    code = f"bench{count}"
    base = f"{stack.url('ingest')}/v1/calendars/{account['accountCode']}"
    await _call(
        session,
        "POST",
        base,
        token,
        {"code": code, "name": f"Bench {count}", "description": "Season schedule", "timezone": "America/New_York"},
    )
    tag = await _call(session, "POST", f"{base}/{code}/tags", token, {"name": "Home"})
    semaphore = asyncio.Semaphore(16)

    async def one(i: int) -> dict[str, Any]:
        day = 1 + i % 28
        month = 1 + (i // 28) % 12
        body = {
            "title": f"Game {i}: Home team vs Visitors, round {i % 30}",
            "description": "Doors open one hour before. Tickets at the box office; parking on site.",
            "location": "Main Arena, 1 Sports Way, Springfield",
            "start": f"2026-{month:02d}-{day:02d}T19:00:00",
            "end": f"2026-{month:02d}-{day:02d}T21:30:00",
            "externalId": f"game-{i}",
            "notifyBefore": 60,
            "tags": [tag["id"]] if i % 2 == 0 else [],
            "url": f"https://tickets.example.com/game/{i}",
        }
        async with semaphore:
            created: dict[str, Any] = await _call(session, "POST", f"{base}/{code}/events", token, body)
            return created

    events = await asyncio.gather(*(one(i) for i in range(count)))
    return code, list(events)


async def _wait_feed(session: aiohttp.ClientSession, url: str, events: int, timeout: float = 180) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        async with session.get(url) as response:
            body = await response.read()
        if body.count(b"BEGIN:VEVENT") >= events:
            return body
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} has {body.count(b'BEGIN:VEVENT')} events, not {events}")
        await asyncio.sleep(0.2)


async def _change_to_visible(
    session: aiohttp.ClientSession,
    stack: Stack,
    account: dict[str, Any],
    token: str,
    code: str,
    events: list[dict[str, Any]],
    feeds: list[str],
) -> list[float]:
    """PATCH an event's title through ingest; time from the 200 to the title in every feed."""
    latencies: list[float] = []
    base = f"{stack.url('ingest')}/v1/calendars/{account['accountCode']}/{code}/events"
    etags = dict.fromkeys(feeds, "")
    for n in range(CHANGES):
        event = events[(n * 2) % len(events)]  # even events carry the tag every feed selects
        marker = f"Changed {n} {uuid.uuid4().hex[:6]}"
        await _call(session, "PATCH", f"{base}/{event['id']}", token, {"title": marker})
        accepted = time.perf_counter()
        pending = set(feeds)
        while pending:
            for url in list(pending):
                async with session.get(url, headers={"If-None-Match": etags[url]}) as response:
                    if response.status == 200:
                        etags[url] = response.headers.get("ETag", "")
                        if marker.encode() in await response.read():
                            pending.discard(url)
            if time.perf_counter() - accepted > 30:
                raise TimeoutError(f"change {n} not visible after 30 s")
        latencies.append(time.perf_counter() - accepted)
    return latencies


async def _delete_queues(amqp_url: str, prefix: str) -> None:
    """Leave no queue or exchange of this run behind on the shared broker (auth's, ingest's and the
    feed's, all under the run's prefix); a broker too slow to answer costs a warning, not the results."""
    try:
        await asyncio.wait_for(delete_prefixed(amqp_url, {prefix}), 120)
    except (TimeoutError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"warning: queues under {prefix!r} may be left on the broker: {exc!r}", file=sys.stderr, flush=True)


def profile(pid: int, url: str, connections: int, headers: dict[str, str]) -> None:
    """A py-spy flame graph of the feed processes (the parent and its forked workers) under wrk load."""
    out = ROOT / "bench" / "results" / f"{PROFILE}.svg"
    seconds = max(DURATION, 10)
    spy_args = ["record", "-o", str(out), "--pid", str(pid), "--duration", str(seconds), "--subprocesses"]
    if PROFILE_NATIVE:
        spy_args.append("--native")
    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), *spy_args], stdout=subprocess.DEVNULL)
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds + 1}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    args.append(url)
    subprocess.run(args, capture_output=True, timeout=seconds + 30, check=True)
    spy.wait(60)


async def _seed(database_url: str) -> str:
    import asyncpg

    from bench.feed_seed import explain_hot_queries, seed

    conn = await asyncpg.connect(database_url)
    try:
        started = time.perf_counter()
        seeded = await seed(conn, calendars=1000, events=100_000, subscriptions=1_000_000, filters=20)
        took = time.perf_counter() - started
        plans = await explain_hot_queries(conn, seeded)
    finally:
        await conn.close()
    note = f"feed schema seeded with COPY: 1,000,000 subscriptions, 100,000 events, 1,000 calendars ({took:.0f} s)"
    (ROOT / "bench" / "results" / "feed-plans.txt").write_text(f"# {note}\n\n{plans}\n")
    return note


def _mode_headers(mode: str, etag: str) -> dict[str, str]:
    """The request headers of a measured mode: full body, 304 revalidation (with `etag`) or gzip."""
    if mode == "304":
        return {"If-None-Match": etag}
    if mode == "gzip":
        return {"Accept-Encoding": "gzip"}
    return {}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _run(workdir: Path) -> str:
    with server_urls() as (server_db, amqp_url):
        name = random_name("kalends_bench")
        await create_database(server_db, name)
        stack = Stack(
            {
                "KALENDS_DATABASE_URL": with_database(server_db, name),
                "KALENDS_AMQP_URL": amqp_url,
                "KALENDS_AMQP_PREFIX": random_name("bench") + ".",
                "KALENDS_LOG_LEVEL": "warning",
            }
        )
        nginx = Nginx(workdir / "nginx")
        try:
            await stack.start("auth")
            await stack.start("ingest")
            await stack.start("feed", env={"KALENDS_FEED_WORKERS": str(os.cpu_count() or 1)})
            seeded_note = await _seed(stack.env["KALENDS_DATABASE_URL"]) if SEED else "empty feed schema"
            account = await stack.new_account()
            token = await stack.token(account)
            rows: list[str] = []
            async with aiohttp.ClientSession() as session:
                targets: dict[int, tuple[str, str, dict[str, str]]] = {}
                change_setup: tuple[str, list[dict[str, Any]], list[str]] | None = None
                for size in SIZES:
                    code, events = await _calendar_with_events(session, stack, account, token, size)
                    subscribe = f"{stack.url('ingest')}/v1/subscribe/{account['accountCode']}/{code}"
                    sub = await _call(
                        session, "POST", subscribe, token, {"subscriberId": "fan-1", "subscriptionMethod": "webcal"}
                    )
                    tagged = await _call(
                        session,
                        "POST",
                        subscribe,
                        token,
                        {
                            "subscriberId": "fan-2",
                            "subscriptionMethod": "webcal",
                            "timeZoneId": "Eastern Standard Time",
                        },
                    )
                    feed_url = f"{stack.url('feed')}/v1/webcal/{sub['subscriptionId']}"
                    body = await _wait_feed(session, feed_url, size)
                    async with session.get(feed_url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False) as r:
                        gzipped = await r.read()
                        gzip_etag = r.headers["ETag"]
                    async with session.get(feed_url, headers={"Accept-Encoding": "identity"}) as r:
                        etag = r.headers["ETag"]
                    static_url = nginx.publish(f"feed{size}.ics", body, gzipped)
                    targets[size] = (
                        feed_url,
                        static_url,
                        {"feed": etag, "feed_gzip": gzip_etag, "bytes": str(len(body))},
                    )
                    if size == SIZES[0]:
                        tagged_url = f"{stack.url('feed')}/v1/webcal/{tagged['subscriptionId']}"
                        await _wait_feed(session, tagged_url, size)
                        change_setup = (code, events, [feed_url, tagged_url])
                nginx.start()
                assert nginx.process is not None
                pids = {"feed": stack.processes["feed"].process.pid, "nginx": nginx.process.pid}
                for size, (feed_url, static_url, info) in targets.items():
                    async with session.head(static_url, headers={"Accept-Encoding": "identity"}) as r:
                        assert r.status == 200, (static_url, r.status)
                        nginx_etag = r.headers["ETag"]
                    if PROFILE and size == SIZES[0]:
                        profile(pids["feed"], feed_url, CONNECTIONS[0], _mode_headers(PROFILE_MODE, info["feed"]))
                    for mode in MODES:
                        for connections in CONNECTIONS:
                            results = {}
                            for target, url in (("feed", feed_url), ("nginx", static_url)):
                                headers = _mode_headers(mode, info["feed"] if target == "feed" else nginx_etag)
                                with CpuMeter([pids[target]]) as meter:
                                    results[target] = wrk(url, connections, headers)
                                results[target]["cpu_ms"] = meter.per_request_ms(int(results[target]["requests"]))
                            feed, ref = results["feed"], results["nginx"]
                            rows.append(
                                f"| {size} ({int(info['bytes']) // 1024} KiB) | {mode} | {connections} "
                                f"| {feed['rps']:,.0f} | {feed['cpu_ms']:.3f} | {feed['p99']:.1f} "
                                f"| {ref['rps']:,.0f} | {ref['cpu_ms']:.3f} | {ref['p99']:.1f} "
                                f"| {100 * feed['rps'] / ref['rps']:.0f}% | {feed['cpu_ms'] / ref['cpu_ms']:.1f}x |"
                                + (" errors" if feed["non2xx"] or ref["non2xx"] else "")
                            )
                            print(rows[-1], flush=True)  # as measured: a later failure keeps it
                assert change_setup is not None
                code, events, feeds = change_setup
                latencies = await _change_to_visible(session, stack, account, token, code, events, feeds)
        finally:
            nginx.stop()
            stack.stop_all()
            await drop_database(server_db, name)
            await _delete_queues(amqp_url, stack.env["KALENDS_AMQP_PREFIX"])
    table = [
        f"wrk -t2, {DURATION} s per measurement; feed: {os.cpu_count()} processes; nginx: {os.cpu_count()} workers,"
        " same bytes as a static file (gzip_static for gzip). CPU ms/req: user+system time of the server's"
        " processes (feed's forked workers, nginx's workers) during the run, per request served."
        f" Database: {seeded_note}.",
        "",
        "| events | mode | connections | feed req/s | feed CPU ms/req | feed p99 ms | nginx req/s"
        " | nginx CPU ms/req | nginx p99 ms | feed/nginx req/s | feed/nginx CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Change to visible (PATCH accepted by ingest -> new title in both feeds of the {SIZES[0]}-event calendar),"
        f" {len(latencies)} changes:",
        "",
        "| p50 ms | p99 ms | max ms | mean ms |",
        "|---|---|---|---|",
        f"| {1000 * _pct(latencies, 0.5):.1f} | {1000 * _pct(latencies, 0.99):.1f} | {1000 * max(latencies):.1f}"
        f" | {1000 * statistics.fmean(latencies):.1f} |",
    ]
    return "\n".join(table)


def main() -> str:
    _tools()
    with tempfile.TemporaryDirectory(prefix="kalends-bench-feed-") as workdir:
        return asyncio.run(_run(Path(workdir)))


if __name__ == "__main__":
    print(main())
