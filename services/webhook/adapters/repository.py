"""The webhook schema in PostgreSQL: endpoints, events, deliveries and their attempts.

Every function takes a connection; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.crypto import SecretBox

SCHEMA = "webhook"

ORPHANED_ATTEMPT = "the worker stopped before this attempt finished; its outcome is unknown"


def open_secret(box: SecretBox, encrypted: str | None, plaintext: str | None) -> str | None:
    """A stored signing secret in the clear: decrypted, or a row's plaintext not yet converted."""
    return box.decrypt(encrypted) if encrypted is not None else plaintext


@dataclass(frozen=True)
class Endpoint:
    id: uuid.UUID
    account_id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # Decrypted only when read with a SecretBox (creation and rotation show the secret once).
    secret: str | None = None
    previous_secret: str | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record, box: SecretBox | None = None) -> Endpoint:
        fields: dict[str, Any] = {n: row[n] for n in cls.__dataclass_fields__ if n not in ("secret", "previous_secret")}
        if box is not None:
            fields["secret"] = open_secret(box, row["secret_encrypted"], row["secret"])
            fields["previous_secret"] = open_secret(box, row["previous_secret_encrypted"], row["previous_secret"])
        return cls(**fields)


_ENDPOINT_COLUMNS = (
    "id, account_id, url, description, event_types, enabled, secret, secret_encrypted, previous_secret,"
    " previous_secret_encrypted, previous_secret_expires_at, created_at, updated_at"
)


async def insert_endpoint(
    conn: asyncpg.Connection,
    box: SecretBox,
    *,
    account_id: uuid.UUID,
    url: str,
    description: str,
    event_types: list[str],
    enabled: bool,
    secret: str,
) -> Endpoint:
    row = await conn.fetchrow(
        f"INSERT INTO {SCHEMA}.endpoints (id, account_id, url, description, event_types, enabled, secret_encrypted)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_ENDPOINT_COLUMNS}",
        uuid.uuid4(),
        account_id,
        url,
        description,
        event_types,
        enabled,
        box.encrypt(secret),
    )
    return Endpoint.from_row(row, box)


async def count_endpoints(conn: asyncpg.Connection, account_id: uuid.UUID) -> int:
    count: int = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.endpoints WHERE account_id = $1", account_id)
    return count


async def list_endpoints(conn: asyncpg.Connection, account_id: uuid.UUID) -> list[Endpoint]:
    rows = await conn.fetch(
        f"SELECT {_ENDPOINT_COLUMNS} FROM {SCHEMA}.endpoints WHERE account_id = $1 ORDER BY created_at, id",
        account_id,
    )
    return [Endpoint.from_row(r) for r in rows]


async def get_endpoint(
    conn: asyncpg.Connection,
    account_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    for_update: bool = False,
    box: SecretBox | None = None,
) -> Endpoint | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_ENDPOINT_COLUMNS} FROM {SCHEMA}.endpoints WHERE account_id = $1 AND id = $2{lock}",
        account_id,
        endpoint_id,
    )
    return Endpoint.from_row(row, box) if row else None


async def update_endpoint(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, changes: dict[str, Any], box: SecretBox | None = None
) -> Endpoint:
    """Apply `changes`; a `secret` or `previous_secret` among them (which needs `box`) is stored encrypted."""
    changes = dict(changes)
    for name in ("secret", "previous_secret"):
        if name in changes:
            if box is None:
                raise ValueError(f"changing {name} needs the SecretBox to encrypt it")
            value = changes.pop(name)
            changes[f"{name}_encrypted"] = box.encrypt(value) if value is not None else None
            changes[name] = None  # the plaintext column stays empty
    allowed = {
        "url",
        "description",
        "event_types",
        "enabled",
        "secret",
        "secret_encrypted",
        "previous_secret",
        "previous_secret_encrypted",
        "previous_secret_expires_at",
    }
    names = [name for name in changes if name in allowed]
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    sets = f"{assignments}, updated_at = now()" if assignments else "updated_at = now()"
    row = await conn.fetchrow(
        f"UPDATE {SCHEMA}.endpoints SET {sets} WHERE id = $1 RETURNING {_ENDPOINT_COLUMNS}",
        endpoint_id,
        *(changes[name] for name in names),
    )
    return Endpoint.from_row(row, box)


