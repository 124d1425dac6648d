"""Seed ingest's schema with a big tenant population, by COPY: the "cost as data grows" fixture.

1,000 accounts, each with one calendar of 5 tags; 1,000,000 subscriptions (1,000 per calendar) and
100,000 calendar events (100 per calendar), each a row the API would have written: subscriptions
with the `details` a subscribe stores, events with their `data` as EventData, and for every event
its (sent) outbox row, the day of traffic the relay keeps before purging. Then VACUUM (ANALYZE) and
a CHECKPOINT, as autovacuum and the checkpointer would have done on a database that grew this way.

Rows are built in Python (one template per kind, ids varied) and written with
`copy_records_to_table` on a connection without JSON codecs, so jsonb travels as ready text.
`capture_plans` then records `EXPLAIN (ANALYZE, BUFFERS)` of the hot queries against it (writes
rolled back). `python -m bench.seed_ingest <database url>` seeds a migrated database on its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from services.ingest.adapters import subscription_queries as queries
from shared import db
from shared.messages import EventData, SubscriptionData, make_envelope

SCHEMA = "ingest"
ACCOUNTS = 1_000
SUBSCRIPTIONS_PER_CALENDAR = 1_000
EVENTS_PER_CALENDAR = 100
TAGS_PER_CALENDAR = 5
USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"


@dataclass(frozen=True)
class Seeded:
    accounts: int
    subscriptions: int
    events: int
    outbox: int
    seconds: float
    # Seconds per step: building rows in Python, each COPY (subscriptions includes its generator),
    # the index rebuild and ANALYZE.
    steps: dict[str, float]


def _details(n: int, tag_id: uuid.UUID | None) -> dict[str, object]:
    """A subscribe's `details` (services.ingest.services.subscribing._details) for subscriber n."""
    return {
        "action_type": "SubscriptionViaWebApi",
        "tag_ids": [str(tag_id)] if tag_id else [],
        "time_zone_tag": None,
        "request_event_ids": [],
        "external_event_ids": [],
        "email_address": f"user{n}@example.com",
        "additional_opt_in": None,
        "marketing_allowed": n % 2 == 0,
        "ip_address": None,
        "user_agent": USER_AGENT,
        "url_referrer": None,
        "device_name": "iPhone",
        "source": None,
        "utm_source": "bench",
        "utm_medium": None,
        "utm_campaign": None,
        "utm_content": None,
        "redirect_to": None,
        "entered_post_code": None,
        "cable_provider": None,
        "cable_provider_location": None,
    }


class _DetailsText:
    """`_details` as JSON text, from four templates per calendar: json.dumps of a million dicts was a
    quarter of the seeding time."""

    MARK = 987654321

    def __init__(self, tag_id: uuid.UUID) -> None:
        self._templates = {
            (even, tagged): json.dumps(_details(self.MARK if even else self.MARK + 1, tag_id if tagged else None))
            for even in (True, False)
            for tagged in (True, False)
        }

    def text(self, n: int, tagged: bool) -> str:
        even = n % 2 == 0
        mark = str(self.MARK if even else self.MARK + 1)
        return self._templates[(even, tagged)].replace(mark, str(n), 1)


def _event(account_id: uuid.UUID, calendar_id: uuid.UUID, n: int, at: datetime, tag_id: uuid.UUID) -> EventData:
    day = at + timedelta(days=n % 365)
    return EventData(
        event_id=uuid.uuid4(),
        calendar_id=calendar_id,
        account_id=account_id,
        external_id=f"match-{n}",
        sequence=0,
        changed_at=at,
        created_at=at,
        title=f"Match {n}",
        description="Home game",
        location="Stadium",
        start=day.strftime("%Y-%m-%dT19:30:00"),
        end=day.strftime("%Y-%m-%dT21:30:00"),
        timezone="Europe/London",
        tag_ids=[tag_id],
    )


