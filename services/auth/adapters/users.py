"""Console users in the auth schema: users, one-time password links, login sessions, failure windows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import asyncpg

from services.auth.domain.ratelimit import Window

Row: TypeAlias = asyncpg.Record

_USER_COLUMNS = (
    "u.id, u.email, u.password_hash, u.disabled, a.id AS account_id, a.code AS account_code,"
    " a.disabled AS account_disabled"
)


async def insert_user(conn: asyncpg.Connection, user_id: uuid.UUID, account_id: uuid.UUID, email: str) -> None:
    """Raises asyncpg.UniqueViolationError when the email is taken (by any account)."""
    await conn.execute("INSERT INTO auth.users (id, account_id, email) VALUES ($1, $2, $3)", user_id, account_id, email)


async def user_by_email(conn: asyncpg.Connection, email: str) -> Row | None:
    row: Row | None = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM auth.users u JOIN auth.accounts a ON a.id = u.account_id"
        " WHERE lower(u.email) = lower($1)",
        email,
    )
    return row


async def insert_password_token(
    conn: asyncpg.Connection, token_hash: bytes, user_id: uuid.UUID, expires_at: datetime
) -> None:
    """A new link; earlier unused links of the user stop working (only the newest is valid)."""
    await conn.execute(
        "UPDATE auth.password_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL", user_id
    )
    await conn.execute(
        "INSERT INTO auth.password_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        user_id,
        expires_at,
    )


async def password_token_for_update(conn: asyncpg.Connection, token_hash: bytes) -> Row | None:
    row: Row | None = await conn.fetchrow(
        f"SELECT t.expires_at, t.used_at, {_USER_COLUMNS} FROM auth.password_tokens t"
        " JOIN auth.users u ON u.id = t.user_id JOIN auth.accounts a ON a.id = u.account_id"
        " WHERE t.token_hash = $1 FOR UPDATE OF t, u",
        token_hash,
    )
    return row


async def set_password(conn: asyncpg.Connection, user_id: uuid.UUID, password_hash: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE auth.users SET password_hash = $2, password_set_at = $3 WHERE id = $1", user_id, password_hash, now
    )
    await conn.execute(
        "UPDATE auth.password_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL", user_id, now
    )


async def update_password_hash(conn: asyncpg.Connection, user_id: uuid.UUID, password_hash: str) -> None:
    await conn.execute("UPDATE auth.users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


# --- failure windows (auth.auth_failures, shared with client authentication) ---------------------


async def failure_window(conn: asyncpg.Connection, bucket: str) -> Window | None:
    row = await conn.fetchrow("SELECT window_start, failures FROM auth.auth_failures WHERE bucket = $1", bucket)
    return Window(row["window_start"], row["failures"]) if row is not None else None


async def clear_failures(conn: asyncpg.Connection, bucket: str) -> None:
    await conn.execute("DELETE FROM auth.auth_failures WHERE bucket = $1", bucket)


# --- login sessions and their refresh tokens ----------------------------------------------------


async def insert_session(
    conn: asyncpg.Connection,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    token_hash: bytes,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO auth.user_sessions (id, user_id, created_at) VALUES ($1, $2, $3)", session_id, user_id, issued_at
    )
    await insert_refresh_token(conn, token_hash, session_id, issued_at, expires_at)


async def insert_refresh_token(
    conn: asyncpg.Connection, token_hash: bytes, session_id: uuid.UUID, issued_at: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO auth.user_refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        token_hash,
        session_id,
        issued_at,
        expires_at,
    )


async def refresh_token_for_update(conn: asyncpg.Connection, token_hash: bytes) -> Row | None:
    row: Row | None = await conn.fetchrow(
        f"SELECT r.session_id, r.expires_at, r.used_at, s.revoked_at AS session_revoked_at, {_USER_COLUMNS}"
        " FROM auth.user_refresh_tokens r JOIN auth.user_sessions s ON s.id = r.session_id"
        " JOIN auth.users u ON u.id = s.user_id JOIN auth.accounts a ON a.id = u.account_id"
        " WHERE r.token_hash = $1 FOR UPDATE OF r",
        token_hash,
    )
    return row


async def mark_refresh_used(conn: asyncpg.Connection, token_hash: bytes, now: datetime) -> None:
    await conn.execute("UPDATE auth.user_refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, now)


async def revoke_session(conn: asyncpg.Connection, session_id: uuid.UUID, reason: str) -> Row | None:
    """The session as a token family (`id`, `client_id`, `account_id`, `revoked_at`), or None when it
    was revoked already."""
    row: Row | None = await conn.fetchrow(
        "UPDATE auth.user_sessions s SET revoked_at = now(), revoked_reason = $2"
        " FROM auth.users u WHERE s.id = $1 AND s.revoked_at IS NULL AND u.id = s.user_id"
        " RETURNING s.id, 'user:' || u.id::text AS client_id, u.account_id, s.revoked_at",
        session_id,
        reason,
    )
    return row


async def purge_expired(conn: asyncpg.Connection, now: datetime) -> dict[str, int]:
    counts: dict[str, int] = {}
    status = await conn.execute(
        "DELETE FROM auth.password_tokens WHERE expires_at < $1::timestamptz - interval '1 day'", now
    )
    counts["password_tokens"] = int(status.split()[-1])
    status = await conn.execute(
        "DELETE FROM auth.user_sessions s WHERE NOT EXISTS (SELECT 1 FROM auth.user_refresh_tokens r"
        " WHERE r.session_id = s.id AND r.expires_at > $1::timestamptz - interval '1 day')"
        " AND s.created_at < $1::timestamptz - interval '1 day'",
        now,
    )
    counts["user_sessions"] = int(status.split()[-1])
    return counts


async def session_revoked(conn: asyncpg.Connection, session_id: uuid.UUID) -> bool:
    revoked: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM auth.user_sessions WHERE id = $1 AND revoked_at IS NOT NULL)", session_id
    )
    return revoked


# --- an account's API keys and clients (the console's keys page) ---------------------------------


async def api_keys_of(conn: asyncpg.Connection, account_id: uuid.UUID) -> list[Row]:
    return list(
        await conn.fetch(
            "SELECT id, created_at, revoked_at FROM auth.api_keys WHERE account_id = $1"
            " ORDER BY revoked_at IS NOT NULL, created_at DESC LIMIT 500",
            account_id,
        )
    )


async def revoke_api_key_of(conn: asyncpg.Connection, account_id: uuid.UUID, key_id: uuid.UUID) -> Row | None:
    row: Row | None = await conn.fetchrow(
        "UPDATE auth.api_keys k SET revoked_at = now() FROM auth.accounts a"
        " WHERE k.id = $1 AND k.account_id = $2 AND k.revoked_at IS NULL AND a.id = k.account_id"
        " RETURNING k.id, k.account_id, a.code AS account_code, k.key_hash, k.revoked_at",
        key_id,
        account_id,
    )
    return row


async def clients_of(conn: asyncpg.Connection, account_id: uuid.UUID) -> list[Row]:
    return list(
        await conn.fetch(
            "SELECT client_id, grant_types, disabled, created_at FROM auth.clients WHERE account_id = $1"
            " ORDER BY disabled, created_at DESC LIMIT 500",
            account_id,
        )
    )
