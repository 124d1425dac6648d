"""Feed reads from a streaming replica (KALENDS_FEED_READ_DATABASE_URL) against a real hot standby:
fresh replicas are read, a paused (lagging) or stopped replica degrades to the primary, and a change
is visible as fast as without the replica. Run with `-s` to see the change-to-visible figures.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import asyncpg
import pytest

from services.feed.replica import ReadRouter, ReplicaBehind
from shared import db
from shared.testing import ServiceProcess, Stack, with_database
from tests.cluster.conftest import SKIP, ClusterServers
from tests.faults.load import Tenant, prepare
from tests.integration.webhook.receiver import Receiver

pytestmark = [
    pytest.mark.serial,
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(SKIP, reason="KALENDS_TEST_CLUSTER=0"),
]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def replica_scans(servers: ClusterServers, database: str) -> int:
    """Scans of the feed's tables on the replica: they grow only when feeds are read there."""
    conn = await asyncpg.connect(with_database(servers.postgres.replica.url, database))
    try:
        scans: int = await conn.fetchval(
            "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint"
            " FROM pg_stat_user_tables WHERE schemaname = 'feed' AND relname IN ('subscriptions', 'calendars')"
        )
    finally:
        await conn.close()
    return scans


async def replay(servers: ClusterServers, action: str) -> None:
    conn = await asyncpg.connect(servers.postgres.replica.url)
    try:
        await conn.execute(f"SELECT pg_wal_replay_{action}()")
    finally:
        await conn.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def tenant(cluster_stack: Stack, receiver: Receiver) -> Tenant:
    return await prepare(cluster_stack, receiver)


@pytest.fixture
async def primary_only_feed(cluster_stack: Stack) -> AsyncIterator[str]:
    """A second feed API on the same database without a replica: the reference."""
    env = {**cluster_stack.env, "KALENDS_PUBLIC_API_URL": cluster_stack.url("ingest"), "KALENDS_FEED_WORKERS": "1"}
    process = ServiceProcess("feed", env, ["--role", "api"]).start()
    try:
        await process.wait_ready(60)
        yield process.url
    finally:
        process.stop()


