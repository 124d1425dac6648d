"""Feed memory benchmark: 100,000 subscriptions of one calendar, 20 filters, every one fetched once.

The feed's own schema is seeded with COPY (bench/feed_seed.py), the feed service started with its
usual process count, and every subscription's feed fetched once (64 at a time). Then: the resident
memory of every feed process (VmRSS), and wrk on one subscription against wrk on a random
subscription of the 100,000 each request, with the feed's CPU time per request (the single one both
with plain wrk and through the random run's Lua script, so that wrk's own cost per request is the
same on both sides of the comparison). Goals (issue 11):
RSS under 300 MB per process, random within 80% of single.

In `make bench` (about a minute), or alone: `.venv/bin/python -m bench feed_memory`;
KALENDS_BENCH_MEMORY_SUBSCRIPTIONS, KALENDS_BENCH_MEMORY_FILTERS, KALENDS_BENCH_MEMORY_EVENTS and
KALENDS_BENCH_SECONDS scale it. KALENDS_BENCH_MEMORY_PROFILE=<name> records py-spy flame graphs of the
second random pass and of a single-subscription pass into bench/results/<name>[-single].{svg,txt}.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

from bench.cputime import CpuMeter
from bench.feed import DURATION, _delete_queues, _tools, wrk
from bench.feed_seed import seed
from shared.testing import Stack, create_database, drop_database, random_name, server_urls, with_database

SUBSCRIPTIONS = int(os.environ.get("KALENDS_BENCH_MEMORY_SUBSCRIPTIONS", "100000"))
FILTERS = int(os.environ.get("KALENDS_BENCH_MEMORY_FILTERS", "20"))
EVENTS = int(os.environ.get("KALENDS_BENCH_MEMORY_EVENTS", "200"))
CONCURRENCY = 64
# Set to a name to record a py-spy flame graph of the feed processes during the second random pass.
PROFILE = os.environ.get("KALENDS_BENCH_MEMORY_PROFILE", "")

RANDOM_LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


def process_tree(root: int) -> list[int]:
    """`root` and its children (the feed's forked HTTP workers)."""
    pids = [root]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == root:
                pids.append(int(entry))
    return pids


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _fetch_all(base: str, ids: list[str]) -> tuple[float, int]:
    """Every feed once, CONCURRENCY at a time: (seconds, bytes of the smallest body)."""
    queue = iter(ids)
    smallest = 1 << 62

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal smallest
        for sid in queue:
            async with session.get(f"{base}/v1/webcal/{sid}") as response:
                body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{sid}: {response.status} {body[:200]!r}")
                smallest = min(smallest, len(body))

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, smallest


async def _run(workdir: Path) -> str:
    with server_urls() as (server_db, amqp_url):
        name = random_name("kalends_bench_mem")
        await create_database(server_db, name)
        database_url = with_database(server_db, name)
        stack = Stack(
            {
                "KALENDS_DATABASE_URL": database_url,
                "KALENDS_AMQP_URL": amqp_url,
                "KALENDS_AMQP_PREFIX": random_name("bench") + ".",
                "KALENDS_LOG_LEVEL": "warning",
            }
        )
        try:
            feed = await stack.start("feed", env={"KALENDS_FEED_WORKERS": str(os.cpu_count() or 1)})
            assert feed.process is not None
            root = feed.process.pid
            conn = await asyncpg.connect(database_url)
            try:
                seeded_at = time.perf_counter()
                seeded = await seed(conn, calendars=1, events=EVENTS, subscriptions=SUBSCRIPTIONS, filters=FILTERS)
                seed_seconds = time.perf_counter() - seeded_at
            finally:
                await conn.close()
            ids = [str(s) for s in seeded.first_calendar_subscriptions]
            base = stack.url("feed")
            rss_start = {pid: rss_mb(pid) for pid in process_tree(root)}
            with CpuMeter([root]) as fill_meter:
                fill_seconds, smallest = await _fetch_all(base, ids)
            rss_filled = {pid: rss_mb(pid) for pid in process_tree(root)}
            paths = workdir / "paths.txt"
            paths.write_text("".join(f"/v1/webcal/{sid}\n" for sid in ids))
            script = workdir / "random.lua"
            script.write_text(RANDOM_LUA % paths)
            # The single subscription through the same Lua script (a list of one path): wrk spends as
            # much per request on both sides of the comparison, so only the server's cost differs.
            one_path = workdir / "one.txt"
            one_path.write_text(f"/v1/webcal/{ids[0]}\n")
            one_script = workdir / "one.lua"
            one_script.write_text(RANDOM_LUA % one_path)
            with CpuMeter([root]) as plain_meter:
                plain = wrk(f"{base}/v1/webcal/{ids[0]}", 64, {})
            with CpuMeter([root]) as single_meter:
                single = wrk(base, 64, {}, script=str(one_script))
            with CpuMeter([root]) as random_meter:
                scattered = wrk(base, 64, {}, script=str(script))
            # Each process saw about half the subscriptions in the fill (the kernel spreads
            # connections); a second pass shows the state once every process has met most of them.
            spy = _profiler(PROFILE, root)
            with CpuMeter([root]) as again_meter:
                again = wrk(base, 64, {}, script=str(script))
            # Each pass meets subscriptions a process has not served yet (built from its directory row
            # and the cached section, bench/results/feed_memory.md); two more passes show the steady
            # state, where calendar apps that poll every few minutes keep their feeds.
            for _ in range(2):
                with CpuMeter([root]) as warm_meter:
                    warm = wrk(base, 64, {}, script=str(script))
            # The same pair for clients that send Accept-Encoding: gzip (HTTP stacks such as Go's net/http
            # add it by default): each answer is then a fifth of the bytes to copy.
            gzip = {"Accept-Encoding": "gzip"}
            with CpuMeter([root]) as single_gzip_meter:
                single_gzip = wrk(base, 64, gzip, script=str(one_script))
            with CpuMeter([root]) as random_gzip_meter:
                random_gzip = wrk(base, 64, gzip, script=str(script))
            if spy is not None:
                spy.wait(60)
                # The single subscription profiled too, through the same script: the two flame graphs
                # side by side show what a random subscription costs more.
                spy = _profiler(f"{PROFILE}-single", root)
                wrk(base, 64, {}, script=str(one_script))
                assert spy is not None
                spy.wait(60)
            rss_end = {pid: rss_mb(pid) for pid in process_tree(root)}
        finally:
            stack.stop_all()
            await drop_database(server_db, name)
            await _delete_queues(amqp_url, stack.env["KALENDS_AMQP_PREFIX"])
    single_cpu = single_meter.per_request_ms(int(single["requests"]))
    random_cpu = random_meter.per_request_ms(int(scattered["requests"]))
    again_cpu = again_meter.per_request_ms(int(again["requests"]))
    warm_cpu = warm_meter.per_request_ms(int(warm["requests"]))

    def show(rss: dict[int, float]) -> str:
        return " + ".join(f"{mb:.0f}" for mb in rss.values()) + f" = {sum(rss.values()):.0f} MB"

    return "\n".join(
        [
            f"{len(ids):,} subscriptions of one calendar, {FILTERS} filters, {EVENTS} events (smallest body"
            f" {smallest // 1024} KiB); feed: {os.cpu_count()} processes; seeded with COPY in {seed_seconds:.1f} s.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| RSS before (per process) | {show(rss_start)} |",
            f"| fetch every subscription once ({CONCURRENCY} at a time) | {fill_seconds:.1f} s,"
            f" {len(ids) / fill_seconds:,.0f} feeds/s, {fill_meter.per_request_ms(len(ids)):.3f} CPU ms/feed |",
            f"| RSS after every feed fetched once | {show(rss_filled)} |",
            f"| single subscription, c=64, plain wrk | {plain['rps']:,.0f} req/s,"
            f" {plain_meter.per_request_ms(int(plain['requests'])):.3f} CPU ms/req |",
            f"| single subscription, c=64, wrk with the random run's Lua script | {single['rps']:,.0f} req/s,"
            f" {single_cpu:.3f} CPU ms/req |",
            f"| random subscription of {len(ids):,}, c=64 | {scattered['rps']:,.0f} req/s,"
            f" {random_cpu:.3f} CPU ms/req |",
            f"| random / single | {100 * scattered['rps'] / single['rps']:.0f}% req/s,"
            f" {random_cpu / single_cpu:.2f}x CPU per request |",
            f"| random subscription, second pass | {again['rps']:,.0f} req/s, {again_cpu:.3f} CPU ms/req"
            f" ({100 * again['rps'] / single['rps']:.0f}% of single, {again_cpu / single_cpu:.2f}x CPU) |",
            f"| random subscription, fourth pass | {warm['rps']:,.0f} req/s, {warm_cpu:.3f} CPU ms/req"
            f" ({100 * warm['rps'] / single['rps']:.0f}% of single, {warm_cpu / single_cpu:.2f}x CPU) |",
            f"| single subscription, gzip, c=64 | {single_gzip['rps']:,.0f} req/s,"
            f" {single_gzip_meter.per_request_ms(int(single_gzip['requests'])):.3f} CPU ms/req |",
            f"| random subscription, gzip, c=64 | {random_gzip['rps']:,.0f} req/s,"
            f" {random_gzip_meter.per_request_ms(int(random_gzip['requests'])):.3f} CPU ms/req"
            f" ({100 * random_gzip['rps'] / single_gzip['rps']:.0f}% of single) |",
            f"| RSS after the random runs | {show(rss_end)} |",
            "",
            f"wrk -t2 -c64, {DURATION} s each.",
        ]
    )


def _profiler(name: str, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy recording `pid` and its children for one wrk run into bench/results/<name>.svg and,
    as collapsed stacks to read as text, <name>.txt; None when no profile was asked for."""
    if not name:
        return None
    out = Path(__file__).resolve().parent / "results" / f"{name}.svg"
    spy = str(Path(sys.executable).with_name("py-spy"))
    args = ["record", "--pid", str(pid), "--duration", str(DURATION), "--subprocesses", "--nonblocking"]
    subprocess.Popen([spy, *args, "-f", "raw", "-o", str(out.with_suffix(".txt"))], stdout=subprocess.DEVNULL)
    return subprocess.Popen([spy, *args, "-o", str(out)], stdout=subprocess.DEVNULL)


def main() -> str:
    _tools()
    with tempfile.TemporaryDirectory(prefix="kalends-bench-feed-memory-") as workdir:
        return asyncio.run(_run(Path(workdir)))


if __name__ == "__main__":
    print(main())
