"""Console users' use-cases: creation with a one-time link, setting the password, login, refresh, logout.

A console user belongs to one account. Logging in answers an access token for that account, signed
by the same keys as every client's (so every service accepts it as it accepts a client's), whose
`sub` and `client_id` are `user:<id>` and whose `sid` is the login session: logging out revokes the
session and announces it as a revoked token family, so its access tokens stop working everywhere.
Each use-case owns its transaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.auth import revocations
from services.auth.adapters import repository as repo
from services.auth.adapters import users as users_repo
from services.auth.domain import ratelimit
from services.auth.domain import users as rules
from services.auth.domain.credentials import new_refresh_token
from services.auth.domain.tokens import Grantee
from services.auth.services import AdminError, TokenService
from services.auth.settings import AuthSettings
from shared.errors import ApiError, Forbidden, InvalidRequest, TooManyRequests, Unauthorized
from shared.logging import get_logger

log = get_logger(__name__)

SET_PASSWORD_PATH = "/console/set-password/"


class InvalidPasswordLink(ApiError):
    status = 400
    code = "InvalidPasswordLink"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def limits_of(settings: AuthSettings) -> rules.LoginLimits:
    return rules.LoginLimits(
        settings.login_failures_per_email, settings.login_failures_per_address, settings.login_lockout
    )


# --- creation (the admin CLI) -------------------------------------------------------------------


async def _issue_link(conn: asyncpg.Connection, settings: AuthSettings, user_id: uuid.UUID) -> str:
    token = rules.new_one_time_token()
    expires = _now() + timedelta(seconds=settings.password_link_ttl)
    await users_repo.insert_password_token(conn, rules.hash_token(token), user_id, expires)
    return settings.public_web_url + SET_PASSWORD_PATH + token


async def create_user(pool: asyncpg.Pool, settings: AuthSettings, code: str, email: str) -> dict[str, Any]:
    """A user of account `code` without a password, and the one-time link that sets it."""
    try:
        address = rules.normalize_email(email)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    user_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        account = await repo.account_by_code(conn, code)
        if account is None:
            raise AdminError(f"no account with code {code!r}")
        try:
            await users_repo.insert_user(conn, user_id, account["id"], address)
        except asyncpg.UniqueViolationError:
            raise AdminError(
                f"a console user with email {address!r} already exists (password-link EMAIL issues a new link)"
            ) from None
        url = await _issue_link(conn, settings, user_id)
    log.info("user.created", account=code, user_id=str(user_id))
    return {"userId": str(user_id), "email": address, "setPasswordUrl": url}


async def password_link(pool: asyncpg.Pool, settings: AuthSettings, email: str) -> dict[str, Any]:
    """A new one-time link for an existing user (forgotten password); older links stop working."""
    async with pool.acquire() as conn, conn.transaction():
        user = await users_repo.user_by_email(conn, email.strip())
        if user is None:
            raise AdminError(f"no console user with email {email.strip()!r}")
        url = await _issue_link(conn, settings, user["id"])
    log.info("user.password_link", user_id=str(user["id"]))
    return {"userId": str(user["id"]), "email": user["email"], "setPasswordUrl": url}


# --- the one-time link --------------------------------------------------------------------------


async def set_password(pool: asyncpg.Pool, token: str, password: str) -> dict[str, Any]:
    """Spend the link once and store the password's argon2id hash."""
    now = _now()
    async with pool.acquire() as conn, conn.transaction():
        row = await users_repo.password_token_for_update(conn, rules.hash_token(token))
        if row is None:
            raise InvalidPasswordLink("this password link is not valid; ask an administrator for a new one")
        if row["used_at"] is not None:
            raise InvalidPasswordLink("this password link was already used; ask an administrator for a new one")
        if row["expires_at"] <= now:
            raise InvalidPasswordLink("this password link has expired; ask an administrator for a new one")
        try:
            rules.check_password(password, row["email"])
        except rules.UnacceptablePassword as exc:
            raise InvalidRequest(str(exc)) from None
        await users_repo.set_password(conn, row["id"], rules.hash_password(password), now)
    log.info("user.password_set", user_id=str(row["id"]), account=row["account_code"])
    return {"userId": str(row["id"]), "email": row["email"], "accountCode": row["account_code"]}


# --- login, refresh, logout ---------------------------------------------------------------------


def _locked(wait: int) -> TooManyRequests:
    minutes = max(1, round(wait / 60))
    return TooManyRequests(
        f"too many failed logins; this login is locked for about {minutes} minute{'s' if minutes > 1 else ''}",
        code="LoginLocked",
        headers={"Retry-After": str(wait)},
    )


async def _lockout(
    conn: asyncpg.Connection, limits: rules.LoginLimits, buckets: dict[str, int], now: datetime
) -> int | None:
    waits = []
    for bucket, limit in buckets.items():
        window = await users_repo.failure_window(conn, bucket)
        waits.append(ratelimit.retry_after(window, now, limits.window, limit))
    return max((w for w in waits if w is not None), default=None)


async def _record_failure(
    conn: asyncpg.Connection, limits: rules.LoginLimits, buckets: dict[str, int], now: datetime
) -> int | None:
    waits = []
    for bucket, limit in buckets.items():
        window = await repo.record_failure(conn, bucket, now, limits.window)
        waits.append(ratelimit.retry_after(window, now, limits.window, limit))
    return max((w for w in waits if w is not None), default=None)


