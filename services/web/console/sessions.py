"""Console sessions in the web schema: the only table web has. Each function takes a connection."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import asyncpg

SCHEMA = "web"


def id_hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()


async def insert(
    conn: asyncpg.Connection,
    session_id: str,
    *,
    user_id: uuid.UUID,
    email: str,
    account_code: str,
    access_token: str,
    access_expires_at: datetime,
    refresh_token: str,
    csrf_token: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO web.sessions (id_hash, user_id, email, account_code, access_token, access_expires_at,"
        " refresh_token, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id_hash(session_id),
        user_id,
        email,
        account_code,
        access_token,
        access_expires_at,
        refresh_token,
        csrf_token,
        expires_at,
    )


async def find(conn: asyncpg.Connection, session_id: str, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT * FROM web.sessions WHERE id_hash = $1{lock}", id_hash(session_id)
    )
    return row


async def update_tokens(
    conn: asyncpg.Connection,
    session_id: str,
    access_token: str,
    access_expires_at: datetime,
    refresh_token: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "UPDATE web.sessions SET access_token = $2, access_expires_at = $3, refresh_token = $4, expires_at = $5"
        " WHERE id_hash = $1",
        id_hash(session_id),
        access_token,
        access_expires_at,
        refresh_token,
        expires_at,
    )


async def set_notice(conn: asyncpg.Connection, session_id: str, notice: str | None) -> None:
    await conn.execute("UPDATE web.sessions SET notice = $2 WHERE id_hash = $1", id_hash(session_id), notice)


async def take_notice(conn: asyncpg.Connection, session_id: str) -> str | None:
    """The notice left for the next page, once."""
    notice: str | None = await conn.fetchval(
        "UPDATE web.sessions s SET notice = NULL FROM (SELECT notice FROM web.sessions WHERE id_hash = $1 FOR UPDATE)"
        " AS old WHERE s.id_hash = $1 RETURNING old.notice",
        id_hash(session_id),
    )
    return notice


async def use_form(conn: asyncpg.Connection, session_id: str, form_id: str) -> bool:
    """True the first time this session posts `form_id`, False on every later post of it."""
    status = await conn.execute(
        "INSERT INTO web.used_forms (session_id_hash, form_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        id_hash(session_id),
        form_id,
    )
    return bool(status == "INSERT 0 1")


async def delete(conn: asyncpg.Connection, session_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "DELETE FROM web.sessions WHERE id_hash = $1 RETURNING refresh_token", id_hash(session_id)
    )
    return row


async def purge_expired(conn: asyncpg.Connection, now: datetime) -> int:
    status = await conn.execute("DELETE FROM web.sessions WHERE expires_at < $1", now)
    return int(status.split()[-1])
