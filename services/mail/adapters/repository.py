"""The mail schema in PostgreSQL: invitations, deliveries and their attempts.

Every function takes a connection; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

SCHEMA = "mail"

ORPHANED_ATTEMPT = "the worker stopped before this attempt finished; its outcome is unknown"


async def insert_invitation(conn: asyncpg.Connection, **columns: object) -> None:
    names = list(columns)
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    await conn.execute(
        f"INSERT INTO {SCHEMA}.invitations ({', '.join(names)}) VALUES ({placeholders})", *columns.values()
    )


async def insert_delivery(
    conn: asyncpg.Connection,
    *,
    invitation_id: uuid.UUID,
    account_id: uuid.UUID,
    uid: str,
    method: str,
    sequence: int,
    email: str,
    name: str | None,
    message_id: str,
) -> uuid.UUID | None:
    """A queued delivery due now; None when this (uid, method, sequence, attendee) exists already."""
    delivery_id: uuid.UUID | None = await conn.fetchval(
        f"INSERT INTO {SCHEMA}.deliveries (id, invitation_id, account_id, uid, method, sequence, attendee_email,"
        " attendee_name, message_id, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())"
        " ON CONFLICT (account_id, uid, method, sequence, attendee_email) DO NOTHING RETURNING id",
        uuid.uuid4(),
        invitation_id,
        account_id,
        uid,
        method,
        sequence,
        email,
        name,
        message_id,
    )
    return delivery_id


async def last_fingerprint(conn: asyncpg.Connection, account_id: uuid.UUID, uid: str) -> str | None:
    """The significant content of the latest request sent for `uid` (catalog events only)."""
    fingerprint: str | None = await conn.fetchval(
        f"SELECT fingerprint FROM {SCHEMA}.invitations WHERE account_id = $1 AND uid = $2 AND method = 'REQUEST'"
        " ORDER BY sequence DESC, created_at DESC LIMIT 1",
        account_id,
        uid,
    )
    return fingerprint


async def invitation_for_reply(
    conn: asyncpg.Connection, invitation_id: uuid.UUID | None, uid: str, attendee: str
) -> asyncpg.Record | None:
    """The request a reply answers: the one its address names, else (a reply to our plain address)
    the latest request of that UID sent to that attendee."""
    if invitation_id is not None:
        return await conn.fetchrow(
            f"SELECT account_id, uid, event_id FROM {SCHEMA}.invitations WHERE id = $1 AND uid = $2",
            invitation_id,
            uid,
        )
    return await conn.fetchrow(
        f"SELECT i.account_id, i.uid, i.event_id FROM {SCHEMA}.invitations i"
        f" JOIN {SCHEMA}.deliveries d ON d.invitation_id = i.id"
        f" WHERE i.uid = $1 AND d.attendee_email = $2 AND i.method = 'REQUEST'"
        f" ORDER BY i.created_at DESC LIMIT 1",
        uid,
        attendee,
    )


async def set_partstat(
    conn: asyncpg.Connection, account_id: uuid.UUID, uid: str, attendee: str, partstat: str
) -> str | None:
    """The attendee's answer on their request deliveries of `uid`; returns the answer they had
    before (None: we never sent them a request)."""
    previous: str | None = await conn.fetchval(
        f"SELECT partstat FROM {SCHEMA}.deliveries WHERE account_id = $1 AND uid = $2 AND attendee_email = $3"
        " AND method = 'REQUEST' ORDER BY sequence DESC LIMIT 1 FOR UPDATE",
        account_id,
        uid,
        attendee,
    )
    if previous is None:
        return None
    await conn.execute(
        f"UPDATE {SCHEMA}.deliveries SET partstat = $4, replied_at = now(), updated_at = now()"
        " WHERE account_id = $1 AND uid = $2 AND attendee_email = $3 AND method = 'REQUEST'",
        account_id,
        uid,
        attendee,
        partstat,
    )
    return previous


async def delete_invitation(conn: asyncpg.Connection, invitation_id: uuid.UUID) -> None:
    await conn.execute(f"DELETE FROM {SCHEMA}.invitations WHERE id = $1", invitation_id)


async def last_sent(conn: asyncpg.Connection, account_id: uuid.UUID, uid: str) -> dict[str, tuple[str, int]]:
    """Per attendee of `uid`: the method and sequence of the latest invitation recorded for them."""
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (attendee_email) attendee_email, method, sequence FROM {SCHEMA}.deliveries"
        " WHERE account_id = $1 AND uid = $2 ORDER BY attendee_email, sequence DESC, (method = 'CANCEL') DESC,"
        " created_at DESC",
        account_id,
        uid,
    )
    return {r["attendee_email"]: (r["method"], r["sequence"]) for r in rows}


@dataclass(frozen=True)
class Claimed:
    """A delivery whose attempt this worker has claimed, with what to build its message from."""

    delivery_id: uuid.UUID
    attempt_id: uuid.UUID
    number: int
    first_attempt_at: datetime
    row: asyncpg.Record  # the delivery joined with its invitation


async def claim_due(conn: asyncpg.Connection, limit: int, lease_seconds: float) -> list[Claimed]:
    """Claim up to `limit` due deliveries nobody holds; each gets an attempt row before anything is sent."""
    rows = await conn.fetch(
        f"SELECT d.id, d.invitation_id, d.attempts_made, d.first_attempt_at, d.attendee_email, d.attendee_name,"
        f" d.message_id, d.method, d.sequence, i.calendar, i.organizer_email, i.organizer_name,"
        f" i.subject, i.body, i.locale,"
        f" i.attach, i.inline, i.hide_attendees, clock_timestamp() AS now"
        f" FROM {SCHEMA}.deliveries d JOIN {SCHEMA}.invitations i ON i.id = d.invitation_id"
        f" WHERE d.status = 'queued' AND d.next_attempt_at <= clock_timestamp()"
        f" AND (d.lease_until IS NULL OR d.lease_until < clock_timestamp())"
        f" ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED",
        limit,
    )
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    now: datetime = rows[0]["now"]
    await conn.execute(
        f"UPDATE {SCHEMA}.attempts SET finished_at = clock_timestamp(), succeeded = false, error = $2"
        " WHERE delivery_id = ANY($1::uuid[]) AND finished_at IS NULL",
        ids,
        ORPHANED_ATTEMPT,
    )
    claimed = [Claimed(r["id"], uuid.uuid4(), r["attempts_made"] + 1, r["first_attempt_at"] or now, r) for r in rows]
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.attempts (id, delivery_id, number, started_at) VALUES ($1, $2, $3, $4)",
        [(c.attempt_id, c.delivery_id, c.number, now) for c in claimed],
    )
    await conn.executemany(
        f"UPDATE {SCHEMA}.deliveries SET attempts_made = $2, first_attempt_at = COALESCE(first_attempt_at, $3),"
        " lease_until = $3 + make_interval(secs => $4), updated_at = now() WHERE id = $1",
        [(c.delivery_id, c.number, now, lease_seconds) for c in claimed],
    )
    return claimed


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: `status` is the delivery's afterwards (queued means retry at `due_at`)."""

    claimed: Claimed
    status: str
    code: int | None
    answer: str | None
    error: str | None
    due_at: datetime | None = None


