"""Fault-run fixtures: a private PostgreSQL and RabbitMQ for the module (restartable without touching
the shared servers), a migrated template there, and a fresh stack of every service per test."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared import db
from shared.testing import Stack, create_database, random_name
from tests.conftest import service_migrations
from tests.faults.servers import PrivatePostgres, PrivateRabbit

FAULT_SERVICES = ("auth", "ingest", "feed", "webhook")
FAULT_ENV = {
    "KALENDS_WEBHOOK_RETRY_SCHEDULE": "0,1,2,3,5,8,12",
    "KALENDS_WEBHOOK_TIMEOUT": "2",
    "KALENDS_WEBHOOK_SWEEP_INTERVAL": "0.5",
    "KALENDS_WEBHOOK_SWEEP_GRACE": "1",
    "KALENDS_WEBHOOK_ALLOW_PRIVATE": "1",
}


@pytest.fixture(scope="module")
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    found = PrivatePostgres.find()
    if isinstance(found, str):
        pytest.skip(found)
    # Not under pytest's tmp_path: the server runs as `postgres`, who cannot enter root's 0700 dirs.
    server = await PrivatePostgres(found, Path(tempfile.mkdtemp(prefix="kalends-pg-"))).init()
    try:
        await server.start()
        yield server
    finally:
        await server.destroy()


@pytest.fixture(scope="module")
async def private_rabbit(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PrivateRabbit]:
    found = PrivateRabbit.find()
    if isinstance(found, str):
        pytest.skip(found)
    node = await PrivateRabbit(tmp_path_factory.mktemp("rabbit")).init()
    try:
        await node.start()
        yield node
    finally:
        await node.destroy()


@pytest.fixture(scope="module")
async def private_template(private_postgres: PrivatePostgres) -> str:
    name = random_name("kalends_tpl")
    conn = await db.connect(await create_database(private_postgres.url, name))
    try:
        for schema, path in service_migrations():
            await db.migrate(conn, schema, path)
    finally:
        await conn.close()
    return name


@pytest.fixture
async def fault_stack(
    private_postgres: PrivatePostgres, private_rabbit: PrivateRabbit, private_template: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    """Every service on the private servers, on a database of the test's own."""
    name = random_name("kalends_fault")
    stack = Stack(
        {
            "KALENDS_DATABASE_URL": await create_database(private_postgres.url, name, template=private_template),
            "KALENDS_AMQP_URL": private_rabbit.url,
            "KALENDS_AMQP_PREFIX": random_name("fault") + ".",
            **FAULT_ENV,
        }
    )
    try:
        await stack.start(FAULT_SERVICES[0])
        feed_env = {"KALENDS_PUBLIC_API_URL": stack.url("ingest")}
        await asyncio.gather(*(stack.start(s, env=feed_env if s == "feed" else None) for s in FAULT_SERVICES[1:]))
        yield stack
    finally:
        stack.stop_all()