async def delete_endpoint(conn: asyncpg.Connection, account_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
    result = await conn.execute(
        f"DELETE FROM {SCHEMA}.endpoints WHERE account_id = $1 AND id = $2", account_id, endpoint_id
    )
    return result != "DELETE 0"


async def endpoints_wanting(conn: asyncpg.Connection, account_id: uuid.UUID, event_type: str) -> list[uuid.UUID]:
    wanted = await endpoints_wanting_many(conn, [(account_id, event_type)])
    return wanted.get((account_id, event_type), [])


async def endpoints_wanting_many(
    conn: asyncpg.Connection, wants: Sequence[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], list[uuid.UUID]]:
    """The enabled endpoints that want each (account, event type), oldest first; one query for all."""
    rows = await conn.fetch(
        f"SELECT w.account_id, w.event_type, e.id FROM unnest($1::uuid[], $2::text[]) AS w(account_id, event_type)"
        f" JOIN {SCHEMA}.endpoints e ON e.account_id = w.account_id AND e.enabled AND w.event_type = ANY(e.event_types)"
        " ORDER BY e.created_at, e.id",
        [account for account, _ in wants],
        [event_type for _, event_type in wants],
    )
    wanted: dict[tuple[uuid.UUID, str], list[uuid.UUID]] = {}
    for row in rows:
        wanted.setdefault((row["account_id"], row["event_type"]), []).append(row["id"])
    return wanted


# --- events and deliveries -----------------------------------------------------------------------


@dataclass(frozen=True)
class NewEvent:
    """An event to store, and the endpoints it goes to (a delivery each)."""

    event_id: uuid.UUID
    account_id: uuid.UUID
    event_type: str
    body: bytes
    endpoint_ids: Sequence[uuid.UUID]
    source_message_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None


async def insert_events(conn: asyncpg.Connection, events: Sequence[NewEvent]) -> list[uuid.UUID]:
    """The events and a delivery to each of their endpoints, due now, in one statement; returns the
    deliveries' ids. Deliveries are created a microsecond apart, in the order given, so that an
    endpoint's deliveries made together are attempted in that order (claims go oldest first)."""
    deliveries = [(uuid.uuid4(), e.event_id, endpoint) for e in events for endpoint in e.endpoint_ids]
    await conn.execute(
        f"WITH event AS (INSERT INTO {SCHEMA}.events"
        " (id, account_id, event_type, source_message_id, subscription_id, body)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::bytea[]))"
        f" INSERT INTO {SCHEMA}.deliveries (id, event_id, endpoint_id, next_attempt_at, created_at)"
        " SELECT d.id, d.event_id, d.endpoint_id, now(), now() + make_interval(secs => d.n / 1000000.0)"
        " FROM unnest($7::uuid[], $8::uuid[], $9::uuid[]) WITH ORDINALITY AS d(id, event_id, endpoint_id, n)",
        [e.event_id for e in events],
        [e.account_id for e in events],
        [e.event_type for e in events],
        [e.source_message_id for e in events],
        [e.subscription_id for e in events],
        [e.body for e in events],
        [d[0] for d in deliveries],
        [d[1] for d in deliveries],
        [d[2] for d in deliveries],
    )
    return [d[0] for d in deliveries]


@dataclass(frozen=True)
class IncomingMessageEvent:
    """A broker message's webhook event, before anyone knows which endpoints want it."""

    event_id: uuid.UUID  # the message's id, also the event's id and its source_message_id
    account_id: uuid.UUID
    event_type: str
    subscription_id: uuid.UUID | None
    body: bytes


# The consumer's whole batch in one statement (one round trip, one commit, no BEGIN/COMMIT): record
# the message ids (the shared consumer's processed_messages rule); for the ids that were new, the
# endpoints that want each event; the events that have any; a delivery to each, due now, created a
# microsecond apart in message order then endpoint age (claims go oldest first, so an endpoint's
# deliveries made together are attempted in that order). The sub-statements share one snapshot:
# `wanted` sees only this statement's `fresh` ids, and the deliveries' foreign key is checked at the
# end of the statement, when the events are there. Returns one row per new message id with how many
# deliveries it made (0: no endpoint wanted it, and its event was not stored).
_RECORD_AND_FAN_OUT = f"""
WITH incoming AS (
    SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::bytea[]) WITH ORDINALITY
        AS i(id, account_id, event_type, subscription_id, body, n)
), fresh AS (
    INSERT INTO {SCHEMA}.processed_messages (consumer, message_id) SELECT $1, id FROM incoming
    ON CONFLICT DO NOTHING RETURNING message_id
), wanted AS (
    SELECT i.id, i.n, e.id AS endpoint_id, row_number() OVER (ORDER BY i.n, e.created_at, e.id) AS k
    FROM incoming i JOIN fresh f ON f.message_id = i.id
    JOIN {SCHEMA}.endpoints e ON e.account_id = i.account_id AND e.enabled AND i.event_type = ANY(e.event_types)
), stored AS (
    INSERT INTO {SCHEMA}.events (id, account_id, event_type, source_message_id, subscription_id, body)
    SELECT i.id, i.account_id, i.event_type, i.id, i.subscription_id, i.body FROM incoming i
    WHERE i.id IN (SELECT id FROM wanted)
), made AS (
    INSERT INTO {SCHEMA}.deliveries (id, event_id, endpoint_id, next_attempt_at, created_at)
    SELECT gen_random_uuid(), w.id, w.endpoint_id, now(), now() + make_interval(secs => w.k / 1000000.0)
    FROM wanted w
)
SELECT f.message_id, count(w.endpoint_id) AS deliveries
FROM fresh f LEFT JOIN wanted w ON w.id = f.message_id GROUP BY f.message_id
"""


async def record_and_fan_out(
    conn: asyncpg.Connection, consumer: str, events: Sequence[IncomingMessageEvent]
) -> dict[uuid.UUID, int]:
    """Record the messages as processed by `consumer` and, for those not processed before, store
    the event and its deliveries where an enabled endpoint wants it; one statement, atomic on its
    own. `events` must not repeat an id. Returns, per new message id, how many deliveries it made."""
    rows = await conn.fetch(
        _RECORD_AND_FAN_OUT,
        consumer,
        [e.event_id for e in events],
        [e.account_id for e in events],
        [e.event_type for e in events],
        [e.subscription_id for e in events],
        [e.body for e in events],
    )
    return {r["message_id"]: r["deliveries"] for r in rows}


@dataclass(frozen=True)
class ClaimedAttempt:
    """An attempt this worker has claimed: what to send, where, signed with which secrets."""

    attempt_id: uuid.UUID
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    number: int
    manual: bool
    url: str
    signing_secrets: list[str]
    body: bytes
    first_attempt_at: datetime
    started_at: datetime  # when it was claimed, by the database's clock


async def finish_attempt(
    conn: asyncpg.Connection,
    claimed: ClaimedAttempt,
    *,
    duration_ms: float,
    status_code: int | None,
    error: str | None,
    response_body: bytes | None,
    succeeded: bool,
) -> datetime:
    """Write a claimed attempt's row with its outcome (over the orphaned row a claim wrote if this
    worker lost its lease meanwhile); returns the database's clock at that moment. The error text is
    stored without NULs (PostgreSQL text cannot hold them); the body is stored as the bytes it was."""
    finished: datetime = await conn.fetchval(
        f"INSERT INTO {SCHEMA}.delivery_attempts AS a (id, delivery_id, number, trigger, url, started_at,"
        " finished_at, duration_ms, status_code, error, response_body, succeeded)"
        " VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp(), $7, $8, $9, $10, $11)"
        " ON CONFLICT (delivery_id, number) DO UPDATE SET finished_at = excluded.finished_at,"
        " duration_ms = excluded.duration_ms, status_code = excluded.status_code, error = excluded.error,"
        " response_body = excluded.response_body, succeeded = excluded.succeeded"
        " RETURNING a.finished_at",
        claimed.attempt_id,
        claimed.delivery_id,
        claimed.number,
        "manual" if claimed.manual else "scheduled",
        claimed.url,
        claimed.started_at,
        duration_ms,
        status_code,
        error.replace("\x00", "") if error is not None else None,
        response_body,
        succeeded,
    )
    return finished


async def abandon_delivery(conn: asyncpg.Connection, delivery_id: uuid.UUID, reason: str) -> None:
    """The last resort when an attempt's outcome cannot be recorded: the delivery ends as failed,
    with the reason, so nothing sends it again unasked (an operator can retry it)."""
    await conn.execute(
        f"UPDATE {SCHEMA}.deliveries SET status = 'failed', next_attempt_at = NULL, lease_until = NULL,"
        " manual = false, failure_reason = $2, completed_at = now(), updated_at = now()"
        " WHERE id = $1 AND status = 'pending'",
        delivery_id,
        reason.replace("\x00", "")[:1000],
    )


async def lock_delivery(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT id, status, attempts_made, manual FROM {SCHEMA}.deliveries WHERE id = $1 FOR UPDATE", delivery_id
    )


async def complete_delivery(conn: asyncpg.Connection, delivery_id: uuid.UUID, status: str) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.deliveries SET status = $2, next_attempt_at = NULL, lease_until = NULL, manual = false,"
        " failure_reason = CASE WHEN $2 = 'failed' THEN 'every attempt failed' ELSE NULL END,"
        " completed_at = now(), updated_at = now() WHERE id = $1",
        delivery_id,
        status,
    )


