"""Migrations against real PostgreSQL: in order, once, idempotent, safe when several processes race."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest

from shared import db
from shared.testing import ROOT, drop_database, random_name, with_database


def write_migrations(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # Neither migration is idempotent: applied twice, the second run would fail or count twice.
    (directory / "001_widgets.sql").write_text(
        "CREATE TABLE widgets (id int PRIMARY KEY, meta jsonb);\n"
        "CREATE TABLE applied_log (version text NOT NULL);\n"
        "INSERT INTO applied_log VALUES ('001');\n"
    )
    (directory / "002_gadgets.sql").write_text(
        "CREATE TABLE gadgets (widget int REFERENCES widgets);\nINSERT INTO applied_log VALUES ('002');\n"
    )
    (directory / "README.md").write_text("not a migration")
    (directory / "notes.sql").write_text("this is not numbered, so it is not a migration")
    return directory


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "migrations")


@pytest.fixture
async def empty_database(server_db_url: str) -> str:
    """The URL of a database that does not exist yet (dropped after the test)."""
    name = random_name("kalends_mig")
    yield with_database(server_db_url, name)  # type: ignore[misc]
    await drop_database(server_db_url, name)


PLATFORM_VERSIONS = ["000_platform", "000_platform_002_outbox_parking", "000_platform_003_denylist"]


async def applied(url: str, schema: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(f"SELECT version FROM {schema}.schema_migrations ORDER BY applied_at, version")
        return [r["version"] for r in rows]
    finally:
        await conn.close()


async def test_prepare_database_creates_the_database_and_applies_migrations_in_order(
    empty_database: str, migrations: Path
) -> None:
    ran = await db.prepare_database(empty_database, "svc", migrations)
    assert ran == [*PLATFORM_VERSIONS, "001_widgets", "002_gadgets"]
    assert await applied(empty_database, "svc") == ran
    conn = await asyncpg.connect(empty_database)
    try:
        tables = {
            r["table_name"]
            for r in await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = 'svc'")
        }
    finally:
        await conn.close()
    platform = {"schema_migrations", "outbox", "processed_messages", "denylist"}
    assert tables == platform | {"widgets", "applied_log", "gadgets"}


async def test_migrating_again_applies_nothing(empty_database: str, migrations: Path) -> None:
    await db.prepare_database(empty_database, "svc", migrations)
    assert await db.prepare_database(empty_database, "svc", migrations) == []
    (migrations / "003_more.sql").write_text("ALTER TABLE widgets ADD COLUMN name text;")
    assert await db.prepare_database(empty_database, "svc", migrations) == ["003_more"]


async def test_schemas_of_two_services_are_independent(empty_database: str, migrations: Path) -> None:
    await db.prepare_database(empty_database, "alpha", migrations)
    await db.prepare_database(empty_database, "beta", migrations)
    assert await applied(empty_database, "alpha") == await applied(empty_database, "beta")


async def test_a_failing_migration_rolls_back_whole_and_stops_the_ones_after_it(
    empty_database: str, migrations: Path
) -> None:
    (migrations / "003_broken.sql").write_text("CREATE TABLE half (id int);\nSELECT no_such_function();")
    (migrations / "004_after.sql").write_text("CREATE TABLE after_broken (id int);")
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await db.prepare_database(empty_database, "svc", migrations)
    assert await applied(empty_database, "svc") == [*PLATFORM_VERSIONS, "001_widgets", "002_gadgets"]
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('svc.half')") is None
        assert await conn.fetchval("SELECT to_regclass('svc.after_broken')") is None
        # The advisory lock was released: another migration run can go ahead at once.
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
            )
            == 0
        )
    finally:
        await conn.close()


MIGRATE_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from shared import db
    print(asyncio.run(db.prepare_database(sys.argv[1], "svc", Path(sys.argv[2]))), flush=True)
    """
)


async def test_several_processes_migrating_at_once_all_succeed_and_apply_each_version_once(
    empty_database: str, migrations: Path
) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            MIGRATE_PROCESS,
            empty_database,
            str(migrations),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    results = [await p.communicate() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], [err.decode()[-1500:] for _, err in results]
    ran = sorted(out.decode().strip().splitlines()[-1] for out, _ in results)  # last line: the result
    # One of them did the work (the database did not exist: each also raced to create it).
    assert ran == [str([*PLATFORM_VERSIONS, "001_widgets", "002_gadgets"]), "[]", "[]", "[]"]
    conn = await asyncpg.connect(empty_database)
    try:
        log = [r["version"] for r in await conn.fetch("SELECT version FROM svc.applied_log ORDER BY 1")]
    finally:
        await conn.close()
    assert log == ["001", "002"]


async def test_connections_decode_json_and_jsonb_as_python_objects(empty_database: str, migrations: Path) -> None:
    await db.prepare_database(empty_database, "svc", migrations)
    conn = await db.connect(empty_database)
    try:
        await conn.execute("INSERT INTO svc.widgets VALUES (1, $1)", {"tags": ["a", "b"], "n": 2})
        assert await conn.fetchval("SELECT meta FROM svc.widgets") == {"tags": ["a", "b"], "n": 2}
        assert await conn.fetchval("SELECT '[1, 2]'::json") == [1, 2]
    finally:
        await conn.close()
    pool = await db.create_pool(empty_database, min_size=1, max_size=2)
    try:
        assert await pool.fetchval("SELECT meta->'tags' FROM svc.widgets") == ["a", "b"]
    finally:
        await pool.close()


async def test_a_bad_schema_name_is_refused(empty_database: str, migrations: Path) -> None:
    with pytest.raises(ValueError, match="bad schema name"):
        await db.prepare_database(empty_database, "svc; DROP TABLE x", migrations)


def test_ensure_database_says_whether_it_created_the_database(empty_database: str) -> None:
    assert asyncio.run(db.ensure_database(empty_database)) is True
    assert asyncio.run(db.ensure_database(empty_database)) is False


def test_migration_files_are_sorted_numerically_named_sql_only(migrations: Path) -> None:
    (migrations / "010_late.sql").write_text("SELECT 1;")
    names = [name for name, _ in db._migration_files(migrations)]
    assert names == ["001_widgets", "002_gadgets", "010_late"]
