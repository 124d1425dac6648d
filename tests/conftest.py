"""Fixtures shared by every test: real servers, a migrated template database, names per test."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest

from shared import db
from shared.amqp import Names
from shared.testing import (
    RUN_PREFIXES,
    create_database,
    delete_prefixed,
    drop_database,
    random_name,
    remember_prefix,
    server_urls,
    with_database,
)

# Every service that has migrations; the template database carries all their schemas.
SERVICES = ("auth", "ingest", "feed", "webhook", "sync", "mail", "web")


def service_migrations() -> list[tuple[str, Path]]:
    found = []
    for name in SERVICES:
        path = Path(__file__).resolve().parent.parent / "services" / name / "migrations"
        if path.is_dir():
            found.append((name, path))
    return found


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[str, str]]:
    with server_urls() as urls:
        yield urls


@pytest.fixture(scope="session")
def server_db_url(servers: tuple[str, str]) -> str:
    return servers[0]


@pytest.fixture(scope="session")
def amqp_url(servers: tuple[str, str]) -> str:
    return servers[1]


@pytest.fixture(scope="session")
async def template_db(server_db_url: str) -> AsyncIterator[str]:
    """A database migrated once per run; tests clone it (CREATE DATABASE ... TEMPLATE)."""
    name = random_name("kalends_tpl")
    url = await create_database(server_db_url, name)
    conn = await db.connect(url)
    try:
        for schema, path in service_migrations():
            await db.migrate(conn, schema, path)
    finally:
        await conn.close()
    yield name
    await drop_database(server_db_url, name)


@pytest.fixture
async def database_url(server_db_url: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    name = random_name("kalends_t")
    await create_database(server_db_url, name, template=template_db)
    yield with_database(server_db_url, name)
    await drop_database(server_db_url, name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete the queues and exchanges left under this run's broker prefixes (services' ones too)."""
    for amqp_url, prefixes in RUN_PREFIXES.items():
        with contextlib.suppress(Exception):
            asyncio.run(asyncio.wait_for(delete_prefixed(amqp_url, prefixes), 60))


@pytest.fixture
async def amqp_names(amqp_url: str) -> AsyncIterator[Names]:
    """Exchange and queue names of this test's own, deleted when the test ends.

    Deleted per test, not only at session end: the quorum queues of a few hundred integration tests
    (every service declares several, each with a dead-letter queue) left standing together stalled this
    machine's RabbitMQ (1,024 open files) mid-run: it kept accepting TCP but answered no handshake.
    """
    names = Names(prefix=random_name("t") + ".")
    remember_prefix(amqp_url, names.prefix)
    yield names
    with contextlib.suppress(Exception):
        await asyncio.wait_for(delete_prefixed(amqp_url, {names.prefix}), 60)


@pytest.fixture
async def amqp_connection(amqp_url: str, amqp_names: Names) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(amqp_url)
    yield connection
    # Remove what the test declared under its prefix.
    channel = await connection.channel()
    for suffix in ("kalends.events", "kalends.dlx", "kalends.unrouted"):
        try:
            await channel.exchange_delete(amqp_names(suffix))
        except Exception:
            channel = await connection.channel()
    # declare_platform also makes the queue behind the alternate exchange.
    with contextlib.suppress(Exception):
        await channel.queue_delete(amqp_names("kalends.unrouted"))
    await connection.close()


def import_service(name: str) -> object:
    return importlib.import_module(f"services.{name}")
