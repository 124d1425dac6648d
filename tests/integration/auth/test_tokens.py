"""Token grants against PostgreSQL: refresh-token families, theft detection, revocation, keys, limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from joserfc import jwt

from services.auth import services
from services.auth.adapters import repository as repo
from services.auth.domain.credentials import ClientCredentials, hash_secret
from services.auth.domain.errors import OAuthError
from services.auth.domain.tokens import Grantee, IssuedTokens
from services.auth.keys import KeyStore, ensure_signing_key
from services.auth.services import GRANT_TYPES, FailureLimits, TokenService
from services.auth.settings import AuthSettings
from shared import db
from shared.testing import random_name
from shared.tokens import verify_with_keys


async def new_grantee(pool: asyncpg.Pool, limits: FailureLimits) -> tuple[Grantee, dict[str, Any]]:
    created = await services.create_account(pool, random_name("acct"), "Tokens")
    credentials = ClientCredentials(created["clientId"], created["clientSecret"], "client_secret_basic")
    grantee, _ = await services.authenticate(pool, limits, credentials, "127.0.0.1")
    return grantee, created


async def issue(tokens: TokenService, limits: FailureLimits, created: dict[str, Any]) -> IssuedTokens:
    """A client_credentials grant through the token endpoint's own use-case."""
    credentials = ClientCredentials(created["clientId"], created["clientSecret"], "client_secret_basic")
    _, issued = await tokens.grant(limits, credentials, "127.0.0.1", "client_credentials")
    return issued


