"""Claiming due deliveries and recording their attempts many at a time: a few statements per batch,
not per delivery.

Every function takes a connection; the caller owns the transaction. The rules are those of one
attempt (repository.py): an attempt row is written before anything is sent, a delivery is held by
one worker at a time (its lease), and an outcome only moves the delivery on if that worker still
holds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.webhook.adapters.repository import ORPHANED_ATTEMPT, SCHEMA, ClaimedAttempt, open_secret
from shared.crypto import SecretBox

# Due deliveries, at most `endpoint_limit` per endpoint counting those this worker already has in
# flight ($1 endpoints, $2 their counts), oldest first per endpoint, then locked. The ranking reads
# without locks; the locking query re-checks every condition on the row as it is when locked (READ
# COMMITTED re-evaluates a changed row), and SKIP LOCKED leaves rows another worker is claiming to
# it, so two workers never claim the same attempt.
_CLAIM = f"""
WITH busy AS (
    SELECT * FROM unnest($1::uuid[], $2::int[]) AS b(endpoint_id, active)
), ranked AS (
    SELECT d.id, d.next_attempt_at,
           row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.created_at, d.id)
           + coalesce(b.active, 0) AS place
    FROM {SCHEMA}.deliveries d LEFT JOIN busy b ON b.endpoint_id = d.endpoint_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
      AND (d.lease_until IS NULL OR d.lease_until <= clock_timestamp())
), chosen AS (
    SELECT id FROM ranked WHERE place <= $3 ORDER BY next_attempt_at, id LIMIT $4
)
SELECT d.id, d.endpoint_id, d.attempts_made, d.first_attempt_at, d.manual, d.next_attempt_at,
       e.url, e.enabled, e.secret, e.secret_encrypted, e.previous_secret, e.previous_secret_encrypted,
       e.previous_secret_expires_at, ev.id AS event_id, ev.event_type, ev.body, clock_timestamp() AS now
FROM {SCHEMA}.deliveries d
JOIN {SCHEMA}.endpoints e ON e.id = d.endpoint_id
JOIN {SCHEMA}.events ev ON ev.id = d.event_id
WHERE d.id IN (SELECT id FROM chosen)
  AND d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
  AND (d.lease_until IS NULL OR d.lease_until <= clock_timestamp())
ORDER BY d.endpoint_id, d.next_attempt_at, d.created_at, d.id
FOR UPDATE OF d SKIP LOCKED
"""

# One statement for the whole batch: close attempts a dead worker left open, write the new attempt
# rows, take the lease. (Sub-statements share one snapshot, so the close never sees the new rows.)
_TAKE = f"""
WITH claimed AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[])
        AS c(delivery_id, attempt_id, number, trigger, url)
), orphans AS (
    UPDATE {SCHEMA}.delivery_attempts a SET finished_at = clock_timestamp(), succeeded = false, error = $8
    FROM claimed c WHERE a.delivery_id = c.delivery_id AND a.finished_at IS NULL
), attempts AS (
    INSERT INTO {SCHEMA}.delivery_attempts (id, delivery_id, number, trigger, url, started_at)
    SELECT attempt_id, delivery_id, number, trigger, url, $6 FROM claimed
)
UPDATE {SCHEMA}.deliveries d SET attempts_made = c.number, first_attempt_at = COALESCE(d.first_attempt_at, $6),
    lease_until = $6 + make_interval(secs => $7), swept_at = NULL, updated_at = now()
FROM claimed c WHERE d.id = c.delivery_id
"""


async def claim_due(
    conn: asyncpg.Connection,
    box: SecretBox,
    *,
    limit: int,
    endpoint_limit: int,
    active: Mapping[uuid.UUID, int],
    lease_seconds: float,
) -> list[ClaimedAttempt]:
    """Claim up to `limit` due attempts, at most `endpoint_limit` per endpoint including the
    `active` ones this worker already has in flight; oldest first within an endpoint. A due
    delivery whose endpoint is disabled ends as failed instead. Runs in the caller's transaction."""
    busy = [(endpoint, count) for endpoint, count in active.items() if count > 0]
    rows = await conn.fetch(
        _CLAIM,
        [endpoint for endpoint, _ in busy],
        [count for _, count in busy],
        endpoint_limit,
        limit,
    )
    if not rows:
        return []
    disabled = [r["id"] for r in rows if not r["enabled"]]
    if disabled:
        await conn.execute(
            f"UPDATE {SCHEMA}.deliveries SET status = 'failed', next_attempt_at = NULL, lease_until = NULL,"
            " failure_reason = 'the endpoint is disabled', completed_at = now(), updated_at = now()"
            " WHERE id = ANY($1::uuid[])",
            disabled,
        )
    now: datetime = rows[0]["now"]
    claimed = [_claimed(box, row, now) for row in rows if row["enabled"]]
    if claimed:
        await conn.execute(
            _TAKE,
            [c.delivery_id for c in claimed],
            [c.attempt_id for c in claimed],
            [c.number for c in claimed],
            ["manual" if c.manual else "scheduled" for c in claimed],
            [c.url for c in claimed],
            now,
            lease_seconds,
            ORPHANED_ATTEMPT,
        )
    return claimed