async def record(conn: asyncpg.Connection, outcomes: list[Outcome]) -> None:
    await conn.executemany(
        f"UPDATE {SCHEMA}.attempts SET finished_at = clock_timestamp(), smtp_code = $2, smtp_answer = $3,"
        " error = $4, succeeded = $5 WHERE id = $1",
        [(o.claimed.attempt_id, o.code, o.answer, o.error, o.status == "sent") for o in outcomes],
    )
    await conn.executemany(
        f"UPDATE {SCHEMA}.deliveries SET status = $2, smtp_code = $3, smtp_answer = $4, lease_until = NULL,"
        " next_attempt_at = $5, sent_at = CASE WHEN $2 = 'sent' THEN clock_timestamp() END, updated_at = now()"
        " WHERE id = $1 AND status = 'queued' AND attempts_made = $6",
        [(o.claimed.delivery_id, o.status, o.code, o.answer or o.error, o.due_at, o.claimed.number) for o in outcomes],
    )


async def list_deliveries(
    conn: asyncpg.Connection, account_id: uuid.UUID, *, uid: str | None, status: str | None, limit: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"SELECT id, uid, method, sequence, attendee_email, attendee_name, status, partstat, attempts_made,"
            f" smtp_code, smtp_answer, message_id, created_at, sent_at, replied_at FROM {SCHEMA}.deliveries"
            f" WHERE account_id = $1 AND ($2::text IS NULL OR uid = $2) AND ($3::text IS NULL OR status = $3)"
            f" ORDER BY created_at DESC, id DESC LIMIT $4",
            account_id,
            uid,
            status,
            limit,
        )
    )
