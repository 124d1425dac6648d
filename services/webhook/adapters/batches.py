"""Claiming due deliveries and recording their attempts many at a time: a few statements per batch,
not per delivery.

Every function takes a connection; the caller owns the transaction. The rules are those of one
attempt (repository.py): an attempt is counted on its delivery (`attempts_made`, the lease) before
anything is sent, a delivery is held by one worker at a time (its lease), and an outcome only moves
the delivery on if that worker still holds it.

An attempt's row is written once, with its outcome, not inserted at the claim and updated at the
record: one write per attempt instead of two. So an attempt in flight shows in its delivery's
`attempts_made` (the API's attemptCount) and not yet among its attempts; and an attempt whose worker
died before recording it has no row until the claim that takes its delivery over (the lease ran
out) writes it as orphaned. A late outcome from a worker that lost its lease overwrites that orphaned
row, as it overwrote the open row before.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.webhook.adapters.repository import ORPHANED_ATTEMPT, SCHEMA, ClaimedAttempt, open_secret
from shared.crypto import SecretBox

# The most one claim takes.
CLAIM_MAX = 128


class OpenSecrets:
    """Signing secrets in the clear, by their stored ciphertext: each decrypted once per worker, not
    once per claimed attempt (a Fernet decryption costs about as much as the rest of a claimed row).

    Keyed by the ciphertext itself, so a rotated secret or a re-encrypted one (a new key first in
    KALENDS_ENCRYPTION_KEYS) is a new entry and is decrypted again: the cache can never hand out a
    secret the row no longer holds. The keys themselves only change with a restart. At most `size`
    entries, least recently used dropped first.
    """

    def __init__(self, box: SecretBox, size: int = 4096) -> None:
        self.box = box
        self._size = size
        self._plain: OrderedDict[str, str] = OrderedDict()

    def open(self, encrypted: str | None, plaintext: str | None) -> str | None:
        """As repository.open_secret: decrypted, or a row's plaintext not yet converted."""
        if encrypted is None:
            return plaintext
        value = self._plain.get(encrypted)
        if value is None:
            value = open_secret(self.box, encrypted, None)
            assert value is not None
            self._plain[encrypted] = value
            if len(self._plain) > self._size:
                self._plain.popitem(last=False)
        else:
            self._plain.move_to_end(encrypted)
        return value


