"""Announcing what stopped being valid: revocation and account/client state messages, via the outbox.

Each function runs in the caller's transaction, so a revocation and its message commit together;
every other service keeps a denylist from these (shared/denylist.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.auth.adapters import repository as repo
from shared.messages import (
    AccessTokenRevoked,
    AccountStateChanged,
    ClientStateChanged,
    TokenFamilyRevoked,
    make_envelope,
)
from shared.outbox import enqueue

# Tokens may be verified this long after `exp` (shared.tokens leeway) or signed this long after a
# family's revocation was committed (a refresh already under way): the denylist keeps them longer.
MARGIN = timedelta(seconds=60)


async def token_revoked(
    conn: asyncpg.Connection, *, jti: str, client_id: str, account_id: uuid.UUID, expires_at: datetime
) -> None:
    data = AccessTokenRevoked(jti=jti, client_id=client_id, account_id=account_id, expires_at=expires_at + MARGIN)
    await enqueue(conn, repo.SCHEMA, [make_envelope("access_token.revoked", data, account_id=account_id)])


async def family_revoked(conn: asyncpg.Connection, family: asyncpg.Record, reason: str, access_ttl: int) -> None:
    """`family` as `repo.revoke_family` returned it; its access tokens all expire within `access_ttl`."""
    data = TokenFamilyRevoked(
        family_id=family["id"],
        client_id=family["client_id"],
        account_id=family["account_id"],
        reason=reason,
        expires_at=family["revoked_at"] + timedelta(seconds=access_ttl) + MARGIN,
    )
    await enqueue(conn, repo.SCHEMA, [make_envelope("token_family.revoked", data, account_id=family["account_id"])])


async def client_state(conn: asyncpg.Connection, client: asyncpg.Record, disabled: bool) -> None:
    """`client` as `repo.set_client_disabled` returned it."""
    data = ClientStateChanged(
        client_id=client["client_id"], account_id=client["account_id"], changed_at=client["changed_at"]
    )
    kind = "client.disabled" if disabled else "client.enabled"
    await enqueue(conn, repo.SCHEMA, [make_envelope(kind, data, account_id=client["account_id"])])


async def account_state(conn: asyncpg.Connection, account: asyncpg.Record, disabled: bool) -> None:
    """`account` as `repo.set_account_disabled` returned it."""
    data = AccountStateChanged(account_id=account["id"], account_code=account["code"], changed_at=account["changed_at"])
    kind = "account.disabled" if disabled else "account.enabled"
    await enqueue(conn, repo.SCHEMA, [make_envelope(kind, data, account_id=account["id"])])


async def republish(conn: asyncpg.Connection, access_ttl: int) -> dict[str, Any]:
    """Announce the whole current state again, in one transaction: for a service deployed after
    revocations were made (its queue did not exist to receive them). Receivers apply it idempotently."""
    since = datetime.now(UTC) - timedelta(seconds=access_ttl) - MARGIN
    async with conn.transaction():
        state = await repo.denylist_state(conn, since)
        for token in state["tokens"]:
            await enqueue(
                conn,
                repo.SCHEMA,
                [
                    make_envelope(
                        "access_token.revoked",
                        AccessTokenRevoked(
                            jti=str(token["jti"]),
                            client_id=token["client_id"],
                            account_id=token["account_id"],
                            expires_at=token["expires_at"],
                        ),
                        account_id=token["account_id"],
                    )
                ],
            )
        for family in state["families"]:
            await family_revoked(conn, family, family["revoked_reason"] or "revoked", access_ttl)
        for client in state["clients"]:
            await client_state(conn, client, True)
        for account in state["accounts"]:
            await account_state(conn, account, True)
    return {name: len(rows) for name, rows in state.items()}
