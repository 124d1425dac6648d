"""The auth schema in PostgreSQL: every query of the service, each taking a connection."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.auth.domain.keys import KeyRecord
from services.auth.domain.ratelimit import Window
from shared.grouping import in_asked_order

SCHEMA = "auth"

Row: TypeAlias = asyncpg.Record


# --- accounts, clients, API keys ----------------------------------------------------------------


async def insert_account(conn: asyncpg.Connection, account_id: uuid.UUID, code: str, name: str) -> Row:
    """Raises asyncpg.UniqueViolationError when the code is taken."""
    row: Row = await conn.fetchrow(
        "INSERT INTO auth.accounts (id, code, name) VALUES ($1, $2, $3) RETURNING id, code, name, disabled, created_at",
        account_id,
        code,
        name,
    )
    return row


async def account_by_code(conn: asyncpg.Connection, code: str) -> Row | None:
    row: Row | None = await conn.fetchrow(
        "SELECT id, code, name, disabled, created_at FROM auth.accounts WHERE code = $1", code
    )
    return row


async def set_account_disabled(conn: asyncpg.Connection, code: str, disabled: bool) -> Row | None:
    """The account's id and the database's clock at the change, or None for an unknown code."""
    row: Row | None = await conn.fetchrow(
        "UPDATE auth.accounts SET disabled = $2 WHERE code = $1 RETURNING id, code, clock_timestamp() AS changed_at",
        code,
        disabled,
    )
    return row


async def insert_client(
    conn: asyncpg.Connection,
    client_id: str,
    account_id: uuid.UUID,
    secret_hash: bytes,
    grant_types: Sequence[str],
    scopes: Sequence[str] = (),
) -> None:
    await conn.execute(
        "INSERT INTO auth.clients (client_id, account_id, secret_hash, grant_types, scopes)"
        " VALUES ($1, $2, $3, $4, $5)",
        client_id,
        account_id,
        secret_hash,
        list(grant_types),
        list(scopes),
    )


async def client_with_account(conn: asyncpg.Connection, client_id: str) -> Row | None:
    row: Row | None = await conn.fetchrow(
        "SELECT c.client_id, c.secret_hash, c.grant_types, c.scopes, c.disabled AS client_disabled,"
        " a.id AS account_id, a.code AS account_code, a.disabled AS account_disabled"
        " FROM auth.clients c JOIN auth.accounts a ON a.id = c.account_id WHERE c.client_id = $1",
        client_id,
    )
    return row


async def set_client_disabled(conn: asyncpg.Connection, client_id: str, disabled: bool) -> Row | None:
    """The client's account id and the database's clock at the change, or None for an unknown client."""
    row: Row | None = await conn.fetchrow(
        "UPDATE auth.clients SET disabled = $2 WHERE client_id = $1"
        " RETURNING client_id, account_id, clock_timestamp() AS changed_at",
        client_id,
        disabled,
    )
    return row


async def insert_api_key(conn: asyncpg.Connection, key_id: uuid.UUID, account_id: uuid.UUID, key_hash: str) -> Row:
    row: Row = await conn.fetchrow(
        "INSERT INTO auth.api_keys (id, account_id, key_hash) VALUES ($1, $2, $3) RETURNING id, created_at",
        key_id,
        account_id,
        key_hash,
    )
    return row


async def revoke_api_key(conn: asyncpg.Connection, key_hash: str) -> Row | None:
    row: Row | None = await conn.fetchrow(
        "UPDATE auth.api_keys k SET revoked_at = now() FROM auth.accounts a"
        " WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND a.id = k.account_id"
        " RETURNING k.id, k.account_id, a.code AS account_code, k.key_hash, k.revoked_at",
        key_hash,
    )
    return row


# --- signing keys -------------------------------------------------------------------------------


def key_record(row: Row) -> KeyRecord:
    public = row["public_jwk"] or {}
    algorithm = str(public.get("alg") or ("ES256" if public.get("kty") == "EC" else "RS256"))
    return KeyRecord(row["kid"], row["created_at"], row["retired_at"], row["expires_at"], algorithm)


async def signing_keys(conn: asyncpg.Connection) -> list[Row]:
    """Every key's public half and dates (no private material)."""
    rows: list[Row] = await conn.fetch(
        "SELECT kid, public_jwk, created_at, retired_at, expires_at FROM auth.signing_keys ORDER BY created_at"
    )
    return rows


