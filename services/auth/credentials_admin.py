"""An account's own API keys and OAuth clients over HTTP (the console's keys page): list, create, revoke.

The caller is an access token of the account (a client's or a console user's), verified here with
auth's own keys and checked against auth's own records (revoked token, family or login session,
disabled account): auth is where revocation starts, so it needs no denylist of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.auth import services
from services.auth.adapters import repository as repo
from services.auth.adapters import users as users_repo
from services.auth.domain.tokens import FAMILY_CLAIM
from services.auth.services import AdminError, TokenService
from shared.errors import Forbidden, NotFound, Unauthorized
from shared.logging import get_logger
from shared.messages import ApiKeyRevoked, make_envelope
from shared.outbox import enqueue

log = get_logger(__name__)


@dataclass(frozen=True)
class Caller:
    account_id: uuid.UUID
    account_code: str
    client_id: str


async def caller(pool: asyncpg.Pool, tokens: TokenService, authorization: str, account_code: str) -> Caller:
    """The verified, unrevoked bearer of `authorization`, when it is of account `account_code`."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an access token is required: Authorization: Bearer <token>")
    claims = await tokens.verified_access(token.strip())
    if claims is None:
        raise Unauthorized("the access token is invalid or has expired")
    if claims.get("account_code") != account_code:
        raise Forbidden(f"this token is not of account {account_code!r}")
    try:
        jti = uuid.UUID(str(claims["jti"]))
        family = uuid.UUID(str(claims[FAMILY_CLAIM])) if FAMILY_CLAIM in claims else None
        account_id = uuid.UUID(str(claims["account_id"]))
    except (KeyError, ValueError):
        raise Unauthorized("the access token lacks required claims") from None
    async with pool.acquire() as conn:
        revoked = await repo.access_token_revoked(conn, jti, family)
        if family is not None and not revoked:
            revoked = await users_repo.session_revoked(conn, family)
        account = await repo.account_by_code(conn, account_code)
    if revoked or account is None or account["disabled"] or account["id"] != account_id:
        raise Unauthorized("the access token has been revoked")
    return Caller(account_id, account_code, str(claims.get("client_id", "")))


async def list_api_keys(pool: asyncpg.Pool, who: Caller) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await users_repo.api_keys_of(conn, who.account_id)
    return [
        {
            "id": str(r["id"]),
            "createdAt": r["created_at"].isoformat(),
            "revokedAt": r["revoked_at"].isoformat() if r["revoked_at"] else None,
        }
        for r in rows
    ]


async def create_api_key(pool: asyncpg.Pool, who: Caller) -> dict[str, Any]:
    return await services.create_api_key(pool, who.account_code)


async def revoke_api_key(pool: asyncpg.Pool, who: Caller, key_id: str) -> None:
    try:
        key_uuid = uuid.UUID(key_id)
    except ValueError:
        raise NotFound(f"no API key {key_id[:64]!r} in this account", code="ApiKeyNotFound") from None
    async with pool.acquire() as conn, conn.transaction():
        row = await users_repo.revoke_api_key_of(conn, who.account_id, key_uuid)
        if row is None:
            raise NotFound(f"no active API key {key_id[:64]!r} in this account", code="ApiKeyNotFound")
        event = ApiKeyRevoked(
            key_id=row["id"],
            account_id=row["account_id"],
            account_code=row["account_code"],
            key_hash=row["key_hash"],
            revoked_at=row["revoked_at"],
        )
        await enqueue(conn, repo.SCHEMA, [make_envelope("api_key.revoked", event, account_id=row["account_id"])])
    log.info("api_key.revoked", account=who.account_code, key_id=key_id, by=who.client_id)


async def list_clients(pool: asyncpg.Pool, who: Caller) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await users_repo.clients_of(conn, who.account_id)
    return [
        {
            "clientId": r["client_id"],
            "grantTypes": list(r["grant_types"]),
            "disabled": r["disabled"],
            "createdAt": r["created_at"].isoformat(),
        }
        for r in rows
    ]


async def create_client(pool: asyncpg.Pool, who: Caller) -> dict[str, str]:
    return await services.create_client(pool, who.account_code)


async def disable_client(pool: asyncpg.Pool, who: Caller, client_id: str) -> None:
    """Revoke a client: it authenticates no more and its tokens are refused everywhere."""
    if client_id == who.client_id:
        raise Forbidden("a client cannot revoke itself; use another client or the console")
    async with pool.acquire() as conn:
        client = await repo.client_with_account(conn, client_id)
    if client is None or client["account_id"] != who.account_id:
        raise NotFound(f"no client {client_id[:100]!r} in this account", code="ClientNotFound")
    try:
        await services.set_client_disabled(pool, client_id, True)
    except AdminError as exc:
        raise NotFound(str(exc), code="ClientNotFound") from None
