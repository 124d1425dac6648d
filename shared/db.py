"""PostgreSQL lifecycle: the database itself, the pool, and each service's migrations."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.logging import get_logger
from shared.settings import censor_url

log = get_logger(__name__)

PLATFORM_SQL = Path(__file__).with_name("sql") / "platform.sql"
# Later changes to the platform tables, applied to every schema after PLATFORM_SQL (their own
# versions, so a schema migrated before they existed gets them on its next start).
PLATFORM_STEPS = (
    ("000_platform_002_outbox_parking", PLATFORM_SQL.with_name("platform_002_outbox_parking.sql")),
    ("000_platform_003_denylist", PLATFORM_SQL.with_name("platform_003_denylist.sql")),
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, so repositories never call json.dumps by hand.
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    return conn


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A pool's `reset` that sends nothing: asyncpg has already rolled back any open transaction and
    dropped its listener callbacks before calling it (Pool.release -> Connection._reset)."""


async def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    reset_session: bool = True,
    server_settings: dict[str, str] | None = None,
    connect_timeout: float = 60.0,
) -> asyncpg.Pool:
    """`server_settings` are session settings of every connection (e.g. `plan_cache_mode`).
    `connect_timeout` bounds each new connection (asyncpg's default, 60 s, unless told).
    `reset_session=False` skips asyncpg's reset query on every release (advisory unlock, CLOSE ALL,
    UNLISTEN *, RESET ALL: one round trip per acquire, a sixth of a small request's cost). Only for a
    service whose pooled connections keep no session state: no SET (SET LOCAL is fine), no session
    advisory locks, no cursors outside a transaction, and listeners removed before release."""
    log.info("db.pool.create", url=censor_url(url), min_size=min_size, max_size=max_size)
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=None if reset_session else _keep_session,
        server_settings=server_settings,
        timeout=connect_timeout,
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def pool_context(
    url: str, *, min_size: int = 1, max_size: int = 10, reset_session: bool = True
) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(url, min_size=min_size, max_size=max_size, reset_session=reset_session)
    try:
        yield pool
    finally:
        await pool.close()


def _maintenance_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path="/postgres")), name


async def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it does not exist. True when it was created."""
    maintenance, name = _maintenance_url(url)
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    conn = await asyncpg.connect(maintenance)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        log.info("db.created", database=name)
        return True
    except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        # Another process created it between our check and our CREATE (two services starting at once).
        return False
    finally:
        await conn.close()


def _migration_files(directory: Path) -> list[tuple[str, str]]:
    files = sorted(p for p in directory.glob("*.sql") if p.name[:3].isdigit())
    return [(p.stem, p.read_text(encoding="utf-8")) for p in files]


async def migrate(conn: asyncpg.Connection, schema: str, migrations_dir: Path) -> list[str]:
    """Apply the service's missing migrations in order, under an advisory lock; returns what ran.

    Every service owns one schema. The platform tables (outbox, processed messages, the revocation
    denylist) are the first migrations of every schema. Safe when several processes start at once:
    the lock serialises them and the second finds nothing left to do.
    """
    if not schema.isidentifier():
        raise ValueError(f"bad schema name {schema!r}")
    steps = [
        ("000_platform", PLATFORM_SQL.read_text(encoding="utf-8")),
        *((version, path.read_text(encoding="utf-8")) for version, path in PLATFORM_STEPS),
        *_migration_files(migrations_dir),
    ]
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"kalends.migrate.{schema}")
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")}
        for version, sql in steps:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {schema}, public")
                await conn.execute(sql.replace("{schema}", schema))
                await conn.execute(f"INSERT INTO {schema}.schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
            log.info("db.migrated", schema=schema, version=version)
    finally:
        # A dead connection has dropped its session lock already; don't mask the original error.
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"kalends.migrate.{schema}")
    return applied


async def prepare_database(url: str, schema: str, migrations_dir: Path) -> list[str]:
    """Create the database if missing and migrate one service's schema."""
    await ensure_database(url)
    conn = await connect(url)
    try:
        return await migrate(conn, schema, migrations_dir)
    finally:
        await conn.close()
