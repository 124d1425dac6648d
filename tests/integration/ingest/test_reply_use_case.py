"""Ingest's use-case for an attendee's answer, on the real database (no broker needed): the answer
lands on that attendee only, raises the sequence, is published as event.updated through the outbox,
and an answer from someone not invited, or the same answer again, changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from services.ingest.api.schemas import CalendarBody, EventBody
from services.ingest.services import Ingest
from services.ingest.services._base import Account
from shared import db
from shared.crypto import SecretBox
from shared.messages import AttendeeReplied


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(database_url, min_size=1, max_size=2)
    yield p
    await p.close()


def answer(account: Account, event_id: uuid.UUID, email: str, partstat: str) -> AttendeeReplied:
    return AttendeeReplied(
        account_id=account.account_id,
        event_id=event_id,
        uid=str(event_id),
        attendee_email=email,
        partstat=partstat,
        replied_at=datetime.now(UTC),
    )


async def test_an_answer_sets_that_attendees_partstat_and_is_published_once(pool: asyncpg.Pool) -> None:
    ingest = Ingest(pool, "https://feeds.example.test", secrets=SecretBox([SecretBox.generate_key()]))
    account = Account(uuid.uuid4(), f"acct{uuid.uuid4().hex[:8]}")
    await ingest.create_calendar(account, CalendarBody.model_validate({"code": "launch", "name": "Launch"}))
    body = EventBody.model_validate(
        {
            "title": "Launch party",
            "start": "2026-12-10T18:00:00",
            "end": "2026-12-10T20:00:00",
            "attendees": [{"email": "ann@example.com"}, {"email": "bob@example.com"}],
            "notify": True,
        }
    )
    event, _ = await ingest.save_event(account, "launch", body)
    assert event.notify is True

    async with pool.acquire() as conn, conn.transaction():
        updated = await ingest.apply_reply(conn, answer(account, event.event_id, "Ann@Example.com", "ACCEPTED"))
    assert updated is not None and updated.sequence == event.sequence + 1
    assert [(p.email, p.partstat) for p in updated.attendees] == [
        ("ann@example.com", "ACCEPTED"),
        ("bob@example.com", None),
    ]
    async with pool.acquire() as conn, conn.transaction():
        again = await ingest.apply_reply(conn, answer(account, event.event_id, "ann@example.com", "ACCEPTED"))
        stranger = await ingest.apply_reply(conn, answer(account, event.event_id, "eve@example.com", "DECLINED"))
        elsewhere = await ingest.apply_reply(
            conn, answer(Account(uuid.uuid4(), "other"), event.event_id, "ann@example.com", "DECLINED")
        )
    assert again is not None and again.sequence == updated.sequence  # the same answer: no change
    assert stranger is None and elsewhere is None
    rows = await pool.fetch("SELECT body FROM ingest.outbox WHERE routing_key = 'event.updated' ORDER BY seq")
    published = [json.loads(r["body"])["data"] for r in rows]
    assert len(published) == 1 and published[0]["attendees"][0]["partstat"] == "ACCEPTED"
    stored = await ingest.get_event(account, "launch", str(event.event_id))
    assert stored.attendees[0].partstat == "ACCEPTED"
