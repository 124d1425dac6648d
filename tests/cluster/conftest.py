"""Cluster-run fixtures: a private 3-node RabbitMQ cluster and a PostgreSQL primary with a streaming
replica (tests/cluster/servers.py), started together once per run, and every service on them.

KALENDS_TEST_CLUSTER=0 skips the lot (as KALENDS_TEST_FAULTS=0 does the fault runs); so does a
machine without the Debian packages or without the memory for them, with the reason. The servers
are package-scoped: up for tests/cluster only, gone before `make test` moves on.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared import db
from shared.testing import Stack, create_database, random_name, with_database
from tests.cluster.servers import RabbitCluster, ReplicatedPostgres
from tests.conftest import service_migrations
from tests.faults.conftest import FAULT_ENV
from tests.faults.servers import PrivatePostgres, PrivateRabbit

CLUSTER_SERVICES = ("auth", "ingest", "feed", "webhook")
SKIP = os.environ.get("KALENDS_TEST_CLUSTER") == "0"
# Three Erlang VMs, two PostgreSQL servers and four services take about a gigabyte at their peak.
NEEDED_MEMORY_MB = 1536


def available_memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


@dataclass
class ClusterServers:
    rabbit: RabbitCluster
    postgres: ReplicatedPostgres
    seconds_to_start: float


@pytest.fixture(scope="package")
async def cluster_servers() -> AsyncIterator[ClusterServers]:
    if SKIP:
        pytest.skip("KALENDS_TEST_CLUSTER=0")
    for found in (PrivatePostgres.find(), PrivateRabbit.find()):
        if isinstance(found, str):
            pytest.skip(found)
    memory = available_memory_mb()
    if memory is not None and memory < NEEDED_MEMORY_MB:
        pytest.skip(f"{memory} MB of memory available, the cluster run needs {NEEDED_MEMORY_MB} MB")
    bin_dir = PrivatePostgres.find()
    assert isinstance(bin_dir, Path)
    # Not under pytest's tmp_path: PostgreSQL runs as `postgres`, who cannot enter root's 0700 dirs.
    rabbit = RabbitCluster(Path(tempfile.mkdtemp(prefix="kalends-cluster-mq-")))
    postgres = ReplicatedPostgres(bin_dir, Path(tempfile.mkdtemp(prefix="kalends-cluster-pg-")))
    started = time.monotonic()
    try:
        await asyncio.gather(rabbit.start(), postgres.start())
        servers = ClusterServers(rabbit, postgres, time.monotonic() - started)
        print(f"\ncluster: 3 RabbitMQ nodes and a PostgreSQL replica up in {servers.seconds_to_start:.1f} s")
        yield servers
    finally:
        await asyncio.gather(rabbit.destroy(), postgres.destroy(), return_exceptions=True)


@pytest.fixture(scope="package")
async def cluster_database(cluster_servers: ClusterServers) -> str:
    """A migrated database on the primary (and so, replayed, on the replica); its name."""
    name = random_name("kalends_cluster")
    conn = await db.connect(await create_database(cluster_servers.postgres.primary.url, name))
    try:
        for schema, path in service_migrations():
            await db.migrate(conn, schema, path)
    finally:
        await conn.close()
    await cluster_servers.postgres.wait_replayed()
    return name


@pytest.fixture(scope="package")
async def cluster_stack(cluster_servers: ClusterServers, cluster_database: str) -> AsyncIterator[Stack]:
    """Every service on the cluster: AMQP URLs listing the three nodes, feed reading from the replica."""
    postgres = cluster_servers.postgres
    stack = Stack(
        {
            "KALENDS_DATABASE_URL": with_database(postgres.primary.url, cluster_database),
            "KALENDS_AMQP_URL": cluster_servers.rabbit.url_list,
            "KALENDS_AMQP_PREFIX": random_name("cluster") + ".",
            **FAULT_ENV,
        }
    )
    feed_env = {
        "KALENDS_PUBLIC_API_URL": stack.url("ingest"),
        "KALENDS_FEED_READ_DATABASE_URL": with_database(postgres.replica.url, cluster_database),
        "KALENDS_FEED_READ_MAX_LAG_SECONDS": "10",
        "KALENDS_FEED_WORKERS": "1",
    }
    try:
        await stack.start(CLUSTER_SERVICES[0], timeout=60)
        await asyncio.gather(
            *(stack.start(s, env=feed_env if s == "feed" else None, timeout=60) for s in CLUSTER_SERVICES[1:])
        )
        yield stack
    finally:
        stack.stop_all()