async def seed(database_url: str) -> Seeded:
    """Write the population into a migrated ingest schema (no JSON codecs on this connection)."""
    started = time.monotonic()
    at = datetime.now(UTC) - timedelta(hours=12)
    accounts = [(uuid.uuid4(), f"tenant{i:04d}", f"Tenant {i}", at) for i in range(ACCOUNTS)]
    calendars = [
        (uuid.uuid4(), account_id, "season", f"{name} season", "Europe/London", at, at)
        for account_id, _, name, _ in accounts
    ]
    tags = [
        (uuid.uuid4(), calendar_id, account_id, f"Team {t}", f"team-{t}", at, at)
        for calendar_id, account_id, *_ in calendars
        for t in range(TAGS_PER_CALENDAR)
    ]
    first_tag = {calendar_id: tags[i * TAGS_PER_CALENDAR][0] for i, (calendar_id, *_) in enumerate(calendars)}

    def subscriptions() -> Iterator[tuple[object, ...]]:
        for calendar_id, account_id, *_ in calendars:
            details = _DetailsText(first_tag[calendar_id])
            ids = os.urandom(16 * SUBSCRIPTIONS_PER_CALENDAR)
            for n in range(SUBSCRIPTIONS_PER_CALENDAR):
                # One in ten unsubscribed: a deactivated row is what an old population holds too.
                active = n % 10 != 0
                yield (
                    uuid.UUID(bytes=ids[16 * n : 16 * n + 16], version=4),
                    account_id,
                    calendar_id,
                    "webcal",
                    f"user-{n}",
                    active,
                    at,
                    at,
                    None if active else at,
                    details.text(n, n % 3 == 0),
                )

    events: list[tuple[object, ...]] = []
    outbox: list[tuple[object, ...]] = []
    for calendar_id, account_id, *_ in calendars:
        for n in range(EVENTS_PER_CALENDAR):
            event = _event(account_id, calendar_id, n, at, first_tag[calendar_id])
            data = event.model_dump(mode="json", by_alias=True)
            events.append((event.event_id, "calendar", account_id, calendar_id, event.external_id, json.dumps(data)))
            envelope = make_envelope("event.created", event, account_id=account_id, occurred_at=at)
            outbox.append((envelope.id, envelope.type, envelope.to_bytes(), at, at))

    steps = {"build events and outbox rows": time.monotonic() - started}
    mark = time.monotonic()

    def step(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        steps[name] = now - mark
        mark = now

    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "accounts",
                schema_name=SCHEMA,
                records=accounts,
                columns=["account_id", "account_code", "name", "updated_at"],
            )
            await conn.copy_records_to_table(
                "calendars",
                schema_name=SCHEMA,
                records=calendars,
                columns=["calendar_id", "account_id", "code", "name", "timezone", "created_at", "updated_at"],
            )
            await conn.copy_records_to_table(
                "tags",
                schema_name=SCHEMA,
                records=tags,
                columns=["tag_id", "calendar_id", "account_id", "name", "external_id", "created_at", "updated_at"],
            )
            step("copy accounts, calendars, tags")
            # A million random-key inserts into each secondary index cost more than building it once
            # after: drop them for the COPY and create them again from their own definitions.
            rebuilt = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'subscriptions'"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = $2::regclass)",
                SCHEMA,
                f"{SCHEMA}.subscriptions",
            )
            for index in rebuilt:
                await conn.execute(f"DROP INDEX {SCHEMA}.{index['indexname']}")
            await conn.copy_records_to_table(
                "subscriptions",
                schema_name=SCHEMA,
                records=subscriptions(),
                columns=[
                    "subscription_id",
                    "account_id",
                    "calendar_id",
                    "subscription_type",
                    "subscriber_id",
                    "active",
                    "created_at",
                    "updated_at",
                    "deactivated_at",
                    "details",
                ],
            )
            step("copy subscriptions")
            for index in rebuilt:
                await conn.execute(index["indexdef"])
            step("rebuild subscription indexes")
            await conn.copy_records_to_table(
                "events",
                schema_name=SCHEMA,
                records=events,
                columns=["event_id", "kind", "account_id", "calendar_id", "external_id", "data"],
            )
            step("copy events")
            await conn.copy_records_to_table(
                "outbox",
                schema_name=SCHEMA,
                records=outbox,
                columns=["id", "routing_key", "body", "created_at", "sent_at"],
            )
        step("copy outbox and commit")
        await conn.execute(
            f"VACUUM (ANALYZE) {SCHEMA}.accounts, {SCHEMA}.calendars, {SCHEMA}.tags, {SCHEMA}.subscriptions,"
            f" {SCHEMA}.events, {SCHEMA}.outbox"
        )
        step("vacuum analyze")
        # The gigabyte of WAL the COPY wrote is checkpointed now rather than under the measured run: a
        # database that grew this way over weeks did so long ago.
        await conn.execute("CHECKPOINT")
        step("checkpoint")
    finally:
        await conn.close()
    return Seeded(
        accounts=ACCOUNTS,
        subscriptions=ACCOUNTS * SUBSCRIPTIONS_PER_CALENDAR,
        events=len(events),
        outbox=len(outbox),
        seconds=time.monotonic() - started,
        steps=steps,
    )


