"""Statements shared by concurrent requests (shared.grouping) keep what one statement each gave.
New subscriptions inserted together (NewSubscriptionWriter): every subscription commits with its
outbox row, a subscriber racing itself gets one, a row the database refuses fails only its own
request. Subscribe's lookups (subscribe_targets) and subscription reads (subscriptions_with_calendar),
grouped by shared.grouping.on_pool and asked together: each request gets its own answer, in order, as
a lone statement would have given it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from services.ingest.adapters.subscription_queries import (
    NewSubscription,
    NewSubscriptionWriter,
    SubscribeTarget,
    subscribe_targets,
    subscriptions_with_calendar,
)
from shared import db
from shared.grouping import on_pool
from shared.messages import AccountCreated, make_envelope


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(database_url, min_size=1, max_size=4, reset_session=False)
    try:
        yield pool
    finally:
        await pool.close()


async def _calendar(pool: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID]:
    account_id, calendar_id = uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO ingest.accounts (account_id, account_code) VALUES ($1, 'grouped')", account_id)
        await conn.execute(
            "INSERT INTO ingest.calendars (calendar_id, account_id, code, name) VALUES ($1, $2, 'cal', 'Cal')",
            calendar_id,
            account_id,
        )
    return account_id, calendar_id


def _new(account_id: uuid.UUID, calendar_id: uuid.UUID, subscriber: str) -> NewSubscription:
    subscription_id = uuid.uuid4()
    # Any message does for the outbox; its correlation id ties it to its subscription here.
    data = AccountCreated(account_id=account_id, account_code="grouped", name="Grouped")
    envelope = make_envelope("account.created", data, correlation_id=str(subscription_id))
    return NewSubscription(
        subscription_id=subscription_id,
        account_id=account_id,
        calendar_id=calendar_id,
        subscription_type="webcal",
        subscriber_id=subscriber,
        feed_username=None,
        feed_password_hash=None,
        feed_password_encrypted=None,
        details={"email_address": f"{subscriber}@example.com"},
        active=True,
        created_at=datetime.now(UTC),
        envelopes=[envelope],
    )


async def _stored(pool: asyncpg.Pool) -> tuple[dict[uuid.UUID, str], dict[str, int]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT subscription_id, subscriber_id, details FROM ingest.subscriptions")
        outbox = await conn.fetch("SELECT convert_from(body, 'UTF8') AS body FROM ingest.outbox")
    subscriptions = {r["subscription_id"]: r["subscriber_id"] for r in rows}
    for r in rows:
        assert r["details"] == {"email_address": f"{r['subscriber_id']}@example.com"}
    announced: dict[str, int] = {}
    for r in outbox:
        for subscription_id in subscriptions:
            if str(subscription_id) in r["body"]:
                announced[str(subscription_id)] = announced.get(str(subscription_id), 0) + 1
    assert len(announced) == len(outbox), "an outbox row without its subscription"
    return subscriptions, announced


async def test_concurrent_new_subscriptions_share_statements_and_each_commits_with_its_outbox_row(
    pool: asyncpg.Pool,
) -> None:
    account_id, calendar_id = await _calendar(pool)
    writer = NewSubscriptionWriter(pool)
    news = [_new(account_id, calendar_id, f"fan-{i}") for i in range(40)]
    answers = await asyncio.gather(*(writer.insert(n) for n in news))
    assert answers == [True] * 40
    assert writer.statements < 40  # grouped: requests queue while a statement commits
    subscriptions, announced = await _stored(pool)
    assert subscriptions == {n.subscription_id: n.subscriber_id for n in news}
    assert announced == {str(n.subscription_id): 1 for n in news}


async def test_a_subscriber_twice_in_one_statement_gets_one_subscription_and_one_message(pool: asyncpg.Pool) -> None:
    account_id, calendar_id = await _calendar(pool)
    writer = NewSubscriptionWriter(pool)
    first, second, other = (_new(account_id, calendar_id, s) for s in ("twin", "twin", "solo"))
    answers = await asyncio.gather(writer.insert(first), writer.insert(second), writer.insert(other))
    assert answers[2] is True and sorted(answers[:2]) == [False, True]
    winner = first if answers[0] else second
    subscriptions, announced = await _stored(pool)
    assert subscriptions == {winner.subscription_id: "twin", other.subscription_id: "solo"}
    assert announced == {str(winner.subscription_id): 1, str(other.subscription_id): 1}


async def test_a_row_the_database_refuses_fails_its_own_request_only(pool: asyncpg.Pool) -> None:
    account_id, calendar_id = await _calendar(pool)
    writer = NewSubscriptionWriter(pool)
    good = [_new(account_id, calendar_id, f"good-{i}") for i in range(5)]
    orphan = _new(account_id, uuid.uuid4(), "orphan")  # no such calendar: the foreign key refuses it
    answers = await asyncio.gather(*(writer.insert(n) for n in [*good[:3], orphan, *good[3:]]), return_exceptions=True)
    assert isinstance(answers[3], asyncpg.ForeignKeyViolationError)
    assert [a for i, a in enumerate(answers) if i != 3] == [True] * 5
    subscriptions, announced = await _stored(pool)
    assert subscriptions == {n.subscription_id: n.subscriber_id for n in good}
    assert announced == {str(n.subscription_id): 1 for n in good}


async def test_grouped_lookups_answer_each_request_as_a_lone_lookup_would(pool: asyncpg.Pool) -> None:
    account_id, calendar_id = await _calendar(pool)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE ingest.accounts SET name = 'Grouped FC' WHERE account_id = $1", account_id)
    await NewSubscriptionWriter(pool).insert(_new(account_id, calendar_id, "known"))
    stranger = uuid.uuid4()  # an account this service has not seen: its row is made on first use
    targets = on_pool(pool, subscribe_targets, name="test-targets")
    asked = [
        SubscribeTarget(account_id, "grouped", "cal", "known", "webcal"),
        SubscribeTarget(account_id, "grouped", "CAL", "new-fan", "webcal"),
        SubscribeTarget(account_id, "grouped", "cal", "known", "google"),  # another type: not the same one
        SubscribeTarget(account_id, "grouped", "no-such-calendar", "known", "webcal"),
        SubscribeTarget(stranger, "stranger", "cal", "fan", "webcal"),
        SubscribeTarget(stranger, "stranger", "cal", "fan", "webcal"),
    ]
    first = asyncio.ensure_future(targets(asked[0]))
    await asyncio.sleep(0)  # in flight: the rest queue behind it and go in one statement
    found = [await first, *await asyncio.gather(*(targets(t) for t in asked[1:]))]
    assert targets.calls == 2
    assert found[0] is not None and found[0]["calendar_id"] == calendar_id
    assert found[0]["merchant_name"] == "Grouped FC" and found[0]["existing_id"] is not None
    assert found[1] is not None and found[1]["calendar_id"] == calendar_id and found[1]["existing_id"] is None
    assert found[2] is not None and found[2]["existing_id"] is None
    assert found[3] is None and found[4] is None and found[5] is None
    async with pool.acquire() as conn:
        made = await conn.fetchval("SELECT account_code FROM ingest.accounts WHERE account_id = $1", stranger)
    assert made == "stranger"


async def test_grouped_reads_answer_each_id_in_the_order_asked(pool: asyncpg.Pool) -> None:
    account_id, calendar_id = await _calendar(pool)
    writer = NewSubscriptionWriter(pool)
    news = [_new(account_id, calendar_id, f"reader-{i}") for i in range(5)]
    await asyncio.gather(*(writer.insert(n) for n in news))
    reader = on_pool(pool, subscriptions_with_calendar, name="test-reads")
    unknown = uuid.uuid4()
    ids = [news[3].subscription_id, unknown, news[0].subscription_id, news[3].subscription_id, news[1].subscription_id]
    first = asyncio.ensure_future(reader(news[4].subscription_id))
    await asyncio.sleep(0)
    rows = [await first, *await asyncio.gather(*(reader(i) for i in ids))]
    assert reader.calls == 2
    assert [r["subscription_id"] if r is not None else None for r in rows] == [
        news[4].subscription_id,
        *[None if i == unknown else i for i in ids],
    ]
    row = rows[1]
    assert row is not None
    assert row["subscriber_id"] == "reader-3" and row["calendar_code"] == "cal" and row["calendar_name"] == "Cal"
    assert row["tags"] == [] and row["manual"] == []
