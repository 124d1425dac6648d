"""Per-service PostgreSQL roles (scripts/db_roles.py) against the real server: each service migrates
and works in its own schema, and a compromised feed cannot read auth's keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from scripts.db_roles import SERVICES, render, role_name
from shared import db
from shared.testing import create_database, drop_database, random_name, with_database
from tests.conftest import service_migrations


def as_role(url: str, role: str) -> str:
    """`url` logging in as `role` (the local test server trusts its clients, so no password)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


@pytest.fixture
async def roles_db(server_db_url: str, template_db: str) -> AsyncIterator[tuple[str, str]]:
    """(database URL, role prefix): a clone of the migrated template, handed over to roles of this test's own."""
    prefix = random_name("kr") + "_"
    name = random_name("kalends_roles")
    url = await create_database(server_db_url, name, template=template_db)
    try:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(render(prefix))
            await conn.execute(render(prefix))  # idempotent: a second run changes nothing and fails nothing
        finally:
            await conn.close()
        yield url, prefix
    finally:
        await drop_database(server_db_url, name)
        conn = await asyncpg.connect(with_database(server_db_url, "postgres"))
        try:
            for service in SERVICES:
                await conn.execute(f'DROP ROLE IF EXISTS "{role_name(service, prefix)}"')
        finally:
            await conn.close()


async def test_each_service_role_migrates_and_writes_its_own_schema(roles_db: tuple[str, str]) -> None:
    url, prefix = roles_db
    migrations = dict(service_migrations())
    for service in SERVICES:
        conn = await db.connect(as_role(url, role_name(service, prefix)))
        try:
            # The schema existed (migrated by a shared user): now owned by the role, which can still migrate it.
            owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", service)
            assert owner == role_name(service, prefix)
            await db.migrate(conn, service, migrations[service])
            async with conn.transaction():
                await conn.execute(
                    f"INSERT INTO {service}.outbox (id, routing_key, body) VALUES (gen_random_uuid(), 'x', '{{}}')"
                )
                assert await conn.fetchval(f"SELECT count(*) FROM {service}.outbox") >= 1
                await conn.execute(f"DELETE FROM {service}.outbox")
        finally:
            await conn.close()


async def test_the_feed_role_cannot_read_or_touch_auths_tables_or_create_elsewhere(roles_db: tuple[str, str]) -> None:
    url, prefix = roles_db
    feed = await asyncpg.connect(as_role(url, role_name("feed", prefix)))
    try:
        assert await feed.fetchval("SELECT count(*) FROM feed.schema_migrations") > 0
        for statement in (
            "SELECT * FROM auth.signing_keys",
            "SELECT * FROM auth.clients",
            "DELETE FROM auth.signing_keys",
            "SELECT * FROM ingest.subscriptions",
            "CREATE TABLE public.loot (x int)",
            "CREATE SCHEMA loot",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await feed.execute(statement)
    finally:
        await feed.close()
    # The same read works for auth's own role: the refusal is the role's, not a missing table.
    auth = await asyncpg.connect(as_role(url, role_name("auth", prefix)))
    try:
        assert await auth.fetchval("SELECT count(*) FROM auth.signing_keys") >= 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await auth.fetch("SELECT * FROM feed.schema_migrations")
    finally:
        await auth.close()