# Copied from shared/outbox.py (the relay's claim and its gauges) and services/ingest/adapters/repository.py
# (the general subscribe path and the subscription-event fan-out), so the plans show exactly those.
OUTBOX_CLAIM = (
    f"SELECT seq, id, routing_key, body, attempts FROM {SCHEMA}.outbox"
    " WHERE sent_at IS NULL AND parked_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED"
)
OUTBOX_MEASURE = (
    f"SELECT (SELECT count(*) FROM {SCHEMA}.outbox WHERE sent_at IS NULL AND parked_at IS NULL)"
    f" AS backlog, (SELECT count(*) FROM {SCHEMA}.outbox"
    " WHERE parked_at IS NOT NULL AND sent_at IS NULL) AS parked"
)
OUTBOX_INSERT = f"INSERT INTO {SCHEMA}.outbox (id, routing_key, body) VALUES ($1, $2, $3)"
OUTBOX_PURGE = f"DELETE FROM {SCHEMA}.outbox WHERE sent_at < now() - make_interval(hours => $1)"
CALENDAR_BY_CODE = (
    f"SELECT * FROM {SCHEMA}.calendars WHERE account_id = $1 AND lower(code) = lower($2) AND deleted_at IS NULL"
)
ACTIVE_SUBSCRIPTION_OF = f"""
    SELECT * FROM {SCHEMA}.subscriptions
    WHERE calendar_id = $1 AND subscriber_id = $2 AND active AND ($3::text IS NULL OR subscription_type = $3)
    ORDER BY created_at DESC LIMIT 1 FOR UPDATE
"""
FAN_OUT = f"""
    SELECT s.subscription_id, s.calendar_id, s.active FROM unnest($2::uuid[]) WITH ORDINALITY AS wanted(id, n)
    JOIN {SCHEMA}.subscriptions s ON s.subscription_id = wanted.id AND s.account_id = $1
    ORDER BY wanted.n
"""


