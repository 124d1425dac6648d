"""The auth service's use-cases: accounts and clients, token grants, introspection, revocation.

Each use-case owns its transaction. OAuth failures are raised as `domain.errors.OAuthError`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from joserfc import jwt

from services.auth import revocations
from services.auth.adapters import repository as repo
from services.auth.authentication import FailureLimits as FailureLimits
from services.auth.authentication import admit, authenticate_on
from services.auth.authentication import authenticate as authenticate
from services.auth.domain import errors
from services.auth.domain.credentials import (
    ClientCredentials,
    hash_secret,
    new_api_key,
    new_client_id,
    new_client_secret,
    new_refresh_token,
    validate_account_code,
)
from services.auth.domain.tokens import (
    FAMILY_CLAIM,
    Grantee,
    IssuedTokens,
    access_claims,
    lifetime_end,
)
from services.auth.keys import KeyStore
from services.auth.settings import AuthSettings
from shared.api_keys import api_key_hash
from shared.grouping import on_pool
from shared.logging import get_logger
from shared.messages import AccountCreated, ApiKeyCreated, ApiKeyRevoked, make_envelope
from shared.outbox import enqueue
from shared.tokens import ALGORITHMS, token_kid, verify_with_keys
from shared.tokens import SCOPES as TOKEN_SCOPES

log = get_logger(__name__)

GRANT_TYPES = ("client_credentials", "refresh_token")
SCOPES = tuple(sorted(TOKEN_SCOPES))


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
    conn: asyncpg.Connection,
    account_id: uuid.UUID,
    account_code: str,
    grant_types: Sequence[str],
    scopes: Sequence[str] = (),
) -> dict[str, str]:
    unknown = sorted(set(grant_types) - set(GRANT_TYPES))
    if unknown or not grant_types:
        raise AdminError(f"grant types must be among {', '.join(GRANT_TYPES)}; got {', '.join(grant_types) or 'none'}")
    unknown_scopes = sorted(set(scopes) - set(SCOPES))
    if unknown_scopes:
        raise AdminError(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(unknown_scopes)}")
    client_id, secret = new_client_id(account_code), new_client_secret()
    await repo.insert_client(conn, client_id, account_id, hash_secret(secret), grant_types, sorted(set(scopes)))
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


async def create_client(
    pool: asyncpg.Pool, code: str, grant_types: Sequence[str] = GRANT_TYPES, scopes: Sequence[str] = ()
) -> dict[str, str]:
    async with pool.acquire() as conn, conn.transaction():
        account = await _account(conn, code)
        client = await _new_client(conn, account["id"], code, grant_types, scopes)
    log.info("client.created", account=code, client_id=client["clientId"], scopes=list(scopes))
    return client


async def set_client_disabled(pool: asyncpg.Pool, client_id: str, disabled: bool) -> dict[str, Any]:
    """Disable or enable a client; `client.disabled`/`client.enabled` goes out in the same commit."""
    async with pool.acquire() as conn, conn.transaction():
        client = await repo.set_client_disabled(conn, client_id, disabled)
        if client is None:
            raise AdminError(f"no client with id {client_id!r}")
        await revocations.client_state(conn, client, disabled)
    log.info("client.disabled" if disabled else "client.enabled", client_id=client_id)
    return {"clientId": client_id, "disabled": disabled}


async def set_account_disabled(pool: asyncpg.Pool, code: str, disabled: bool) -> dict[str, Any]:
    """Disable or enable an account (its tokens and API keys); the message goes out in the same commit."""
    async with pool.acquire() as conn, conn.transaction():
        account = await repo.set_account_disabled(conn, code, disabled)
        if account is None:
            raise AdminError(f"no account with code {code!r}")
        await revocations.account_state(conn, account, disabled)
    log.info("account.disabled" if disabled else "account.enabled", account=code)
    return {"accountCode": code, "disabled": disabled}


async def create_api_key(pool: asyncpg.Pool, code: str) -> dict[str, str]:
    """A new API key; `api_key.created` (with the key's hash only) goes out through the outbox."""
    api_key = new_api_key()
    key_hash = api_key_hash(api_key)
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
        row = await repo.revoke_api_key(conn, api_key_hash(api_key))
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


# --- token grants -------------------------------------------------------------------------------


class TokenService:
    """Issues, refreshes, introspects and revokes tokens with the keys of one KeyStore."""

    def __init__(self, pool: asyncpg.Pool, settings: AuthSettings, keys: KeyStore) -> None:
        self._pool = pool
        self._settings = settings
        self._keys = keys
        # Concurrent client_credentials grants share one statement (repo.grant_families).
        self._grants = on_pool(pool, repo.grant_families, name="auth-family-grants")

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
        return signer.sign(claims)

    async def sign_access_token(self, grantee: Grantee, family_id: uuid.UUID, issued_at: datetime) -> str:
        """An access token for `grantee` descending from `family_id` (a console login session's id)."""
        return await self._access_token(grantee, family_id, issued_at)

    def _issued(self, grantee: Grantee, access: str, refresh: str | None, issued_at: datetime) -> IssuedTokens:
        return IssuedTokens(
            access_token=access,
            refresh_token=refresh,
            client_id=grantee.client_id,
            issued_at=issued_at,
            expires_at=lifetime_end(issued_at, self._settings.access_token_ttl),
        )

    async def grant(
        self,
        limits: FailureLimits,
        credentials: ClientCredentials,
        address: str,
        grant_type: str,
        refresh_token: str | None = None,
    ) -> tuple[Grantee, IssuedTokens]:
        """The token endpoint's use-case: authenticate the client and grant."""
        if grant_type == "client_credentials":
            return await self._client_credentials_grant(limits, credentials, address)
        async with self._pool.acquire() as conn:
            grantee, grant_types = await authenticate_on(conn, limits, credentials, address)
            if not refresh_token:
                raise errors.invalid_request("refresh_token is required with grant_type=refresh_token")
            return grantee, await self._refresh(conn, grantee, grant_types, refresh_token)

    async def _client_credentials_grant(
        self, limits: FailureLimits, credentials: ClientCredentials, address: str
    ) -> tuple[Grantee, IssuedTokens]:
        """Authenticate and write the new family in one statement shared with concurrent grants
        (grouped, `repo.grant_families`), then sign. No connection is held for the checks: one is taken from the pool
        only to count a failed authentication."""
        issued_at = _now()
        family_id = uuid.uuid4()
        # Made before we know whether the client may refresh; written and returned only if it may.
        refresh = new_refresh_token()
        asked = repo.AskedGrant(
            client_id=credentials.client_id,
            secret_hash=hash_secret(credentials.client_secret),
            family_id=family_id,
            refresh_hash=hash_secret(refresh),
            issued_at=issued_at,
            refresh_expires_at=lifetime_end(issued_at, self._settings.refresh_token_ttl),
        )
        row = await self._grants(asked)
        grantee, grant_types = await admit(self._pool, limits, credentials, address, row)
        if "client_credentials" not in grant_types:
            raise errors.unauthorized_client("this client may not use the client_credentials grant")
        if row is None or not row["granted"]:  # admit() checked what the statement's WHERE checks
            raise RuntimeError(f"grant for {grantee.client_id} passed every check but was not written")
        access = await self._access_token(grantee, family_id, issued_at)
        kept = refresh if "refresh_token" in grant_types else None
        return grantee, self._issued(grantee, access, kept, issued_at)

    async def refresh(self, grantee: Grantee, grant_types: Sequence[str], refresh_token: str) -> IssuedTokens:
        """Spend a refresh token once for the next pair; a spent one presented again revokes the family
        (RFC 9700 section 4.14.2: the two presenters cannot both be the legitimate client)."""
        async with self._pool.acquire() as conn:
            return await self._refresh(conn, grantee, grant_types, refresh_token)

    async def _refresh(
        self, conn: asyncpg.Connection, grantee: Grantee, grant_types: Sequence[str], refresh_token: str
    ) -> IssuedTokens:
        if "refresh_token" not in grant_types:
            raise errors.unauthorized_client("this client may not use the refresh_token grant")
        token_hash = hash_secret(refresh_token)
        issued_at = _now()
        theft: uuid.UUID | None = None
        async with conn.transaction():
            row = await repo.refresh_token(conn, token_hash, for_update=True)
            if row is None or row["client_id"] != grantee.client_id:
                raise errors.invalid_grant("the refresh token is unknown, or was issued to another client")
            if row["family_revoked_at"] is not None:
                raise errors.invalid_grant("the refresh token has been revoked")
            if row["used_at"] is not None:
                family = await repo.revoke_family(conn, row["family_id"], "refresh token reused")
                if family is not None:
                    ttl = self._settings.access_token_ttl
                    await revocations.family_revoked(conn, family, "refresh token reused", ttl)
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

    async def verified_access(self, token: str) -> dict[str, Any] | None:
        """The claims of one of our unexpired access tokens (signature, issuer, audience), or None."""
        return await self._verified_access(token)

    async def _verified_access(self, token: str) -> dict[str, Any] | None:
        """The claims of one of our unexpired access tokens, or None."""
        if token.count(".") != 2:
            return None
        try:
            keys = await self._keys.verification_keys(token_kid(token))
            verify_with_keys(token, keys, self._settings.issuer, leeway=0)
            claims: dict[str, Any] = dict(jwt.decode(token, keys, algorithms=ALGORITHMS).claims)
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
        for name in ("iss", "aud", "sub", "exp", "iat", "jti", "client_id", "account_id", "account_code", "scope"):
            if name in claims:
                body[name] = claims[name]
        return body

    async def revoke(self, grantee: Grantee, token: str, hint: str | None) -> None:
        """Revoke a refresh token's family or record an access token's jti. Tokens that are unknown,
        expired or another client's are ignored: RFC 7009 answers 200 either way."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await repo.refresh_token(conn, hash_secret(token))
            if row is not None:
                if row["client_id"] == grantee.client_id:
                    family = await repo.revoke_family(conn, row["family_id"], "revoked by client")
                    if family is not None:
                        ttl = self._settings.access_token_ttl
                        await revocations.family_revoked(conn, family, "revoked by client", ttl)
                    log.info("refresh_token.revoked", client_id=grantee.client_id, family_id=str(row["family_id"]))
                return
        claims = await self._verified_access(token)
        if claims is None or claims.get("client_id") != grantee.client_id:
            return
        try:
            jti = uuid.UUID(str(claims["jti"]))
        except (KeyError, ValueError):
            return
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        async with self._pool.acquire() as conn, conn.transaction():
            await repo.revoke_access_token(
                conn, jti, expires + revocations.MARGIN, grantee.client_id, grantee.account_id
            )
            await revocations.token_revoked(
                conn,
                jti=str(claims["jti"]),
                client_id=grantee.client_id,
                account_id=grantee.account_id,
                expires_at=expires,
            )
        log.info("access_token.revoked", client_id=grantee.client_id, jti=str(jti))
