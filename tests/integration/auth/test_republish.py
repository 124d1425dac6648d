"""`republish-denylist`: the current revocations and disabled clients/accounts announced again, for
a service whose queue did not exist when they were first announced."""

from __future__ import annotations

import asyncpg

from services.auth import revocations, services
from services.auth.services import FailureLimits, TokenService
from shared.messages import parse_envelope
from shared.testing import random_name
from tests.integration.auth.test_tokens import issue, new_grantee


async def announced(pool: asyncpg.Pool) -> list[tuple[str, dict[str, object]]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT body FROM auth.outbox ORDER BY seq")
    envelopes = [parse_envelope(bytes(r["body"])) for r in rows]
    return [(e.type, e.data) for e in envelopes]


async def test_every_live_revocation_and_disabled_state_is_announced_again(
    pool: asyncpg.Pool, tokens: TokenService, limits: FailureLimits
) -> None:
    grantee, created = await new_grantee(pool, limits)
    issued = await issue(tokens, limits, created)
    await tokens.revoke(grantee, issued.access_token, None)
    assert issued.refresh_token is not None
    await tokens.revoke(grantee, issued.refresh_token, None)
    disabled = await services.create_account(pool, random_name("acct"), "Disabled")
    await services.set_account_disabled(pool, disabled["accountCode"], True)
    await services.set_client_disabled(pool, disabled["clientId"], True)
    first = await announced(pool)

    async with pool.acquire() as conn:
        counts = await revocations.republish(conn, 300)

    again = (await announced(pool))[len(first) :]
    assert counts == {"tokens": 1, "families": 1, "clients": 1, "accounts": 1}
    assert sorted(kind for kind, _ in again) == [
        "access_token.revoked",
        "account.disabled",
        "client.disabled",
        "token_family.revoked",
    ]
    originals = {kind: data for kind, data in first if kind in ("access_token.revoked", "token_family.revoked")}
    for kind, data in again:
        if kind in originals:
            assert data == originals[kind]
