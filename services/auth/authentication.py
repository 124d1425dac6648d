"""Client authentication with failure limits that nobody can turn against a merchant.

Correct credentials always authenticate: the limits only ever refuse an attempt that failed.
Failures are counted per client id *and* source together (so guesses from one place cannot lock
out the merchant calling from another) and per source (one place spraying many client ids). Once
either count is over its limit within the window, a failed attempt is answered 429 with
Retry-After instead of 401. Client secrets are 256-bit random values, so guessing is not what the
limits defend against; they shed and flag abuse, and they never refuse the right secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from services.auth.adapters import repository as repo
from services.auth.domain import errors, ratelimit
from services.auth.domain.credentials import ClientCredentials, hash_secret, secret_matches
from services.auth.domain.tokens import Grantee
from services.auth.settings import AuthSettings
from shared.logging import get_logger

log = get_logger(__name__)

_UNKNOWN_CLIENT_HASH = hash_secret("\x00unknown client")


@dataclass(frozen=True)
class FailureLimits:
    per_client: int  # per client id and source together
    per_address: int  # per source, across client ids
    window: int

    @classmethod
    def of(cls, settings: AuthSettings) -> FailureLimits:
        return cls(settings.failures_per_client, settings.failures_per_address, settings.failure_window)


async def record_failure(pool: asyncpg.Pool, limits: FailureLimits, client_id: str | None, address: str) -> int | None:
    """Count one failed attempt; the seconds to wait when a count is now over its limit, else None."""
    async with pool.acquire() as conn:
        return await record_failure_on(conn, limits, client_id, address)


async def record_failure_on(
    conn: asyncpg.Connection, limits: FailureLimits, client_id: str | None, address: str
) -> int | None:
    now = datetime.now(UTC)
    buckets = {ratelimit.address_bucket(address): limits.per_address}
    if client_id:
        buckets[ratelimit.pair_bucket(client_id, address)] = limits.per_client
    waits = []
    for bucket, limit in buckets.items():
        window = await repo.record_failure(conn, bucket, now, limits.window)
        waits.append(ratelimit.retry_after(window, now, limits.window, limit + 1))
    return max((w for w in waits if w is not None), default=None)


async def authenticate(
    pool: asyncpg.Pool, limits: FailureLimits, credentials: ClientCredentials, address: str
) -> tuple[Grantee, list[str]]:
    """The client behind `credentials` and its allowed grant types, or invalid_client / 429."""
    async with pool.acquire() as conn:
        return await authenticate_on(conn, limits, credentials, address)


# A client secret is a 256-bit random value and its stored form one SHA-256 (domain.credentials):
# checking it costs about a microsecond, so there is no verified-secret cache here. Such a cache is
# the answer to a slow KDF (bcrypt, argon2) run per grant; with SHA-256 it would only add a place
# where a rotated or disabled client's secret could outlive the change.
async def authenticate_on(
    conn: asyncpg.Connection, limits: FailureLimits, credentials: ClientCredentials, address: str
) -> tuple[Grantee, list[str]]:
    """`authenticate` on a connection the caller holds (and keeps using for the grant)."""
    client = await repo.client_with_account(conn, credentials.client_id)
    return await admit(conn, limits, credentials, address, client)


async def admit(
    failures: asyncpg.Pool | asyncpg.Connection,
    limits: FailureLimits,
    credentials: ClientCredentials,
    address: str,
    client: asyncpg.Record | None,
) -> tuple[Grantee, list[str]]:
    """Hold `credentials` to the client row read for them (`repo.client_with_account`'s columns):
    the grantee and its grant types, or invalid_client / unauthorized_client / 429.

    A failed attempt is counted on `failures`: the connection the caller holds, or the pool, from
    which a connection is then taken for the failure only (a grant that authenticates needs none)."""
    # The hash is compared even for an unknown client so both paths take the same time.
    stored = client["secret_hash"] if client is not None else _UNKNOWN_CLIENT_HASH
    if not secret_matches(credentials.client_secret, stored) or client is None:
        if isinstance(failures, asyncpg.Pool):
            wait = await record_failure(failures, limits, credentials.client_id, address)
        else:
            wait = await record_failure_on(failures, limits, credentials.client_id, address)
        log.info("client_auth.failed", client_id=credentials.client_id[:100], address=address, limited=wait is not None)
        if wait is not None:
            raise errors.too_many_failures(wait)
        raise errors.invalid_client("client authentication failed: unknown client or wrong secret")
    if client["client_disabled"]:
        raise errors.invalid_client("this client is disabled")
    if client["account_disabled"]:
        raise errors.unauthorized_client("the client's account is disabled")
    grantee = Grantee(client["client_id"], client["account_id"], client["account_code"], tuple(client["scopes"]))
    return grantee, list(client["grant_types"])