async def schedule_delivery(conn: asyncpg.Connection, delivery_id: uuid.UUID, due_at: datetime) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.deliveries SET next_attempt_at = $2, lease_until = NULL, swept_at = NULL,"
        " updated_at = now() WHERE id = $1",
        delivery_id,
        due_at,
    )


# --- the record --------------------------------------------------------------------------------


_DELIVERY_COLUMNS = (
    "d.id, d.event_id, ev.event_type, d.endpoint_id, d.status, d.attempts_made, d.first_attempt_at,"
    " d.next_attempt_at, d.manual, d.failure_reason, d.created_at, d.updated_at, d.completed_at, ev.body"
)


async def list_deliveries(
    conn: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    *,
    limit: int,
    status: str | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[asyncpg.Record]:
    """An endpoint's deliveries, newest first, a page at a time (keyset on created_at, id)."""
    args: list[Any] = [endpoint_id, limit]
    where = "d.endpoint_id = $1"
    if status is not None:
        args.append(status)
        where += f" AND d.status = ${len(args)}"
    if before is not None:
        args.extend(before)
        where += f" AND (d.created_at, d.id) < (${len(args) - 1}, ${len(args)})"
    return await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM {SCHEMA}.deliveries d JOIN {SCHEMA}.events ev ON ev.id = d.event_id"
        f" WHERE {where} ORDER BY d.created_at DESC, d.id DESC LIMIT $2",
        *args,
    )