# One statement (one round trip, one commit) claims a batch. Run it with plan_cache_mode =
# force_custom_plan (the dispatcher's pool does): PostgreSQL's generic plan for it, which a prepared
# statement gets after five executions, cannot see the limits and reads the whole deliveries table
# on every claim (measured: 10 ms a claim with 10,000 rows, against 0.3 ms planned for the values).
# - `pending`: the endpoints with pending deliveries, by a skip scan of deliveries_pending_by_endpoint
#   (one index probe per endpoint, however long its backlog);
# - `chosen`: per endpoint, its oldest due deliveries held by nobody, as many as its free slots
#   (`$3` less those this worker has in flight: endpoints `$1`, counts `$2`); `$4` in all, oldest first;
# - `locked`: those rows locked, every condition checked again on the row as it is when locked (READ
#   COMMITTED re-evaluates a row changed since the snapshot), rows another worker is claiming skipped:
#   so two workers never claim the same attempt;
# - then, on the locked rows: a disabled endpoint's delivery fails; an attempt a dead worker left
#   unrecorded (the lease ran out, never cleared by a record) is written as orphaned, started when its
#   lease began as far as the lease length `$5` says; the new attempt is counted and the lease taken,
#   before anything is sent. Its row is written with its outcome (record_attempts).
_CLAIM = f"""
WITH RECURSIVE pending(endpoint_id) AS (
    (SELECT endpoint_id FROM {SCHEMA}.deliveries WHERE status = 'pending' ORDER BY endpoint_id LIMIT 1)
    UNION ALL
    SELECT (SELECT d.endpoint_id FROM {SCHEMA}.deliveries d
            WHERE d.status = 'pending' AND d.endpoint_id > p.endpoint_id ORDER BY d.endpoint_id LIMIT 1)
    FROM pending p WHERE p.endpoint_id IS NOT NULL
), busy AS (
    SELECT * FROM unnest($1::uuid[], $2::int[]) AS b(endpoint_id, active)
), chosen AS (
    SELECT c.id FROM pending p LEFT JOIN busy b ON b.endpoint_id = p.endpoint_id
    CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM {SCHEMA}.deliveries d
        WHERE d.endpoint_id = p.endpoint_id AND d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
          AND (d.lease_until IS NULL OR d.lease_until <= clock_timestamp())
        ORDER BY d.next_attempt_at, d.created_at, d.id
        LIMIT least(greatest($3 - coalesce(b.active, 0), 0), {CLAIM_MAX})
    ) c
    WHERE p.endpoint_id IS NOT NULL
    ORDER BY c.next_attempt_at, c.id LIMIT least($4, {CLAIM_MAX})
), locked AS (
    SELECT d.id, d.event_id, d.endpoint_id, d.attempts_made, d.first_attempt_at, d.manual, d.lease_until,
           e.url, e.enabled, e.secret, e.secret_encrypted, e.previous_secret, e.previous_secret_encrypted,
           e.previous_secret_expires_at, clock_timestamp() AS now
    FROM {SCHEMA}.deliveries d JOIN {SCHEMA}.endpoints e ON e.id = d.endpoint_id
    WHERE d.id IN (SELECT id FROM chosen)
      AND d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
      AND (d.lease_until IS NULL OR d.lease_until <= clock_timestamp())
    FOR UPDATE OF d SKIP LOCKED
), disabled AS (
    UPDATE {SCHEMA}.deliveries d SET status = 'failed', next_attempt_at = NULL, lease_until = NULL,
        failure_reason = 'the endpoint is disabled', completed_at = now(), updated_at = now()
    FROM locked l WHERE d.id = l.id AND NOT l.enabled
), orphans AS (
    INSERT INTO {SCHEMA}.delivery_attempts (id, delivery_id, number, trigger, url, started_at, finished_at,
        succeeded, error)
    SELECT gen_random_uuid(), l.id, l.attempts_made, CASE WHEN l.manual THEN 'manual' ELSE 'scheduled' END, l.url,
           l.lease_until - make_interval(secs => $5), l.now, false, $6
    FROM locked l WHERE l.lease_until IS NOT NULL AND l.attempts_made > 0
    ON CONFLICT (delivery_id, number) DO NOTHING
), leases AS (
    UPDATE {SCHEMA}.deliveries d SET attempts_made = l.attempts_made + 1,
        first_attempt_at = COALESCE(d.first_attempt_at, l.now), lease_until = l.now + make_interval(secs => $5),
        swept_at = NULL, updated_at = now()
    FROM locked l WHERE d.id = l.id AND l.enabled
)
SELECT l.*, ev.event_type, ev.body
FROM locked l JOIN {SCHEMA}.events ev ON ev.id = l.event_id
WHERE l.enabled
ORDER BY l.endpoint_id, l.now
"""


async def claim_due(
    conn: asyncpg.Connection,
    box: SecretBox | OpenSecrets,
    *,
    limit: int,
    endpoint_limit: int,
    active: Mapping[uuid.UUID, int],
    lease_seconds: float,
) -> list[ClaimedAttempt]:
    """Claim up to `limit` (at most CLAIM_MAX) due attempts, at most `endpoint_limit` per endpoint including the
    `active` ones this worker already has in flight; oldest first within an endpoint. A due
    delivery whose endpoint is disabled ends as failed instead. One statement: it needs no
    transaction of its own."""
    busy = [(endpoint, count) for endpoint, count in active.items() if count > 0]
    rows = await conn.fetch(
        _CLAIM,
        [endpoint for endpoint, _ in busy],
        [count for _, count in busy],
        endpoint_limit,
        limit,
        lease_seconds,
        ORPHANED_ATTEMPT,
    )
    secrets = box if isinstance(box, OpenSecrets) else OpenSecrets(box)
    return [_claimed(secrets, row) for row in rows]