async def capture_plans(database_url: str, bench_account: dict[str, str], bench_subscriptions: list[str]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the hot queries on a seeded tenant (and a group of the bench's own
    subscriptions, as grouped reads ask for them); each in a transaction rolled back, so nothing is written."""
    conn = await db.connect(database_url)
    try:
        tenant = await conn.fetchrow(
            f"SELECT c.account_id, a.account_code, c.calendar_id, c.code FROM {SCHEMA}.calendars c"
            f" JOIN {SCHEMA}.accounts a USING (account_id) WHERE c.code = 'season' ORDER BY a.account_code"
            " OFFSET 500 LIMIT 1"
        )
        assert tenant is not None, "the database is not seeded"
        subscription = await conn.fetchrow(
            f"SELECT subscription_id FROM {SCHEMA}.subscriptions WHERE calendar_id = $1"
            " AND details -> 'tag_ids' <> '[]'::jsonb LIMIT 1",
            tenant["calendar_id"],
        )
        assert subscription is not None
        fan_out_ids = [
            r["subscription_id"]
            for r in await conn.fetch(
                f"SELECT subscription_id FROM {SCHEMA}.subscriptions WHERE account_id = $1 LIMIT 100",
                tenant["account_id"],
            )
        ]
        at = datetime.now(UTC)
        new_id = uuid.uuid4()
        message = SubscriptionData(
            subscription_id=new_id,
            account_id=tenant["account_id"],
            account_code=tenant["account_code"],
            merchant_name="Tenant",
            calendar_id=tenant["calendar_id"],
            calendar_code=tenant["code"],
            calendar_title="Tenant season",
            subscription_type="webcal",
            subscriber_id="plan-subscriber",
            active=True,
            created_at=at,
            version=1,
        )
        envelope = make_envelope("subscription.created", message, account_id=tenant["account_id"])
        cases: list[tuple[str, str, tuple[object, ...]]] = [
            (
                "subscribe, 1st statement: calendar, merchant name, the subscriber's active subscription,"
                " for a group of 32 requests (services/ingest/adapters/subscription_queries.py SUBSCRIBE_TARGETS)",
                queries.SUBSCRIBE_TARGETS,
                (
                    [tenant["account_id"]] * 32,
                    [tenant["account_code"]] * 32,
                    ["season"] * 32,
                    [f"user-{501 + i}" for i in range(32)],
                    ["webcal"] * 32,
                ),
            ),
            (
                "subscribe, 2nd statement: insert the subscription and its outbox row (INSERT_ANNOUNCED)",
                queries.INSERT_ANNOUNCED,
                (
                    new_id,
                    tenant["account_id"],
                    tenant["calendar_id"],
                    "webcal",
                    "plan-subscriber",
                    None,
                    None,
                    None,
                    _details(1, None),
                    True,
                    at,
                    [envelope.id],
                    [envelope.type],
                    [envelope.to_bytes()],
                ),
            ),
            (
                "GET /v1/subscription/{id}: subscription, calendar, tags, manual events (SUBSCRIPTION_WITH_CALENDAR)",
                queries.SUBSCRIPTION_WITH_CALENDAR,
                ([subscription["subscription_id"]],),
            ),
            (
                "GET /v1/subscription/{id}: a group of 32 of the bench account's subscriptions, read together",
                queries.SUBSCRIPTION_WITH_CALENDAR,
                ([uuid.UUID(s) for s in bench_subscriptions[:32]],),
            ),
            ("general subscribe path: calendar by code", CALENDAR_BY_CODE, (tenant["account_id"], "season")),
            (
                "general subscribe path: the subscriber's active subscription, locked",
                ACTIVE_SUBSCRIPTION_OF,
                (tenant["calendar_id"], "user-501", "webcal"),
            ),
            (
                "subscription-event fan-out: 100 subscriptions of the account",
                FAN_OUT,
                (tenant["account_id"], fan_out_ids),
            ),
            ("outbox insert (shared.outbox.enqueue)", OUTBOX_INSERT, (uuid.uuid4(), "test", b"{}")),
            ("outbox relay claim (shared/outbox.py _relay_batch)", OUTBOX_CLAIM, (200,)),
            ("outbox relay gauges (shared/outbox.py measure)", OUTBOX_MEASURE, ()),
            ("outbox purge of rows sent over 24 h ago (hourly)", OUTBOX_PURGE, (24,)),
        ]
        out = [
            f"EXPLAIN (ANALYZE, BUFFERS) on the seeded bench database, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC;"
            f" tenant {tenant['account_code']} (1,000 subscriptions, 100 events), bench account"
            f" {bench_account['accountCode']}.",
        ]
        for title, sql, args in cases:
            tx = conn.transaction()
            await tx.start()
            try:
                plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
            finally:
                await tx.rollback()
            out += ["", f"== {title}", *(r[0] for r in plan)]
        return "\n".join(out) + "\n"
    finally:
        await conn.close()


if __name__ == "__main__":
    print(asyncio.run(seed(sys.argv[1])))