def _grantee(user: asyncpg.Record) -> Grantee:
    return Grantee(f"user:{user['id']}", user["account_id"], user["account_code"])


async def _session_body(
    tokens: TokenService,
    settings: AuthSettings,
    user: asyncpg.Record,
    session_id: uuid.UUID,
    refresh: str,
    now: datetime,
) -> dict[str, Any]:
    access = await tokens.sign_access_token(_grantee(user), session_id, now)
    return {
        "accessToken": access,
        "tokenType": "bearer",
        "expiresIn": settings.access_token_ttl,
        "refreshToken": refresh,
        "refreshExpiresIn": settings.refresh_token_ttl,
        "userId": str(user["id"]),
        "email": user["email"],
        "accountId": str(user["account_id"]),
        "accountCode": user["account_code"],
    }


async def login(
    pool: asyncpg.Pool, tokens: TokenService, settings: AuthSettings, email: str, password: str, address: str
) -> dict[str, Any]:
    """Email and password to a session: an access token for the user's account and a refresh token.

    Past the failure limit of the email or of the address, every attempt is refused with 429 until
    the window ends, the right password included; a wrong password is a 401 that does not say
    whether the email exists.
    """
    limits = limits_of(settings)
    try:
        normalized = rules.normalize_email(email)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if not password:
        raise InvalidRequest("password is required")
    if len(password) > rules.MAX_PASSWORD:
        raise Unauthorized("the email or the password is wrong", code="InvalidCredentials")
    buckets = {
        rules.email_bucket(normalized): limits.per_email,
        rules.login_address_bucket(address): limits.per_address,
    }
    now = _now()
    async with pool.acquire() as conn:
        wait = await _lockout(conn, limits, buckets, now)
        if wait is not None:
            log.info("user_login.locked", address=address)
            raise _locked(wait)
        user = await users_repo.user_by_email(conn, normalized)
        stored = user["password_hash"] if user is not None else None
        if not rules.password_matches(password, stored) or user is None:
            wait = await _record_failure(conn, limits, buckets, now)
            log.info("user_login.failed", address=address, limited=wait is not None)
            if wait is not None:
                raise _locked(wait)
            raise Unauthorized("the email or the password is wrong", code="InvalidCredentials")
        if user["disabled"]:
            raise Forbidden("this console user is disabled", code="UserDisabled")
        if user["account_disabled"]:
            raise Forbidden("this user's account is disabled", code="AccountDisabled")
        session_id, refresh = uuid.uuid4(), new_refresh_token()
        expires = now + timedelta(seconds=settings.refresh_token_ttl)
        async with conn.transaction():
            await users_repo.clear_failures(conn, rules.email_bucket(normalized))
            await users_repo.insert_session(conn, session_id, user["id"], rules.hash_token(refresh), now, expires)
            if rules.needs_rehash(stored or ""):
                await users_repo.update_password_hash(conn, user["id"], rules.hash_password(password))
    log.info("user_login.succeeded", user_id=str(user["id"]), account=user["account_code"])
    return await _session_body(tokens, settings, user, session_id, refresh, now)


async def _revoke(conn: asyncpg.Connection, settings: AuthSettings, session_id: uuid.UUID, reason: str) -> None:
    family = await users_repo.revoke_session(conn, session_id, reason)
    if family is not None:
        await revocations.family_revoked(conn, family, reason, settings.access_token_ttl)


async def refresh(
    pool: asyncpg.Pool, tokens: TokenService, settings: AuthSettings, refresh_token: str
) -> dict[str, Any]:
    """Spend a refresh token once for a new pair; a spent one presented again ends the session."""
    now = _now()
    token_hash = rules.hash_token(refresh_token)
    reused = False
    async with pool.acquire() as conn, conn.transaction():
        row = await users_repo.refresh_token_for_update(conn, token_hash)
        if row is None or row["session_revoked_at"] is not None:
            raise Unauthorized("the session has ended; log in again", code="SessionEnded")
        if row["used_at"] is not None:
            await _revoke(conn, settings, row["session_id"], "refresh token reused")
            reused = True
        elif row["expires_at"] <= now:
            raise Unauthorized("the session has expired; log in again", code="SessionEnded")
        elif row["disabled"] or row["account_disabled"]:
            await _revoke(conn, settings, row["session_id"], "user or account disabled")
        else:
            await users_repo.mark_refresh_used(conn, token_hash, now)
            new_refresh = new_refresh_token()
            expires = now + timedelta(seconds=settings.refresh_token_ttl)
            await users_repo.insert_refresh_token(conn, rules.hash_token(new_refresh), row["session_id"], now, expires)
    if reused:
        log.warning("user_refresh.reused", user_id=str(row["id"]))
        raise Unauthorized("the refresh token was already used; the session has ended", code="SessionEnded")
    if row["disabled"] or row["account_disabled"]:
        raise Forbidden("this console user or its account is disabled", code="UserDisabled")
    return await _session_body(tokens, settings, row, row["session_id"], new_refresh, now)


async def logout(pool: asyncpg.Pool, settings: AuthSettings, refresh_token: str) -> None:
    """End the session of `refresh_token`; unknown or ended sessions are ignored (like RFC 7009)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await users_repo.refresh_token_for_update(conn, rules.hash_token(refresh_token))
        if row is not None:
            await _revoke(conn, settings, row["session_id"], "logged out")
            log.info("user.logged_out", user_id=str(row["id"]))