def _claimed(secrets: OpenSecrets, row: asyncpg.Record) -> ClaimedAttempt:
    now: datetime = row["now"]
    current = secrets.open(row["secret_encrypted"], row["secret"])
    previous = secrets.open(row["previous_secret_encrypted"], row["previous_secret"])
    signing = [current] if current else []
    if previous and row["previous_secret_expires_at"] and row["previous_secret_expires_at"] > now:
        signing.append(previous)
    return ClaimedAttempt(
        attempt_id=uuid.uuid4(),
        delivery_id=row["id"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        number=row["attempts_made"] + 1,
        manual=row["manual"],
        url=row["url"],
        signing_secrets=signing,
        body=bytes(row["body"]),
        first_attempt_at=row["first_attempt_at"] or now,
        started_at=now,
    )


@dataclass(frozen=True)
class FinishedAttempt:
    """An attempt's outcome as it is stored."""

    attempt_id: uuid.UUID
    delivery_id: uuid.UUID
    number: int
    manual: bool  # the attempt's trigger: an operator's retry, or the schedule
    url: str
    started_at: datetime
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


# Outcomes stored and successes settled in one statement: each attempt's row is written with its
# outcome (over the orphaned row a claim wrote if this worker lost its lease meanwhile; not at all
# if its delivery is gone, its endpoint deleted); a delivery whose attempt succeeded ends as
# succeeded if this worker still holds it (still pending, at this attempt's number: the condition
# is checked on the row as it is when updated, so a worker that took over after our lease ran out
# wins). `won` says which did. A delivery is locked by the update itself, no SELECT ... FOR UPDATE
# before it. Failures are settled by the caller (their next attempt is timed from `finished_at`).
_FINISH = f"""
WITH f AS (
    SELECT * FROM unnest(
        $1::uuid[], $2::uuid[], $3::int[], $4::float8[], $5::int[], $6::text[], $7::bytea[], $8::bool[],
        $9::bool[], $10::text[], $11::timestamptz[]
    )
        AS f(id, delivery_id, number, duration_ms, status_code, error, response_body, succeeded, manual, url,
             started_at)
), finished AS (
    INSERT INTO {SCHEMA}.delivery_attempts AS a (id, delivery_id, number, trigger, url, started_at, finished_at,
        duration_ms, status_code, error, response_body, succeeded)
    SELECT f.id, f.delivery_id, f.number, CASE WHEN f.manual THEN 'manual' ELSE 'scheduled' END, f.url,
           f.started_at, clock_timestamp(), f.duration_ms, f.status_code, f.error, f.response_body, f.succeeded
    FROM f WHERE EXISTS (SELECT 1 FROM {SCHEMA}.deliveries d WHERE d.id = f.delivery_id)
    ON CONFLICT (delivery_id, number) DO UPDATE SET finished_at = excluded.finished_at,
        duration_ms = excluded.duration_ms, status_code = excluded.status_code, error = excluded.error,
        response_body = excluded.response_body, succeeded = excluded.succeeded
    RETURNING a.delivery_id, a.number, a.finished_at
), won AS (
    UPDATE {SCHEMA}.deliveries d SET status = 'succeeded', next_attempt_at = NULL, lease_until = NULL,
        swept_at = NULL, manual = false, failure_reason = NULL, completed_at = now(), updated_at = now()
    FROM f WHERE d.id = f.delivery_id AND f.succeeded AND d.status = 'pending' AND d.attempts_made = f.number
    RETURNING f.id
)
SELECT f.id, finished.finished_at, won.id IS NOT NULL AS won
FROM f LEFT JOIN finished ON finished.delivery_id = f.delivery_id AND finished.number = f.number
LEFT JOIN won ON won.id = f.id
"""


async def finish_and_settle_successes(
    conn: asyncpg.Connection, finished: Sequence[FinishedAttempt]
) -> dict[uuid.UUID, tuple[datetime | None, bool]]:
    """Write the attempts with their outcomes and end as succeeded the deliveries whose attempt
    succeeded and which this worker still holds, in one statement; returns, per attempt, its
    finishing time by the database's clock (None: its delivery is gone) and whether its delivery
    ended as succeeded here. Error text is stored without NULs (PostgreSQL text cannot hold them),
    bodies as the bytes they were."""
    rows = await conn.fetch(
        _FINISH,
        [f.attempt_id for f in finished],
        [f.delivery_id for f in finished],
        [f.number for f in finished],
        [f.duration_ms for f in finished],
        [f.status_code for f in finished],
        [f.error.replace("\x00", "") if f.error is not None else None for f in finished],
        [f.response_body for f in finished],
        [f.succeeded for f in finished],
        [f.manual for f in finished],
        [f.url for f in finished],
        [f.started_at for f in finished],
    )
    return {r["id"]: (r["finished_at"], r["won"]) for r in rows}


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
