"""The auth service's use-cases: accounts and clients, token grants, introspection, revocation.

Each use-case owns its transaction. OAuth failures are raised as `domain.errors.OAuthError`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from joserfc import jwt

from services.auth.adapters import repository as repo
from services.auth.domain import errors, ratelimit
from services.auth.domain.credentials import (
    ClientCredentials,
    hash_api_key,
    hash_secret,
    new_api_key,
    new_client_id,
    new_client_secret,
    new_refresh_token,
    secret_matches,
    validate_account_code,
)
from services.auth.domain.tokens import (
    FAMILY_CLAIM,
    Grantee,
    IssuedTokens,
    access_claims,
    access_header,
    lifetime_end,
)
from services.auth.keys import KeyStore
from services.auth.settings import AuthSettings
from shared.logging import get_logger
from shared.messages import AccountCreated, ApiKeyCreated, ApiKeyRevoked, make_envelope
from shared.outbox import enqueue
from shared.tokens import token_kid, verify_with_keys

log = get_logger(__name__)

GRANT_TYPES = ("client_credentials", "refresh_token")


class AdminError(Exception):
    """An admin command that cannot be done as asked; the message says why."""


def _now() -> datetime:
    # Whole seconds: JWT times are whole seconds and `.issued`/`.expires` show no fraction.
    return datetime.now(UTC).replace(microsecond=0)


# --- accounts, clients, API keys (the admin CLI) ------------------------------------------------


async def _account(conn: asyncpg.Connection, code: str) -> asyncpg.Record:
    account = await repo.account_by_code(conn, code)
    if account is None:
        raise AdminError(f"no account with code {code!r}")
    return account


async def _new_client(
    conn: asyncpg.Connection, account_id: uuid.UUID, account_code: str, grant_types: Sequence[str]
) -> dict[str, str]:
    unknown = sorted(set(grant_types) - set(GRANT_TYPES))
    if unknown or not grant_types:
        raise AdminError(f"grant types must be among {', '.join(GRANT_TYPES)}; got {', '.join(grant_types) or 'none'}")
    client_id, secret = new_client_id(account_code), new_client_secret()
    await repo.insert_client(conn, client_id, account_id, hash_secret(secret), grant_types)
    return {"clientId": client_id, "clientSecret": secret}


async def create_account(pool: asyncpg.Pool, code: str, name: str) -> dict[str, Any]:
    """The account, its first OAuth client, and `account.created` in the outbox, all in one commit."""
    try:
        validate_account_code(code)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    if not name.strip():
        raise AdminError("the account name must not be empty")
    account_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        try:
            await repo.insert_account(conn, account_id, code, name)
        except asyncpg.UniqueViolationError:
            raise AdminError(f"an account with code {code!r} already exists") from None
        client = await _new_client(conn, account_id, code, GRANT_TYPES)
        event = AccountCreated(account_id=account_id, account_code=code, name=name)
        await enqueue(conn, repo.SCHEMA, [make_envelope("account.created", event, account_id=account_id)])
    log.info("account.created", account=code, client_id=client["clientId"])
    return {"accountId": str(account_id), "accountCode": code, "name": name, **client}


async def create_client(pool: asyncpg.Pool, code: str, grant_types: Sequence[str] = GRANT_TYPES) -> dict[str, str]:
    async with pool.acquire() as conn, conn.transaction():
        account = await _account(conn, code)
        client = await _new_client(conn, account["id"], code, grant_types)
    log.info("client.created", account=code, client_id=client["clientId"])
    return client


async def set_client_disabled(pool: asyncpg.Pool, client_id: str, disabled: bool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        if not await repo.set_client_disabled(conn, client_id, disabled):
            raise AdminError(f"no client with id {client_id!r}")
    log.info("client.disabled" if disabled else "client.enabled", client_id=client_id)
    return {"clientId": client_id, "disabled": disabled}


async def set_account_disabled(pool: asyncpg.Pool, code: str, disabled: bool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        if not await repo.set_account_disabled(conn, code, disabled):
            raise AdminError(f"no account with code {code!r}")
    log.info("account.disabled" if disabled else "account.enabled", account=code)
    return {"accountCode": code, "disabled": disabled}


async def create_api_key(pool: asyncpg.Pool, code: str) -> dict[str, str]:
    """A new API key; `api_key.created` (with the key's hash only) goes out through the outbox."""
    api_key = new_api_key()
    key_hash = hash_api_key(api_key)
    async with pool.acquire() as conn, conn.transaction():
        account = await _account(conn, code)
        key_id = uuid.uuid4()
        row = await repo.insert_api_key(conn, key_id, account["id"], key_hash)
        event = ApiKeyCreated(
            key_id=key_id, account_id=account["id"], account_code=code, key_hash=key_hash, created_at=row["created_at"]
        )
        await enqueue(conn, repo.SCHEMA, [make_envelope("api_key.created", event, account_id=account["id"])])
    log.info("api_key.created", account=code, key_id=str(key_id))
    return {"apiKey": api_key}


async def revoke_api_key(pool: asyncpg.Pool, api_key: str) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.revoke_api_key(conn, hash_api_key(api_key))
        if row is None:
            raise AdminError("no active API key matches")
        event = ApiKeyRevoked(
            key_id=row["id"],
            account_id=row["account_id"],
            account_code=row["account_code"],
            key_hash=row["key_hash"],
            revoked_at=row["revoked_at"],
        )
        await enqueue(conn, repo.SCHEMA, [make_envelope("api_key.revoked", event, account_id=row["account_id"])])
    log.info("api_key.revoked", account=row["account_code"], key_id=str(row["id"]))
    return {"keyId": str(row["id"]), "revoked": True}


# --- client authentication ----------------------------------------------------------------------


@dataclass(frozen=True)
class FailureLimits:
    per_client: int
    per_address: int
    window: int

    @classmethod
    def of(cls, settings: AuthSettings) -> FailureLimits:
        return cls(settings.failures_per_client, settings.failures_per_address, settings.failure_window)


async def _check_limits(conn: asyncpg.Connection, limits: FailureLimits, client_id: str | None, address: str) -> None:
    buckets = {ratelimit.address_bucket(address): limits.per_address}
    if client_id:
        buckets[ratelimit.client_bucket(client_id)] = limits.per_client
    windows = await repo.failure_windows(conn, list(buckets))
    now = datetime.now(UTC)
    waits = [ratelimit.retry_after(windows.get(b), now, limits.window, limit) for b, limit in buckets.items()]
    longest = max((w for w in waits if w is not None), default=None)
    if longest is not None:
        log.warning("client_auth.rate_limited", client_id=client_id, address=address, retry_after=longest)
        raise errors.too_many_failures(longest)


async def record_failure(pool: asyncpg.Pool, limits: FailureLimits, client_id: str | None, address: str) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await repo.record_failure(conn, ratelimit.address_bucket(address), now, limits.window)
        if client_id:
            await repo.record_failure(conn, ratelimit.client_bucket(client_id), now, limits.window)


async def authenticate(
    pool: asyncpg.Pool, limits: FailureLimits, credentials: ClientCredentials, address: str
) -> tuple[Grantee, list[str]]:
    """The client behind `credentials` and its allowed grant types, or invalid_client / 429."""
    async with pool.acquire() as conn:
        await _check_limits(conn, limits, credentials.client_id, address)
        client = await repo.client_with_account(conn, credentials.client_id)
    # The hash is compared even for an unknown client so both paths take the same time.
    stored = client["secret_hash"] if client is not None else hash_secret("\x00unknown client")
    if not secret_matches(credentials.client_secret, stored) or client is None:
        await record_failure(pool, limits, credentials.client_id, address)
        log.info("client_auth.failed", client_id=credentials.client_id[:100], address=address)
        raise errors.invalid_client("client authentication failed: unknown client or wrong secret")
    if client["client_disabled"]:
        raise errors.invalid_client("this client is disabled")
    if client["account_disabled"]:
        raise errors.unauthorized_client("the client's account is disabled")
    grantee = Grantee(client["client_id"], client["account_id"], client["account_code"])
    return grantee, list(client["grant_types"])


# --- token grants -------------------------------------------------------------------------------


class TokenService:
    """Issues, refreshes, introspects and revokes tokens with the keys of one KeyStore."""

    def __init__(self, pool: asyncpg.Pool, settings: AuthSettings, keys: KeyStore) -> None:
        self._pool = pool
        self._settings = settings
        self._keys = keys

    async def _access_token(self, grantee: Grantee, family_id: uuid.UUID, issued_at: datetime) -> str:
        signer = await self._keys.signer()
        claims = access_claims(
            grantee,
            issuer=self._settings.issuer,
            issued_at=issued_at,
            ttl=self._settings.access_token_ttl,
            jti=uuid.uuid4(),
            family_id=family_id,
        )
        return jwt.encode(access_header(signer.kid), claims, signer.key)

    def _issued(self, grantee: Grantee, access: str, refresh: str | None, issued_at: datetime) -> IssuedTokens:
        return IssuedTokens(
            access_token=access,
            refresh_token=refresh,
            client_id=grantee.client_id,
            issued_at=issued_at,
            expires_at=lifetime_end(issued_at, self._settings.access_token_ttl),
        )

    async def client_credentials(self, grantee: Grantee, grant_types: Sequence[str]) -> IssuedTokens:
        """A new family: an access token and, when the client may refresh, its first refresh token."""
        if "client_credentials" not in grant_types:
            raise errors.unauthorized_client("this client may not use the client_credentials grant")
        issued_at = _now()
        family_id = uuid.uuid4()
        refresh = new_refresh_token() if "refresh_token" in grant_types else None
        access = await self._access_token(grantee, family_id, issued_at)
        expires = lifetime_end(issued_at, self._settings.refresh_token_ttl)
        async with self._pool.acquire() as conn, conn.transaction():
            # Not waiting for the WAL flush here roughly doubles grant throughput. A database crash
            # in the next few hundred milliseconds can lose this new grant's refresh token, and the
            # client then simply asks again with its credentials; it cannot make anything revoked
            # valid. Refreshes and revocations keep the default, durable commit.
            await repo.asynchronous_commit(conn)
            await repo.insert_family_with_refresh(
                conn,
                family_id,
                grantee.client_id,
                grantee.account_id,
                hash_secret(refresh) if refresh is not None else None,
                issued_at,
                expires,
            )
        return self._issued(grantee, access, refresh, issued_at)

    async def refresh(self, grantee: Grantee, grant_types: Sequence[str], refresh_token: str) -> IssuedTokens:
        """Spend a refresh token once for the next pair; a spent one presented again revokes the family
        (RFC 9700 section 4.14.2: the two presenters cannot both be the legitimate client)."""
        if "refresh_token" not in grant_types:
            raise errors.unauthorized_client("this client may not use the refresh_token grant")
        token_hash = hash_secret(refresh_token)
        issued_at = _now()
        theft: uuid.UUID | None = None
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                row = await repo.refresh_token(conn, token_hash, for_update=True)
                if row is None or row["client_id"] != grantee.client_id:
                    raise errors.invalid_grant("the refresh token is unknown, or was issued to another client")
                if row["family_revoked_at"] is not None:
                    raise errors.invalid_grant("the refresh token has been revoked")
                if row["used_at"] is not None:
                    await repo.revoke_family(conn, row["family_id"], "refresh token reused")
                    theft = row["family_id"]
                elif row["expires_at"] <= issued_at:
                    raise errors.invalid_grant("the refresh token has expired")
                else:
                    await repo.mark_refresh_used(conn, token_hash, issued_at)
                    refresh = new_refresh_token()
                    expires = lifetime_end(issued_at, self._settings.refresh_token_ttl)
                    await repo.insert_refresh_token(conn, hash_secret(refresh), row["family_id"], issued_at, expires)
                    family_id = row["family_id"]
        if theft is not None:
            log.warning("refresh_token.reused", client_id=grantee.client_id, family_id=str(theft))
            raise errors.invalid_grant("the refresh token was already used; every token of its grant is now revoked")
        access = await self._access_token(grantee, family_id, issued_at)
        return self._issued(grantee, access, refresh, issued_at)

    # --- introspection and revocation (RFC 7662, RFC 7009) --------------------------------------

    async def _verified_access(self, token: str) -> dict[str, Any] | None:
        """The claims of one of our unexpired access tokens, or None."""
        if token.count(".") != 2:
            return None
        try:
            keys = await self._keys.verification_keys(token_kid(token))
            verify_with_keys(token, keys, self._settings.issuer, leeway=0)
            claims: dict[str, Any] = dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)
        except Exception:  # InvalidToken, or any malformed token: simply not one of ours
            return None
        return claims

    async def introspect(self, grantee: Grantee, token: str, hint: str | None) -> dict[str, Any]:
        inactive: dict[str, Any] = {"active": False}
        if hint != "refresh_token":
            claims = await self._verified_access(token)
            if claims is not None:
                return await self._introspect_access(grantee, claims)
        async with self._pool.acquire() as conn:
            row = await repo.refresh_token(conn, hash_secret(token))
        if row is not None:
            active = (
                row["client_id"] == grantee.client_id
                and row["used_at"] is None
                and row["family_revoked_at"] is None
                and row["expires_at"] > datetime.now(UTC)
                and not row["account_disabled"]
                and not row["client_disabled"]
            )
            if not active:
                return inactive
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": row["client_id"],
                "sub": row["client_id"],
                "iss": self._settings.issuer,
                "iat": int(row["issued_at"].timestamp()),
                "exp": int(row["expires_at"].timestamp()),
                "account_id": str(row["account_id"]),
                "account_code": row["account_code"],
            }
        if hint == "refresh_token":
            claims = await self._verified_access(token)
            if claims is not None:
                return await self._introspect_access(grantee, claims)
        return inactive

    async def _introspect_access(self, grantee: Grantee, claims: dict[str, Any]) -> dict[str, Any]:
        if claims.get("client_id") != grantee.client_id:
            return {"active": False}
        try:
            jti = uuid.UUID(str(claims["jti"]))
            family = uuid.UUID(str(claims[FAMILY_CLAIM])) if FAMILY_CLAIM in claims else None
            account_id = uuid.UUID(str(claims["account_id"]))
        except (KeyError, ValueError):
            return {"active": False}
        async with self._pool.acquire() as conn:
            revoked = await repo.access_token_revoked(conn, jti, family)
            live = await repo.account_active(conn, account_id, grantee.client_id)
        if revoked or not live:
            return {"active": False}
        body: dict[str, Any] = {"active": True, "token_type": "Bearer"}
        for name in ("iss", "aud", "sub", "exp", "iat", "jti", "client_id", "account_id", "account_code"):
            if name in claims:
                body[name] = claims[name]
        return body

    async def revoke(self, grantee: Grantee, token: str, hint: str | None) -> None:
        """Revoke a refresh token's family or record an access token's jti. Tokens that are unknown,
        expired or another client's are ignored: RFC 7009 answers 200 either way."""
        async with self._pool.acquire() as conn:
            row = await repo.refresh_token(conn, hash_secret(token))
            if row is not None:
                if row["client_id"] == grantee.client_id:
                    await repo.revoke_family(conn, row["family_id"], "revoked by client")
                    log.info("refresh_token.revoked", client_id=grantee.client_id, family_id=str(row["family_id"]))
                return
        claims = await self._verified_access(token)
        if claims is None or claims.get("client_id") != grantee.client_id:
            return
        try:
            jti = uuid.UUID(str(claims["jti"]))
        except (KeyError, ValueError):
            return
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC) + timedelta(seconds=60)
        async with self._pool.acquire() as conn:
            await repo.revoke_access_token(conn, jti, expires)
        log.info("access_token.revoked", client_id=grantee.client_id, jti=str(jti))
