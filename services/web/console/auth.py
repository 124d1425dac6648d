"""Console sessions' use-cases: log in through auth, keep the session's tokens fresh, log out.

The session row holds the user's access token (short-lived) and refresh token, both encrypted. A page
whose access token is about to expire refreshes it first, holding the row's lock so two requests of
one browser never spend the same refresh token (auth would end the session: a reused refresh token
means theft).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.web.console import sessions
from services.web.console.apis import ApiProblem, Apis
from shared.crypto import SecretBox
from shared.logging import get_logger

log = get_logger(__name__)

# Refresh when the access token has less than this left, so no API call carries an expiring one.
REFRESH_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True)
class ConsoleSession:
    session_id: str
    user_id: uuid.UUID
    email: str
    account_code: str
    access_token: str
    csrf_token: str


def _now() -> datetime:
    return datetime.now(UTC)


def _expiries(answer: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    return now + timedelta(seconds=int(answer["expiresIn"])), now + timedelta(seconds=int(answer["refreshExpiresIn"]))


async def login(
    pool: asyncpg.Pool, apis: Apis, box: SecretBox, email: str, password: str, address: str
) -> ConsoleSession:
    """A new session from auth's answer to the credentials, or ApiProblem (401, 429 lockout, ...)."""
    now = _now()
    answer = await apis.call(
        "POST",
        "auth",
        "/v1/users/login",
        body={"email": email, "password": password},
        headers={"X-Forwarded-For": address},
    )
    access_expires, expires = _expiries(answer, now)
    session = ConsoleSession(
        session_id=secrets.token_urlsafe(32),
        user_id=uuid.UUID(answer["userId"]),
        email=answer["email"],
        account_code=answer["accountCode"],
        access_token=answer["accessToken"],
        csrf_token=secrets.token_urlsafe(32),
    )
    async with pool.acquire() as conn:
        await sessions.insert(
            conn,
            session.session_id,
            user_id=session.user_id,
            email=session.email,
            account_code=session.account_code,
            access_token=box.encrypt(session.access_token),
            access_expires_at=access_expires,
            refresh_token=box.encrypt(answer["refreshToken"]),
            csrf_token=session.csrf_token,
            expires_at=expires,
        )
    log.info("console.login", account=session.account_code, user_id=str(session.user_id))
    return session


def _session(session_id: str, row: asyncpg.Record, box: SecretBox) -> ConsoleSession:
    return ConsoleSession(
        session_id=session_id,
        user_id=row["user_id"],
        email=row["email"],
        account_code=row["account_code"],
        access_token=box.decrypt(row["access_token"]),
        csrf_token=row["csrf_token"],
    )


async def load(pool: asyncpg.Pool, apis: Apis, box: SecretBox, session_id: str) -> ConsoleSession | None:
    """The live session of the cookie, its access token refreshed when needed; None when it has ended."""
    now = _now()
    async with pool.acquire() as conn:
        row = await sessions.find(conn, session_id)
        if row is None:
            return None
        if row["expires_at"] <= now:
            await sessions.delete(conn, session_id)
            return None
        if row["access_expires_at"] - REFRESH_MARGIN > now:
            return _session(session_id, row, box)
        async with conn.transaction():
            row = await sessions.find(conn, session_id, for_update=True)
            if row is None:
                return None
            if row["access_expires_at"] - REFRESH_MARGIN > now:  # another request refreshed it meanwhile
                return _session(session_id, row, box)
            try:
                answer = await apis.call(
                    "POST", "auth", "/v1/users/refresh", body={"refreshToken": box.decrypt(row["refresh_token"])}
                )
            except ApiProblem as problem:
                if problem.status >= 500:
                    raise
                await sessions.delete(conn, session_id)
                log.info("console.session_ended", reason=str(problem))
                return None
            access_expires, expires = _expiries(answer, now)
            await sessions.update_tokens(
                conn,
                session_id,
                box.encrypt(answer["accessToken"]),
                access_expires,
                box.encrypt(answer["refreshToken"]),
                expires,
            )
            return ConsoleSession(
                session_id=session_id,
                user_id=row["user_id"],
                email=row["email"],
                account_code=row["account_code"],
                access_token=answer["accessToken"],
                csrf_token=row["csrf_token"],
            )


async def logout(pool: asyncpg.Pool, apis: Apis, box: SecretBox, session_id: str) -> None:
    """Forget the session here and end it at auth (its access tokens are revoked everywhere)."""
    async with pool.acquire() as conn:
        row = await sessions.delete(conn, session_id)
    if row is not None:
        try:
            await apis.call(
                "POST", "auth", "/v1/users/logout", body={"refreshToken": box.decrypt(row["refresh_token"])}
            )
        except ApiProblem as problem:  # the session is gone here either way; its tokens expire soon
            log.warning("console.logout_not_announced", reason=str(problem))


async def notice(pool: asyncpg.Pool, session_id: str, text: str | None = None) -> str | None:
    """Leave `text` for the next page (when given), or take the one left (once)."""
    async with pool.acquire() as conn:
        if text is not None:
            await sessions.set_notice(conn, session_id, text)
            return None
        return await sessions.take_notice(conn, session_id)
