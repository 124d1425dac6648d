"""The token endpoint's use-case (TokenService.grant) against PostgreSQL: one statement authenticates
and writes a client_credentials grant (concurrent grants share it: shared.grouping.on_pool), and a refused grant
writes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.auth import services
from services.auth.adapters import repository as repo
from services.auth.domain.credentials import ClientCredentials, hash_secret
from services.auth.domain.errors import OAuthError
from services.auth.services import FailureLimits, TokenService
from shared.grouping import on_pool
from shared.testing import random_name

ADDRESS = "198.51.100.4"


async def families(pool: asyncpg.Pool, client_id: str) -> tuple[int, int]:
    """(token families, refresh tokens) written for the client."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(DISTINCT f.id) AS families, count(r.token_hash) AS refresh_tokens"
            " FROM auth.token_families f LEFT JOIN auth.refresh_tokens r ON r.family_id = f.id"
            " WHERE f.client_id = $1",
            client_id,
        )
    assert row is not None
    return int(row["families"]), int(row["refresh_tokens"])


def basic(created: dict[str, Any], secret: str | None = None) -> ClientCredentials:
    return ClientCredentials(created["clientId"], secret or created["clientSecret"], "client_secret_basic")


async def test_a_client_credentials_grant_writes_one_family_with_its_refresh_token(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    created = await services.create_account(pool, random_name("acct"), "Grants")
    grantee, issued = await tokens.grant(limits, basic(created), ADDRESS, "client_credentials")
    assert grantee.client_id == created["clientId"] and str(grantee.account_id) == created["accountId"]
    assert issued.refresh_token is not None and issued.access_token.count(".") == 2
    assert await families(pool, created["clientId"]) == (1, 1)
    async with pool.acquire() as conn:
        row = await repo.refresh_token(conn, hash_secret(issued.refresh_token))
    assert row is not None and row["client_id"] == created["clientId"] and row["used_at"] is None
    # The refresh token it wrote is the one it answered with: it can be spent.
    _, refreshed = await tokens.grant(limits, basic(created), ADDRESS, "refresh_token", issued.refresh_token)
    assert refreshed.refresh_token not in (None, issued.refresh_token)


async def test_a_client_that_may_not_refresh_gets_a_family_but_no_refresh_token(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    account = await services.create_account(pool, random_name("acct"), "No refresh")
    created = await services.create_client(pool, account["accountCode"], ["client_credentials"])
    _, issued = await tokens.grant(limits, basic(created), ADDRESS, "client_credentials")
    assert issued.refresh_token is None
    assert await families(pool, created["clientId"]) == (1, 0)


async def refused(tokens: TokenService, limits: FailureLimits, credentials: ClientCredentials) -> OAuthError:
    with pytest.raises(OAuthError) as raised:
        await tokens.grant(limits, credentials, ADDRESS, "client_credentials")
    return raised.value


async def test_refused_grants_write_nothing_and_answer_what_went_wrong(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    created = await services.create_account(pool, random_name("acct"), "Refused")
    assert (await refused(tokens, limits, basic(created, "wrong"))).code == "invalid_client"
    unknown = ClientCredentials(f"nobody.{uuid.uuid4().hex[:12]}", "x", "client_secret_basic")
    assert (await refused(tokens, limits, unknown)).code == "invalid_client"

    await services.set_client_disabled(pool, created["clientId"], True)
    error = await refused(tokens, limits, basic(created))
    assert error.code == "invalid_client" and "disabled" in error.body()["error_description"]
    await services.set_client_disabled(pool, created["clientId"], False)

    await services.set_account_disabled(pool, created["accountCode"], True)
    error = await refused(tokens, limits, basic(created))
    assert error.code == "unauthorized_client" and "account is disabled" in error.body()["error_description"]
    await services.set_account_disabled(pool, created["accountCode"], False)

    refresh_only = await services.create_client(pool, created["accountCode"], ["refresh_token"])
    assert (await refused(tokens, limits, basic(refresh_only))).code == "unauthorized_client"

    assert await families(pool, created["clientId"]) == (0, 0)
    assert await families(pool, refresh_only["clientId"]) == (0, 0)
    # Wrong secrets count against the limits as before (the unknown client's too).
    async with pool.acquire() as conn:
        windows = await repo.failure_windows(conn, [f"addr:{ADDRESS}"])
    assert windows[f"addr:{ADDRESS}"].failures == 2
    await tokens.grant(limits, basic(created), ADDRESS, "client_credentials")  # and back on
    assert await families(pool, created["clientId"]) == (1, 1)


def asked(client_id: str, secret: str) -> repo.AskedGrant:
    now = datetime.now(UTC).replace(microsecond=0)
    return repo.AskedGrant(
        client_id=client_id,
        secret_hash=hash_secret(secret),
        family_id=uuid.uuid4(),
        refresh_hash=hash_secret(f"rt_{uuid.uuid4().hex}"),
        issued_at=now,
        refresh_expires_at=now + timedelta(hours=1),
    )


async def test_the_grant_statement_skips_the_wal_flush_for_its_own_transaction_only(
    pool: asyncpg.Pool, limits: FailureLimits
) -> None:
    created = await services.create_account(pool, random_name("acct"), "Commit mode")
    async with pool.acquire() as conn:
        before = await conn.fetchval("SHOW synchronous_commit")
        async with conn.transaction():
            [row] = await repo.grant_families(conn, [asked(created["clientId"], created["clientSecret"])])
            assert row is not None and row["granted"]
            assert await conn.fetchval("SHOW synchronous_commit") == "off"
        assert await conn.fetchval("SHOW synchronous_commit") == before  # back once it committed


async def written(pool: asyncpg.Pool, grant: repo.AskedGrant) -> tuple[bool, bool]:
    """(its family, its refresh token) written?"""
    async with pool.acquire() as conn:
        family = await conn.fetchval("SELECT count(*) FROM auth.token_families WHERE id = $1", grant.family_id)
        refresh = await conn.fetchval(
            "SELECT count(*) FROM auth.refresh_tokens WHERE token_hash = $1 AND family_id = $2",
            grant.refresh_hash,
            grant.family_id,
        )
    return bool(family), bool(refresh)


async def lone(pool: asyncpg.Pool, grant: repo.AskedGrant) -> asyncpg.Record | None:
    """What the statement answers for `grant` asked alone (rolled back: it writes nothing)."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            [row] = await repo.grant_families(conn, [grant])
        finally:
            await transaction.rollback()
    return row


async def test_grouped_grants_answer_each_request_as_a_lone_grant_would(pool: asyncpg.Pool) -> None:
    refreshing = await services.create_account(pool, random_name("acct"), "Grouped grants")
    code = refreshing["accountCode"]
    plain = await services.create_client(pool, code, ["client_credentials"])
    disabled = await services.create_client(pool, code, ["client_credentials"])
    await services.set_client_disabled(pool, disabled["clientId"], True)
    refresh_only = await services.create_client(pool, code, ["refresh_token"])
    other_account = await services.create_account(pool, random_name("acct"), "Disabled account")
    await services.set_account_disabled(pool, other_account["accountCode"], True)
    asking = [
        asked(refreshing["clientId"], refreshing["clientSecret"]),  # may refresh: family and refresh token
        asked(plain["clientId"], plain["clientSecret"]),  # a family only
        asked(refreshing["clientId"], "wrong"),
        asked(disabled["clientId"], disabled["clientSecret"]),
        asked(refresh_only["clientId"], refresh_only["clientSecret"]),
        asked(f"nobody.{uuid.uuid4().hex[:12]}", "x"),
        asked(other_account["clientId"], other_account["clientSecret"]),
        asked(plain["clientId"], plain["clientSecret"]),  # the same client twice: two families
    ]
    alone = [await lone(pool, grant) for grant in asking]

    grants = on_pool(pool, repo.grant_families, name="test-grants")
    first = asyncio.ensure_future(grants(asking[0]))
    await asyncio.sleep(0)  # in flight: the rest queue behind it and go in one statement
    rows = [await first, *await asyncio.gather(*(grants(grant) for grant in asking[1:]))]
    assert grants.calls == 2

    def answer(row: asyncpg.Record | None) -> dict[str, Any] | None:
        return None if row is None else {k: v for k, v in row.items() if k != "asked_position"}

    assert [answer(row) for row in rows] == [answer(row) for row in alone]
    assert [row is not None and row["granted"] for row in rows] == [True, True, False, False, False, False, False, True]
    assert rows[0] is not None and rows[0]["client_id"] == refreshing["clientId"]
    assert rows[5] is None
    assert [await written(pool, grant) for grant in asking] == [
        (True, True),
        (True, False),
        *[(False, False)] * 5,
        (True, False),
    ]


async def test_concurrent_grants_are_each_answered_as_alone_and_failures_still_count(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    created = await services.create_account(pool, random_name("acct"), "Concurrent")
    good, bad = basic(created), basic(created, "wrong")
    answers = await asyncio.gather(
        *(tokens.grant(limits, good if i % 3 else bad, ADDRESS, "client_credentials") for i in range(12)),
        return_exceptions=True,
    )
    refused = [a for a in answers if isinstance(a, OAuthError)]
    issued = [a for a in answers if not isinstance(a, BaseException)]
    assert len(issued) == 8 and len(refused) == 4
    # The limit is 3 failures per client and address: the fourth is answered 429, not 401.
    assert sorted(e.status for e in refused) == [401, 401, 401, 429]
    assert await families(pool, created["clientId"]) == (8, 8)
    assert len({i.refresh_token for _, i in issued}) == 8