async def test_a_refresh_token_works_once_and_its_answer_carries_the_next(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    grantee, created = await new_grantee(pool, limits)
    first = await issue(tokens, limits, created)
    assert first.refresh_token is not None
    second = await tokens.refresh(grantee, GRANT_TYPES, first.refresh_token)
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.access_token != first.access_token
    assert second.refresh_token is not None
    third = await tokens.refresh(grantee, GRANT_TYPES, second.refresh_token)
    async with pool.acquire() as conn:
        families = await conn.fetchval("SELECT count(DISTINCT family_id) FROM auth.refresh_tokens")
        stored = await conn.fetchval(
            "SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = $1", hash_secret(third.refresh_token or "")
        )
    assert families == 1 and stored == 1


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    grantee, created = await new_grantee(pool, limits)
    first = await issue(tokens, limits, created)
    assert first.refresh_token is not None
    second = await tokens.refresh(grantee, GRANT_TYPES, first.refresh_token)
    assert second.refresh_token is not None
    assert (await tokens.introspect(grantee, second.access_token, None))["active"] is True
    with pytest.raises(OAuthError) as raised:
        await tokens.refresh(grantee, GRANT_TYPES, first.refresh_token)
    assert raised.value.code == "invalid_grant"
    # The newest refresh token and every access token of the family are dead too.
    with pytest.raises(OAuthError, match="revoked"):
        await tokens.refresh(grantee, GRANT_TYPES, second.refresh_token)
    assert (await tokens.introspect(grantee, second.access_token, None)) == {"active": False}
    assert (await tokens.introspect(grantee, first.access_token, "access_token")) == {"active": False}
    assert (await tokens.introspect(grantee, second.refresh_token, "refresh_token")) == {"active": False}
    # Another grant of the same client is untouched.
    other = await issue(tokens, limits, created)
    assert (await tokens.introspect(grantee, other.access_token, None))["active"] is True


async def test_two_concurrent_refreshes_with_one_token_leave_no_live_family(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    grantee, created = await new_grantee(pool, limits)
    first = await issue(tokens, limits, created)
    assert first.refresh_token is not None
    results = await asyncio.gather(
        tokens.refresh(grantee, GRANT_TYPES, first.refresh_token),
        tokens.refresh(grantee, GRANT_TYPES, first.refresh_token),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, OAuthError)]
    assert len(failures) == 1 and failures[0].code == "invalid_grant"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT revoked_at IS NOT NULL FROM auth.token_families") is True


async def test_a_refresh_token_of_another_client_is_an_invalid_grant(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    owner, created = await new_grantee(pool, limits)
    thief, _ = await new_grantee(pool, limits)
    issued = await issue(tokens, limits, created)
    assert issued.refresh_token is not None
    with pytest.raises(OAuthError, match="another client") as raised:
        await tokens.refresh(thief, GRANT_TYPES, issued.refresh_token)
    assert raised.value.code == "invalid_grant"
    assert (await tokens.introspect(thief, issued.access_token, None)) == {"active": False}
    assert (await tokens.introspect(thief, issued.refresh_token, None)) == {"active": False}
    assert (await tokens.introspect(owner, issued.refresh_token, None))["active"] is True


async def test_an_expired_refresh_token_is_an_invalid_grant(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    grantee, created = await new_grantee(pool, limits)
    issued = await issue(tokens, limits, created)
    assert issued.refresh_token is not None
    async with pool.acquire() as conn:
        await conn.execute("UPDATE auth.refresh_tokens SET expires_at = now() - interval '1 second'")
    with pytest.raises(OAuthError, match="expired"):
        await tokens.refresh(grantee, GRANT_TYPES, issued.refresh_token)


async def test_revoking_an_access_token_records_its_jti_and_a_refresh_token_its_family(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    grantee, created = await new_grantee(pool, limits)
    one = await issue(tokens, limits, created)
    two = await issue(tokens, limits, created)
    await tokens.revoke(grantee, one.access_token, None)
    assert (await tokens.introspect(grantee, one.access_token, None)) == {"active": False}
    assert one.refresh_token is not None and two.refresh_token is not None
    assert (await tokens.introspect(grantee, one.refresh_token, None))["active"] is True
    await tokens.revoke(grantee, two.refresh_token, "refresh_token")
    assert (await tokens.introspect(grantee, two.access_token, None)) == {"active": False}
    with pytest.raises(OAuthError, match="revoked"):
        await tokens.refresh(grantee, GRANT_TYPES, two.refresh_token)
    await tokens.revoke(grantee, "not-a-token-at-all", None)  # unknown tokens are fine (RFC 7009)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM auth.revoked_access_tokens") == 1


async def test_the_first_signing_key_is_created_once_by_concurrent_starters(
    pool: asyncpg.Pool, settings: AuthSettings
) -> None:
    stores = [KeyStore(pool, settings) for _ in range(4)]
    signers = await asyncio.gather(*(s.signer() for s in stores))
    assert len({s.kid for s in signers}) == 1
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM auth.signing_keys") == 1


async def test_rotation_signs_with_the_new_key_and_keeps_publishing_the_old_one(
    pool: asyncpg.Pool, settings: AuthSettings, limits: FailureLimits
) -> None:
    keys = KeyStore(pool, settings)
    tokens = TokenService(pool, settings, keys)
    grantee, created = await new_grantee(pool, limits)
    before = await issue(tokens, limits, created)
    old_kid = (await keys.signer()).kid
    async with pool.acquire() as conn:
        new_kid = await ensure_signing_key(conn, settings, force=True)
    keys.forget()
    after = await issue(tokens, limits, created)
    assert jwt.decode(after.access_token, await keys.verification_keys(new_kid)).header["kid"] == new_kid
    published = await keys.public_jwks()
    assert [k["kid"] for k in published["keys"]] == [new_kid, old_kid]
    assert all("d" not in k and "p" not in k for k in published["keys"])
    key_set = await keys.verification_keys(old_kid)
    assert verify_with_keys(before.access_token, key_set, settings.issuer).client_id == grantee.client_id
    assert verify_with_keys(after.access_token, key_set, settings.issuer).client_id == grantee.client_id
    # Once every token the old key signed has expired, it is no longer published.
    async with pool.acquire() as conn:
        expires = await conn.fetchval("SELECT expires_at FROM auth.signing_keys WHERE kid = $1", old_kid)
        assert expires >= datetime.now(UTC) + timedelta(seconds=settings.access_token_ttl)
        await conn.execute("UPDATE auth.signing_keys SET expires_at = now() WHERE kid = $1", old_kid)
    assert [k["kid"] for k in (await keys.public_jwks())["keys"]] == [new_kid]


async def test_an_old_signing_key_is_rotated_automatically(pool: asyncpg.Pool, settings: AuthSettings) -> None:
    keys = KeyStore(pool, settings)
    first = (await keys.signer()).kid
    async with pool.acquire() as conn:
        await conn.execute("UPDATE auth.signing_keys SET created_at = now() - interval '31 days'")
    keys.forget()
    second = (await keys.signer()).kid
    assert second != first
    assert {k["kid"] for k in (await keys.public_jwks())["keys"]} == {first, second}


async def test_many_failures_for_a_client_from_elsewhere_never_refuse_its_correct_secret(
    pool: asyncpg.Pool, limits: FailureLimits
) -> None:
    created = await services.create_account(pool, random_name("acct"), "Limited")
    wrong = ClientCredentials(created["clientId"], "wrong", "client_secret_basic")
    for attempt in range(limits.per_client):
        with pytest.raises(OAuthError) as raised:
            await services.authenticate(pool, limits, wrong, "10.0.0.9")
        assert raised.value.code == "invalid_client", attempt
    # The guesser's own pair is now over its limit: its failures are answered 429.
    with pytest.raises(OAuthError) as raised:
        await services.authenticate(pool, limits, wrong, "10.0.0.9")
    assert raised.value.status == 429
    assert 0 < int(raised.value.headers()["Retry-After"]) <= limits.window
    # Failures from many other addresses too: the merchant's right secret still gets through,
    # from its own address and even from the guesser's.
    for attempt in range(limits.per_client * 3):
        with pytest.raises(OAuthError):
            await services.authenticate(pool, limits, wrong, f"10.0.1.{attempt}")
    right = ClientCredentials(created["clientId"], created["clientSecret"], "client_secret_basic")
    for address in ("10.0.2.1", "10.0.0.9"):
        grantee, _ = await services.authenticate(pool, limits, right, address)
        assert grantee.client_id == created["clientId"]


async def test_failures_are_limited_per_address_across_client_ids_but_a_correct_secret_passes(
    pool: asyncpg.Pool, limits: FailureLimits, settings: AuthSettings
) -> None:
    for attempt in range(limits.per_address):
        with pytest.raises(OAuthError) as raised:
            await services.authenticate(
                pool, limits, ClientCredentials(f"guess-{attempt}", "x", "client_secret_post"), "192.0.2.7"
            )
        assert raised.value.code == "invalid_client"
    with pytest.raises(OAuthError) as raised:
        await services.authenticate(
            pool, limits, ClientCredentials("guess-new", "x", "client_secret_post"), "192.0.2.7"
        )
    assert raised.value.status == 429
    # Another process (its own pool) sees the same counters; another address is not affected.
    async with db.pool_context(settings.platform.database_url, min_size=1, max_size=1) as other_pool:
        with pytest.raises(OAuthError) as raised:
            await services.authenticate(
                other_pool, limits, ClientCredentials("guess-x", "x", "client_secret_post"), "192.0.2.7"
            )
        assert raised.value.status == 429
        with pytest.raises(OAuthError) as raised:
            await services.authenticate(
                other_pool, limits, ClientCredentials("guess-new", "x", "client_secret_post"), "192.0.2.8"
            )
        assert raised.value.code == "invalid_client"
    # A merchant behind the same address (one NAT, one proxy) still authenticates.
    created = await services.create_account(pool, random_name("acct"), "Behind the same NAT")
    right = ClientCredentials(created["clientId"], created["clientSecret"], "client_secret_basic")
    grantee, _ = await services.authenticate(pool, limits, right, "192.0.2.7")
    assert grantee.client_id == created["clientId"]
    async with pool.acquire() as conn:
        window = (await repo.failure_windows(conn, ["addr:192.0.2.7"]))["addr:192.0.2.7"]
    assert window.failures == limits.per_address + 2