async def shows(session: aiohttp.ClientSession, url: str, title: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200 and f"SUMMARY:{title}" in await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return False


async def answers(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def time_to_visible(session: aiohttp.ClientSession, url: str, title: str, timeout: float = 10.0) -> float:
    return await eventually(lambda: shows(session, url, title), timeout, f"{title} in {url}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def test_the_router_reads_the_replica_only_while_its_replay_position_proves_it_fresh(
    cluster_servers: ClusterServers, cluster_database: str
) -> None:
    postgres = cluster_servers.postgres
    primary = await db.create_pool(with_database(postgres.primary.url, cluster_database), max_size=2)
    router = ReadRouter(primary, with_database(postgres.replica.url, cluster_database), max_lag=0.5, interval=0.05)
    await router.start()

    async def where(pool: asyncpg.Pool, from_replica: bool) -> str:
        async with pool.acquire() as conn:
            in_recovery: bool = await conn.fetchval("SELECT pg_is_in_recovery()")
        assert in_recovery == from_replica
        return "replica" if from_replica else "primary"

    async def fresh() -> bool:
        return router.fresh

    async def stale() -> bool:
        return not router.fresh

    try:
        await eventually(fresh, 5, "the router finds the replica fresh")
        assert await router.read(where, ()) == "replica"
        await asyncio.sleep(1.0)  # idle: no WAL written, the replica stays fresh
        assert router.fresh, router.lag
        await replay(cluster_servers, "pause")
        try:
            async with primary.acquire() as conn:
                await conn.execute("CREATE TABLE IF NOT EXISTS public.replica_probe (n int)")
                await conn.execute("INSERT INTO public.replica_probe VALUES (1)")
            await eventually(stale, 5, "a paused replica turns stale")
            assert router.lag is not None and router.lag > 0.5
            assert await router.read(where, ()) == "primary"
        finally:
            await replay(cluster_servers, "resume")
        await eventually(fresh, 5, "a resumed replica is fresh again")
        assert await router.read(where, ()) == "replica"

        async def behind(pool: asyncpg.Pool, from_replica: bool) -> str:
            if from_replica:
                raise ReplicaBehind("older than heard of")
            return "primary"

        async def broken(pool: asyncpg.Pool, from_replica: bool) -> str:
            if from_replica:
                raise asyncpg.exceptions.SerializationError("canceling statement due to conflict with recovery")
            return "primary"

        assert await router.read(behind, ()) == "primary" and router.behind == 1
        assert await router.read(broken, ()) == "primary" and router.failed == 1
        assert not router.fresh  # not read from again until the watcher proves it fresh
        await eventually(fresh, 5, "the replica is proven fresh again after a failed read")
    finally:
        await router.stop()
        await primary.close()


async def test_a_change_is_visible_as_fast_with_feeds_read_from_the_replica_as_without(
    cluster_servers: ClusterServers, cluster_database: str, cluster_stack: Stack, tenant: Tenant, primary_only_feed: str
) -> None:
    webcal = f"/v1/webcal/{tenant.subscriptions[0]}"
    urls = {"replica": cluster_stack.url("feed") + webcal, "primary": primary_only_feed + webcal}
    scans_before = await replica_scans(cluster_servers, cluster_database)
    feed_log = cluster_stack.processes["feed"].log_path
    assert feed_log is not None
    log_from = feed_log.stat().st_size
    seconds: dict[str, list[float]] = {"replica": [], "primary": [], "replay": []}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for url in urls.values():  # both feeds cached before the first change
            await eventually(lambda url=url: answers(session, url), 10, url)  # type: ignore[misc]
        for i in range(25):
            title = f"Visible {i:03d}"
            assert await tenant.add_event(title, 1 + i % 28)
            times = await asyncio.gather(
                *(time_to_visible(session, url, title) for url in urls.values()),
                cluster_servers.postgres.wait_replayed(),
            )
            seconds["replica"].append(times[0])
            seconds["primary"].append(times[1])
            seconds["replay"].append(times[2])
    scans_after = await replica_scans(cluster_servers, cluster_database)
    with feed_log.open("rb") as log:
        log.seek(log_from)
        redone = log.read().count(b'"reason": "behind"')
    figures = {
        kind: f"p50 {statistics.median(v) * 1000:.0f} ms, p99 {percentile(v, 0.99) * 1000:.0f} ms"
        for kind, v in seconds.items()
    }
    print(
        f"\nchange-to-visible over {len(seconds['replica'])} changes (ingest 2xx to the webcal showing it):"
        f" feed reading the replica {figures['replica']}; feed on the primary only {figures['primary']};"
        f" replica caught up with the primary's WAL position at the change's acceptance {figures['replay']};"
        f" first reads after a change redone on the primary because the replica had not replayed it yet:"
        f" {redone} of {len(seconds['replica'])}; replica table scans {scans_after - scans_before}"
    )
    assert scans_after > scans_before, "the feed never read from the replica"
    # The replica path may add its lag, never a stale answer: each change showed within the bound.
    assert percentile(seconds["replica"], 0.99) < 5.0


async def test_a_paused_replica_degrades_to_the_primary_and_never_hides_a_change(
    cluster_servers: ClusterServers, cluster_stack: Stack, tenant: Tenant
) -> None:
    feed = cluster_stack.url("feed")
    feed_log = cluster_stack.processes["feed"].log_path
    assert feed_log is not None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        await eventually(lambda: answers(session, f"{feed}/v1/webcal/{tenant.subscriptions[0]}"), 10, "the feed")
        log_from = feed_log.stat().st_size
        await replay(cluster_servers, "pause")
        try:
            assert await tenant.add_event("Behind 001", 3)
            assert await tenant.subscribe("after-the-pause")
            took = await time_to_visible(session, f"{feed}/v1/webcal/{tenant.subscriptions[0]}", "Behind 001")
            # A subscription the replica has never seen: found on the primary, not a 404.
            new = await time_to_visible(session, f"{feed}/v1/webcal/{tenant.subscriptions[-1]}", "Behind 001")
            replica = await asyncpg.connect(cluster_servers.postgres.replica.url)
            primary = await asyncpg.connect(cluster_servers.postgres.primary.url)
            try:
                lsn = await primary.fetchval("SELECT pg_current_wal_lsn()")
                assert await replica.fetchval("SELECT pg_last_wal_replay_lsn() < $1::pg_lsn", lsn), "not behind"
            finally:
                await replica.close()
                await primary.close()
        finally:
            await replay(cluster_servers, "resume")
    with feed_log.open("rb") as log:
        log.seek(log_from)
        logged = log.read()
    # The replica still counted as fresh (lag bound 10 s in cluster_stack): both showed by rule 2.
    assert b'"reason": "behind"' in logged and b'"reason": "not_found_on_replica"' in logged
    print(f"\npaused replica: the change showed in {took:.2f} s, a new subscription's feed in {new:.2f} s")


async def test_a_stopped_replica_degrades_to_the_primary_and_is_read_again_once_back(
    cluster_servers: ClusterServers, cluster_database: str, cluster_stack: Stack, tenant: Tenant
) -> None:
    feed = cluster_stack.url("feed")
    replica = cluster_servers.postgres.replica
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        await replica.stop("immediate")
        try:
            assert await tenant.add_event("Down 001", 4)
            took = await time_to_visible(session, f"{feed}/v1/webcal/{tenant.subscriptions[0]}", "Down 001")
            calendar = f"{feed}/v1/calendars/{tenant.code}/faults.ics"
            assert await shows(session, calendar, "Down 001")
        finally:
            await replica.start()
        await cluster_servers.postgres.wait_replayed()
        scans = await replica_scans(cluster_servers, cluster_database)

        async def read_there_again() -> bool:
            # Each change makes the next poll read the feed anew; once fresh, from the replica.
            await tenant.add_event(f"Back {time.monotonic():.3f}", 5)
            await asyncio.sleep(0.5)
            await answers(session, f"{feed}/v1/webcal/{tenant.subscriptions[1]}")
            return await replica_scans(cluster_servers, cluster_database) > scans

        back = await eventually(read_there_again, 30, "feeds read from the restarted replica")
    print(f"\nstopped replica: the change showed in {took:.2f} s; reads back on the replica {back:.1f} s after it")