def _claimed(box: SecretBox, row: asyncpg.Record, now: datetime) -> ClaimedAttempt:
    current = open_secret(box, row["secret_encrypted"], row["secret"])
    previous = open_secret(box, row["previous_secret_encrypted"], row["previous_secret"])
    secrets = [current] if current else []
    if previous and row["previous_secret_expires_at"] and row["previous_secret_expires_at"] > now:
        secrets.append(previous)
    return ClaimedAttempt(
        attempt_id=uuid.uuid4(),
        delivery_id=row["id"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        number=row["attempts_made"] + 1,
        manual=row["manual"],
        url=row["url"],
        signing_secrets=secrets,
        body=bytes(row["body"]),
        first_attempt_at=row["first_attempt_at"] or now,
    )


@dataclass(frozen=True)
class FinishedAttempt:
    """An attempt's outcome as it is stored."""

    attempt_id: uuid.UUID
    delivery_id: uuid.UUID
    duration_ms: float
    status_code: int | None
    error: str | None
    response_body: bytes | None
    succeeded: bool


async def lock_deliveries(
    conn: asyncpg.Connection, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, asyncpg.Record]:
    """Lock the deliveries, in id order (two recorders never wait on each other in a circle; a
    claim, which locks the delivery before its attempts, takes the same order)."""
    rows = await conn.fetch(
        f"SELECT id, status, attempts_made FROM {SCHEMA}.deliveries WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        list(delivery_ids),
    )
    return {r["id"]: r for r in rows}


async def finish_attempts(conn: asyncpg.Connection, finished: Sequence[FinishedAttempt]) -> dict[uuid.UUID, datetime]:
    """Store the outcomes (error text without NULs, bodies as the bytes they were); returns each
    attempt's finishing time by the database's clock."""
    rows = await conn.fetch(
        f"UPDATE {SCHEMA}.delivery_attempts a SET finished_at = clock_timestamp(), duration_ms = f.duration_ms,"
        " status_code = f.status_code, error = f.error, response_body = f.response_body, succeeded = f.succeeded"
        " FROM unnest($1::uuid[], $2::float8[], $3::int[], $4::text[], $5::bytea[], $6::bool[])"
        " AS f(id, duration_ms, status_code, error, response_body, succeeded)"
        " WHERE a.id = f.id RETURNING a.id, a.finished_at",
        [f.attempt_id for f in finished],
        [f.duration_ms for f in finished],
        [f.status_code for f in finished],
        [f.error.replace("\x00", "") if f.error is not None else None for f in finished],
        [f.response_body for f in finished],
        [f.succeeded for f in finished],
    )
    return {r["id"]: r["finished_at"] for r in rows}


@dataclass(frozen=True)
class Settlement:
    """What a recorded attempt does to its delivery: ends it (succeeded or failed) or schedules the next."""

    delivery_id: uuid.UUID
    status: str  # succeeded, failed or pending
    next_attempt_at: datetime | None = None


async def settle_deliveries(conn: asyncpg.Connection, settlements: Sequence[Settlement]) -> None:
    """Apply the settlements in one statement (the deliveries are locked by the caller)."""
    if not settlements:
        return
    await conn.execute(
        f"UPDATE {SCHEMA}.deliveries d SET status = s.status, next_attempt_at = s.next_attempt_at,"
        " lease_until = NULL, swept_at = NULL,"
        " manual = CASE WHEN s.status = 'pending' THEN d.manual ELSE false END,"
        " failure_reason = CASE WHEN s.status = 'failed' THEN 'every attempt failed' ELSE NULL END,"
        " completed_at = CASE WHEN s.status = 'pending' THEN NULL ELSE now() END, updated_at = now()"
        " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS s(id, status, next_attempt_at)"
        " WHERE d.id = s.id",
        [s.delivery_id for s in settlements],
        [s.status for s in settlements],
        [s.next_attempt_at for s in settlements],
    )