async def get_delivery(
    conn: asyncpg.Connection, account_id: uuid.UUID, delivery_id: uuid.UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE OF d" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {_DELIVERY_COLUMNS}, e.enabled AS endpoint_enabled FROM {SCHEMA}.deliveries d"
        f" JOIN {SCHEMA}.events ev ON ev.id = d.event_id JOIN {SCHEMA}.endpoints e ON e.id = d.endpoint_id"
        f" WHERE d.id = $1 AND e.account_id = $2{lock}",
        delivery_id,
        account_id,
    )


async def attempts_of(conn: asyncpg.Connection, delivery_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    rows = await conn.fetch(
        f"SELECT delivery_id, number, trigger, url, started_at, finished_at, duration_ms, status_code, error,"
        f" response_body, succeeded FROM {SCHEMA}.delivery_attempts WHERE delivery_id = ANY($1::uuid[])"
        " ORDER BY delivery_id, number",
        delivery_ids,
    )
    out: dict[uuid.UUID, list[asyncpg.Record]] = {i: [] for i in delivery_ids}
    for row in rows:
        out[row["delivery_id"]].append(row)
    return out


async def request_manual_attempt(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.deliveries SET status = 'pending', manual = true, next_attempt_at = now(),"
        " lease_until = NULL, swept_at = NULL, failure_reason = NULL, completed_at = NULL, updated_at = now()"
        " WHERE id = $1",
        delivery_id,
    )