async def private_signing_key(conn: asyncpg.Connection, kid: str) -> Row | None:
    """The key's private half: `private_jwk_encrypted`, or `private_jwk` for a row not yet sealed."""
    row: Row | None = await conn.fetchrow(
        "SELECT private_jwk, private_jwk_encrypted FROM auth.signing_keys WHERE kid = $1", kid
    )
    return row


async def signing_keys_to_seal(conn: asyncpg.Connection) -> list[Row]:
    """Every key's private half and public half, locked, for sealing under the first key."""
    rows: list[Row] = await conn.fetch(
        "SELECT kid, public_jwk, private_jwk, private_jwk_encrypted FROM auth.signing_keys ORDER BY kid FOR UPDATE"
    )
    return rows


async def store_sealed_key(conn: asyncpg.Connection, kid: str, public: dict[str, Any], encrypted: str) -> None:
    await conn.execute(
        "UPDATE auth.signing_keys SET public_jwk = $2, private_jwk_encrypted = $3, private_jwk = NULL WHERE kid = $1",
        kid,
        public,
        encrypted,
    )


async def lock_signing_keys(conn: asyncpg.Connection) -> None:
    """Serialise key creation and rotation across processes, for the caller's transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('kalends.auth.signing_keys'))")


async def insert_signing_key(
    conn: asyncpg.Connection, kid: str, public_jwk: dict[str, Any], private_encrypted: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO auth.signing_keys (kid, public_jwk, private_jwk_encrypted, created_at) VALUES ($1, $2, $3, $4)",
        kid,
        public_jwk,
        private_encrypted,
        now,
    )


async def retire_signing_key(conn: asyncpg.Connection, kid: str, retired_at: datetime, expires_at: datetime) -> None:
    await conn.execute(
        "UPDATE auth.signing_keys SET retired_at = $2, expires_at = $3 WHERE kid = $1 AND retired_at IS NULL",
        kid,
        retired_at,
        expires_at,
    )


# --- token families, refresh tokens, revoked access tokens --------------------------------------


async def insert_family(conn: asyncpg.Connection, family_id: uuid.UUID, client_id: str, account_id: uuid.UUID) -> None:
    await conn.execute(
        "INSERT INTO auth.token_families (id, client_id, account_id) VALUES ($1, $2, $3)",
        family_id,
        client_id,
        account_id,
    )


@dataclass(frozen=True)
class AskedGrant:
    """One client_credentials grant to write: the client and its secret's hash as presented, and the
    family (with its first refresh token) to write for it when it may have one."""

    client_id: str
    secret_hash: bytes
    family_id: uuid.UUID
    refresh_hash: bytes
    issued_at: datetime
    refresh_expires_at: datetime


# The grants of many requests at once, each tagged with its `asked_position` (from 1). A family is written
# only where the presented hash matches and the client and its account are enabled and it may use the grant;
# a refresh token only with its family and when the client may refresh. The rows go in in the order of the
# clients they reference (then of their new keys), so two such statements in two processes take the foreign
# keys' row locks in the same order.
GRANT_FAMILIES = """
        WITH asked AS (
            SELECT * FROM unnest($1::text[], $2::bytea[], $3::uuid[], $4::bytea[], $5::timestamptz[], $6::timestamptz[])
                WITH ORDINALITY AS a(client_id, secret_hash, family_id, refresh_hash, issued_at, refresh_expires_at,
                    position)
        ), client AS (
            SELECT a.position, a.family_id, a.refresh_hash, a.issued_at, a.refresh_expires_at,
                a.secret_hash = c.secret_hash AND NOT c.disabled AND NOT acc.disabled
                    AND 'client_credentials' = ANY (c.grant_types) AS may_grant,
                c.client_id, c.secret_hash, c.grant_types, c.scopes, c.disabled AS client_disabled,
                acc.id AS account_id, acc.code AS account_code, acc.disabled AS account_disabled
            FROM asked a JOIN auth.clients c ON c.client_id = a.client_id
                JOIN auth.accounts acc ON acc.id = c.account_id
        ), family AS (
            INSERT INTO auth.token_families (id, client_id, account_id, created_at)
            SELECT client.family_id, client.client_id, client.account_id, client.issued_at
            FROM client, (SELECT set_config('synchronous_commit', 'off', true)) AS commit_mode
            WHERE client.may_grant
            ORDER BY client.client_id, client.family_id
            RETURNING id
        ), refresh AS (
            INSERT INTO auth.refresh_tokens (token_hash, family_id, issued_at, expires_at)
            SELECT client.refresh_hash, family.id, client.issued_at, client.refresh_expires_at
            FROM family JOIN client ON client.family_id = family.id
            WHERE 'refresh_token' = ANY (client.grant_types)
            ORDER BY client.client_id, client.refresh_hash
        )
        SELECT client.position AS asked_position, client.client_id, client.secret_hash, client.grant_types,
            client.scopes, client.client_disabled, client.account_id, client.account_code, client.account_disabled,
            client.family_id IN (SELECT id FROM family) AS granted
        FROM client
        """


async def grant_families(conn: asyncpg.Connection, asked: Sequence[AskedGrant]) -> list[Row | None]:
    """client_credentials grants in one statement. For each grant, in order: the client (the columns
    of `client_with_account`) and `granted`, whether its family and (when the client may refresh) its
    first refresh token were written: only when the secret's hash matches, the client and its account
    are enabled and it may use the grant. None for an unknown client.

    One round trip for the lookup and the insert, and for many requests at once (shared.grouping.on_pool). The
    caller still checks each row in Python (constant-time hash comparison, the errors to answer); the
    conditions here only keep a refused grant from writing anything. The commit does not wait for
    the WAL flush: a database crash in the next few hundred milliseconds can lose these new grants'
    refresh tokens, and their clients then ask again with their credentials; nothing revoked can
    become valid. `set_config(..., true)` is SET LOCAL as an expression, so it rides in the same
    statement and holds until the end of its own transaction, with no BEGIN/SET/COMMIT round trips.
    Refreshes and revocations keep the default, durable commit.
    """
    rows = await conn.fetch(
        GRANT_FAMILIES,
        [a.client_id for a in asked],
        [a.secret_hash for a in asked],
        [a.family_id for a in asked],
        [a.refresh_hash for a in asked],
        [a.issued_at for a in asked],
        [a.refresh_expires_at for a in asked],
    )
    return in_asked_order(rows, len(asked))


async def revoke_family(conn: asyncpg.Connection, family_id: uuid.UUID, reason: str) -> Row | None:
    """The family as revoked now, or None when it was revoked already (or is unknown)."""
    row: Row | None = await conn.fetchrow(
        "UPDATE auth.token_families SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL"
        " RETURNING id, client_id, account_id, revoked_at",
        family_id,
        reason,
    )
    return row


async def family_revoked(conn: asyncpg.Connection, family_id: uuid.UUID) -> bool:
    revoked: bool | None = await conn.fetchval(
        "SELECT revoked_at IS NOT NULL FROM auth.token_families WHERE id = $1", family_id
    )
    return bool(revoked)


async def insert_refresh_token(
    conn: asyncpg.Connection, token_hash: bytes, family_id: uuid.UUID, issued_at: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO auth.refresh_tokens (token_hash, family_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        token_hash,
        family_id,
        issued_at,
        expires_at,
    )


_REFRESH_SELECT = (
    "SELECT r.token_hash, r.family_id, r.issued_at, r.expires_at, r.used_at,"
    " f.client_id, f.revoked_at AS family_revoked_at, f.account_id, a.code AS account_code,"
    " a.disabled AS account_disabled, c.disabled AS client_disabled"
    " FROM auth.refresh_tokens r"
    " JOIN auth.token_families f ON f.id = r.family_id"
    " JOIN auth.clients c ON c.client_id = f.client_id"
    " JOIN auth.accounts a ON a.id = f.account_id"
    " WHERE r.token_hash = $1"
)


async def refresh_token(conn: asyncpg.Connection, token_hash: bytes, *, for_update: bool = False) -> Row | None:
    """The refresh token and its family; `for_update` locks the token row until the transaction ends."""
    row: Row | None = await conn.fetchrow(_REFRESH_SELECT + (" FOR UPDATE OF r" if for_update else ""), token_hash)
    return row


async def mark_refresh_used(conn: asyncpg.Connection, token_hash: bytes, used_at: datetime) -> None:
    await conn.execute("UPDATE auth.refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, used_at)


async def revoke_access_token(
    conn: asyncpg.Connection, jti: uuid.UUID, expires_at: datetime, client_id: str, account_id: uuid.UUID
) -> None:
    await conn.execute(
        "INSERT INTO auth.revoked_access_tokens (jti, expires_at, client_id, account_id) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING",
        jti,
        expires_at,
        client_id,
        account_id,
    )


async def denylist_state(conn: asyncpg.Connection, families_since: datetime) -> dict[str, list[Row]]:
    """What every service's denylist should hold now: unexpired revoked access tokens, families
    revoked since `families_since`, disabled clients and disabled accounts (with the clock now)."""
    return {
        "tokens": await conn.fetch(
            "SELECT jti, client_id, account_id, expires_at FROM auth.revoked_access_tokens"
            " WHERE expires_at > now() AND client_id IS NOT NULL"
        ),
        "families": await conn.fetch(
            "SELECT id, client_id, account_id, revoked_at, revoked_reason FROM auth.token_families"
            " WHERE revoked_at > $1",
            families_since,
        ),
        "clients": await conn.fetch(
            "SELECT client_id, account_id, clock_timestamp() AS changed_at FROM auth.clients WHERE disabled"
        ),
        "accounts": await conn.fetch(
            "SELECT id, code, clock_timestamp() AS changed_at FROM auth.accounts WHERE disabled"
        ),
    }


async def access_token_revoked(conn: asyncpg.Connection, jti: uuid.UUID, family_id: uuid.UUID | None) -> bool:
    revoked: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM auth.revoked_access_tokens WHERE jti = $1)"
        " OR EXISTS (SELECT 1 FROM auth.token_families WHERE id = $2 AND revoked_at IS NOT NULL)",
        jti,
        family_id,
    )
    return revoked


async def account_active(conn: asyncpg.Connection, account_id: uuid.UUID, client_id: str) -> bool:
    active: bool | None = await conn.fetchval(
        "SELECT NOT a.disabled AND NOT c.disabled FROM auth.accounts a JOIN auth.clients c ON c.account_id = a.id"
        " WHERE a.id = $1 AND c.client_id = $2",
        account_id,
        client_id,
    )
    return bool(active)


# --- failed authentications ---------------------------------------------------------------------


async def failure_windows(conn: asyncpg.Connection, buckets: Sequence[str]) -> dict[str, Window]:
    rows = await conn.fetch(
        "SELECT bucket, window_start, failures FROM auth.auth_failures WHERE bucket = ANY($1::text[])", list(buckets)
    )
    return {r["bucket"]: Window(r["window_start"], r["failures"]) for r in rows}


async def record_failure(conn: asyncpg.Connection, bucket: str, now: datetime, window_seconds: int) -> Window:
    """Count one failure atomically: a window older than `window_seconds` restarts at `now`."""
    row = await conn.fetchrow(
        "INSERT INTO auth.auth_failures AS f (bucket, window_start, failures) VALUES ($1, $2, 1)"
        " ON CONFLICT (bucket) DO UPDATE SET"
        "  window_start = CASE WHEN f.window_start + make_interval(secs => $3) <= $2 THEN $2 ELSE f.window_start END,"
        "  failures = CASE WHEN f.window_start + make_interval(secs => $3) <= $2 THEN 1 ELSE f.failures + 1 END"
        " RETURNING window_start, failures",
        bucket,
        now,
        float(window_seconds),
    )
    return Window(row["window_start"], row["failures"])


# --- housekeeping -------------------------------------------------------------------------------


async def purge_expired(conn: asyncpg.Connection, now: datetime, failure_window: int) -> dict[str, int]:
    """Drop what can no longer matter: spent families, expired revocations, old failure windows."""
    counts: dict[str, int] = {}
    status = await conn.execute(
        "DELETE FROM auth.token_families f WHERE NOT EXISTS"
        " (SELECT 1 FROM auth.refresh_tokens r"
        "  WHERE r.family_id = f.id AND r.expires_at > $1::timestamptz - interval '1 day')"
        " AND f.created_at < $1::timestamptz - interval '1 day'",
        now,
    )
    counts["token_families"] = int(status.split()[-1])
    status = await conn.execute("DELETE FROM auth.revoked_access_tokens WHERE expires_at < $1", now)
    counts["revoked_access_tokens"] = int(status.split()[-1])
    status = await conn.execute(
        "DELETE FROM auth.auth_failures WHERE window_start + make_interval(secs => $2) < $1", now, float(failure_window)
    )
    counts["auth_failures"] = int(status.split()[-1])
    return counts
