"""Console users against PostgreSQL: one-time links, argon2 passwords, login, lockout, refresh, logout."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.auth import services, users
from services.auth.domain import users as rules
from services.auth.keys import KeyStore
from services.auth.services import AdminError, TokenService
from services.auth.settings import AuthSettings
from shared.errors import ApiError
from shared.messages import parse_envelope
from shared.testing import random_name
from shared.tokens import verify_with_keys

PASSWORD = "correct horse battery"


@pytest.fixture
def user_settings(settings: AuthSettings) -> AuthSettings:
    return dataclasses.replace(settings, public_web_url="https://web.test", login_failures_per_email=3)


async def new_user(pool: asyncpg.Pool, settings: AuthSettings, *, password: str | None = PASSWORD) -> dict[str, Any]:
    code = random_name("acct")
    await services.create_account(pool, code, "Console")
    created = await users.create_user(pool, settings, code, f"Ops.{uuid.uuid4().hex[:8]}@Example.com")
    created["accountCode"] = code
    if password is not None:
        await users.set_password(pool, token_of(created), password)
    return created


def token_of(created: dict[str, Any]) -> str:
    return str(created["setPasswordUrl"]).rsplit("/", 1)[1]


async def test_creating_a_user_stores_no_password_and_prints_a_link_to_the_web_console(
    pool: asyncpg.Pool, user_settings: AuthSettings
) -> None:
    created = await new_user(pool, user_settings, password=None)
    assert set(created) == {"userId", "email", "setPasswordUrl", "accountCode"}
    assert created["email"] == created["email"].lower()
    assert created["setPasswordUrl"].startswith("https://web.test/console/set-password/pt_")
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT password_hash FROM auth.users WHERE id = $1", uuid.UUID(created["userId"]))
        stored = await conn.fetchval(
            "SELECT count(*) FROM auth.password_tokens WHERE token_hash = $1", rules.hash_token(token_of(created))
        )
    assert row["password_hash"] is None and stored == 1


async def test_an_email_is_one_user_across_accounts_and_bad_input_is_a_clear_admin_error(
    pool: asyncpg.Pool, user_settings: AuthSettings
) -> None:
    created = await new_user(pool, user_settings, password=None)
    other = random_name("acct")
    await services.create_account(pool, other, "Other")
    with pytest.raises(AdminError, match="already exists"):
        await users.create_user(pool, user_settings, other, created["email"].upper())
    with pytest.raises(AdminError, match="not an email address"):
        await users.create_user(pool, user_settings, other, "not-an-email")
    with pytest.raises(AdminError, match="no account"):
        await users.create_user(pool, user_settings, "no-such-account", "a@b.example")


async def test_the_password_link_works_once_and_stores_an_argon2id_hash(
    pool: asyncpg.Pool, user_settings: AuthSettings
) -> None:
    created = await new_user(pool, user_settings, password=None)
    with pytest.raises(ApiError, match="at least 10 characters") as short:
        await users.set_password(pool, token_of(created), "short")
    assert short.value.status == 400
    answer = await users.set_password(pool, token_of(created), PASSWORD)
    assert answer == {"userId": created["userId"], "email": created["email"], "accountCode": created["accountCode"]}
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT password_hash FROM auth.users WHERE id = $1", uuid.UUID(created["userId"]))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(ApiError, match="already used") as again:
        await users.set_password(pool, token_of(created), "another long password")
    assert again.value.code == "InvalidPasswordLink"
    with pytest.raises(ApiError, match="not valid"):
        await users.set_password(pool, "pt_forged", PASSWORD)


async def test_an_expired_link_is_refused_and_a_new_link_replaces_the_old_one(
    pool: asyncpg.Pool, user_settings: AuthSettings
) -> None:
    created = await new_user(pool, user_settings, password=None)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE auth.password_tokens SET expires_at = now() - interval '1 second'")
    with pytest.raises(ApiError, match="expired"):
        await users.set_password(pool, token_of(created), PASSWORD)
    first = await users.password_link(pool, user_settings, created["email"])
    second = await users.password_link(pool, user_settings, created["email"])
    with pytest.raises(ApiError, match="already used"):
        await users.set_password(pool, token_of(first), PASSWORD)
    await users.set_password(pool, token_of(second), PASSWORD)


async def test_login_answers_an_access_token_of_the_users_account_that_verifies_like_a_clients(
    pool: asyncpg.Pool, user_settings: AuthSettings, tokens: TokenService, keys: KeyStore
) -> None:
    created = await new_user(pool, user_settings)
    session = await users.login(pool, tokens, user_settings, created["email"].upper(), PASSWORD, "10.0.0.1")
    assert session["accountCode"] == created["accountCode"] and session["userId"] == created["userId"]
    assert session["expiresIn"] == user_settings.access_token_ttl
    claims = verify_with_keys(session["accessToken"], await keys.verification_keys(None), user_settings.issuer)
    assert claims.account_code == created["accountCode"]
    assert claims.subject == claims.client_id == f"user:{created['userId']}"
    assert claims.family_id is not None


async def test_a_wrong_password_is_401_without_saying_whether_the_email_exists(
    pool: asyncpg.Pool, user_settings: AuthSettings, tokens: TokenService
) -> None:
    created = await new_user(pool, user_settings)
    answers = []
    for email in (created["email"], "nobody@example.com"):
        with pytest.raises(ApiError) as failed:
            await users.login(pool, tokens, user_settings, email, "wrong password!", "10.0.0.2")
        answers.append((failed.value.status, failed.value.code, failed.value.reason))
    assert answers[0] == answers[1] == (401, "InvalidCredentials", "the email or the password is wrong")


async def test_repeated_failures_lock_the_login_even_for_the_right_password_until_the_window_ends(
    pool: asyncpg.Pool, user_settings: AuthSettings, tokens: TokenService
) -> None:
    created = await new_user(pool, user_settings)
    statuses = []
    for _ in range(3):
        with pytest.raises(ApiError) as failed:
            await users.login(pool, tokens, user_settings, created["email"], "wrong password!", "10.0.0.3")
        statuses.append(failed.value.status)
    assert statuses == [401, 401, 429]
    with pytest.raises(ApiError) as locked:
        await users.login(pool, tokens, user_settings, created["email"], PASSWORD, "10.0.0.4")
    assert locked.value.code == "LoginLocked" and "locked" in locked.value.reason
    assert 0 < int(locked.value.headers["Retry-After"]) <= user_settings.login_lockout
    async with pool.acquire() as conn:
        await conn.execute("UPDATE auth.auth_failures SET window_start = window_start - interval '1 hour'")
    assert (await users.login(pool, tokens, user_settings, created["email"], PASSWORD, "10.0.0.4"))["accessToken"]


async def test_a_success_clears_the_emails_failures(
    pool: asyncpg.Pool, user_settings: AuthSettings, tokens: TokenService
) -> None:
    created = await new_user(pool, user_settings)
    for _ in range(2):
        with pytest.raises(ApiError):
            await users.login(pool, tokens, user_settings, created["email"], "wrong password!", "10.0.0.5")
    await users.login(pool, tokens, user_settings, created["email"], PASSWORD, "10.0.0.5")
    with pytest.raises(ApiError) as failed:
        await users.login(pool, tokens, user_settings, created["email"], "wrong password!", "10.0.0.5")
    assert failed.value.status == 401


async def test_a_disabled_account_cannot_log_in_with_the_right_password(
    pool: asyncpg.Pool, user_settings: AuthSettings, tokens: TokenService
) -> None:
    created = await new_user(pool, user_settings)
    await services.set_account_disabled(pool, created["accountCode"], True)
    with pytest.raises(ApiError) as refused:
        await users.login(pool, tokens, user_settings, created["email"], PASSWORD, "10.0.0.6")
    assert (refused.value.status, refused.value.code) == (403, "AccountDisabled")


async def test_a_refresh_token_works_once_and_its_reuse_ends_the_session_everywhere(
    pool: asyncpg.Pool, user_settings: AuthSettings, tokens: TokenService
) -> None:
    created = await new_user(pool, user_settings)
    first = await users.login(pool, tokens, user_settings, created["email"], PASSWORD, "10.0.0.7")
    second = await users.refresh(pool, tokens, user_settings, first["refreshToken"])
    assert second["refreshToken"] != first["refreshToken"] and second["accessToken"] != first["accessToken"]
    with pytest.raises(ApiError, match="already used"):
        await users.refresh(pool, tokens, user_settings, first["refreshToken"])
    with pytest.raises(ApiError, match="session has ended"):
        await users.refresh(pool, tokens, user_settings, second["refreshToken"])
    async with pool.acquire() as conn:
        bodies = await conn.fetch("SELECT body FROM auth.outbox WHERE routing_key = 'token_family.revoked'")
    revoked = [parse_envelope(bytes(r["body"])).data for r in bodies]
    assert [r["clientId"] for r in revoked] == [f"user:{created['userId']}"]


async def test_logout_revokes_the_session_and_announces_it_once(
    pool: asyncpg.Pool, user_settings: AuthSettings, tokens: TokenService
) -> None:
    created = await new_user(pool, user_settings)
    session = await users.login(pool, tokens, user_settings, created["email"], PASSWORD, "10.0.0.8")
    await users.logout(pool, user_settings, session["refreshToken"])
    await users.logout(pool, user_settings, session["refreshToken"])  # twice: nothing more happens
    await users.logout(pool, user_settings, "rt_unknown")
    with pytest.raises(ApiError) as ended:
        await users.refresh(pool, tokens, user_settings, session["refreshToken"])
    assert ended.value.code == "SessionEnded"
    async with pool.acquire() as conn:
        revoked = await conn.fetch("SELECT body FROM auth.outbox WHERE routing_key = 'token_family.revoked'")
        at = await conn.fetchval("SELECT revoked_at FROM auth.user_sessions")
    assert len(revoked) == 1 and at <= datetime.now(UTC) + timedelta(seconds=1)
    assert parse_envelope(bytes(revoked[0]["body"])).data["familyId"] == _claims_sid(session["accessToken"])


def _claims_sid(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])
