"""Seed the feed's own schema directly with COPY: calendars, events and subscriptions at scale.

Used by the feed benchmarks to measure with a big read model (bench/feed.py with
KALENDS_BENCH_FEED_SEED=1, bench/feed_memory.py). Rows are what the projection would write; event
blocks are valid VEVENTs in UTC (no VTIMEZONE needed), about 500 bytes each. Subscriptions spread
over `filters` filter signatures per calendar (each excludes one event), so every filter selects
all but one of its calendar's events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
BLOCK = (
    "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\n"
    "DTEND:{end:%Y%m%dT%H%M%SZ}\r\nSUMMARY:Game {n}: Home team vs Visitors\\, round {r}\r\n"
    "DESCRIPTION:Doors open one hour before. Tickets at the box office\\; parking on\r\n"
    "  site.\r\nLOCATION:Main Arena\\, 1 Sports Way\\, Springfield\r\nSEQUENCE:0\r\n"
    "URL:https://tickets.example.com/game/{n}\r\nEND:VEVENT\r\n"
)

CALENDAR_COLUMNS = ["calendar_id", "account_id", "account_code", "code", "name", "description", "timezone"]
CALENDAR_COLUMNS += ["version", "changed_at"]
EVENT_COLUMNS = ["event_id", "calendar_id", "external_id", "sequence", "changed_at", "created_at", "start_utc", "block"]


@dataclass
class Seeded:
    account_code: str
    calendar_ids: list[uuid.UUID]
    calendar_codes: list[str]
    # The subscriptions of the first calendar (the memory bench fetches each of them).
    first_calendar_subscriptions: list[uuid.UUID]


async def seed(
    conn: asyncpg.Connection, *, calendars: int, events: int, subscriptions: int, filters: int, prefix: str = "seed"
) -> Seeded:
    """`events` and `subscriptions` are totals, spread evenly over `calendars`."""
    now = datetime.now(UTC)
    account_id = uuid.uuid4()
    account_code = f"{prefix}acct"
    calendar_ids = [uuid.uuid4() for _ in range(calendars)]
    codes = [f"{prefix}{i}" for i in range(calendars)]
    await conn.copy_records_to_table(
        "calendars",
        schema_name="feed",
        columns=CALENDAR_COLUMNS,
        records=[
            (cid, account_id, account_code, code, f"Calendar {code}", "Season schedule", "UTC", 1, now)
            for cid, code in zip(calendar_ids, codes, strict=True)
        ],
    )
    await conn.copy_records_to_table(
        "calendar_versions",
        schema_name="feed",
        columns=["calendar_id", "version", "changed_at"],
        records=[(cid, 1, now) for cid in calendar_ids],
    )
    per_calendar = max(1, events // calendars)

    def event_rows() -> list[tuple[object, ...]]:
        rows: list[tuple[object, ...]] = []
        for cid in calendar_ids:
            for n in range(per_calendar):
                start = EPOCH + timedelta(hours=19 + 24 * n)
                uid = uuid.uuid4()
                block = BLOCK.format(uid=uid, start=start, end=start + timedelta(hours=2), n=n, r=n % 30)
                rows.append((uid, cid, f"game-{n}", 0, now, now, start, block.encode()))
        return rows

    await conn.copy_records_to_table(
        "events",
        schema_name="feed",
        columns=EVENT_COLUMNS,
        records=event_rows(),
    )
    per_subscription_calendar = max(1, subscriptions // calendars)
    first: list[uuid.UUID] = []
    batch: list[tuple[object, ...]] = []
    columns = ["subscription_id", "calendar_id", "account_id", "active", "created_at", "exclude_external"]
    columns += ["signature", "version"]
    for index, cid in enumerate(calendar_ids):
        for n in range(per_subscription_calendar):
            sid = uuid.uuid4()
            if index == 0:
                first.append(sid)
            batch.append((sid, cid, account_id, True, now, [f"game-{n % filters}"], f"x:game-{n % filters}", 1))
            if len(batch) >= 100_000:
                await conn.copy_records_to_table("subscriptions", schema_name="feed", columns=columns, records=batch)
                batch = []
    if batch:
        await conn.copy_records_to_table("subscriptions", schema_name="feed", columns=columns, records=batch)
    await conn.execute("ANALYZE feed.calendars, feed.calendar_versions, feed.events, feed.subscriptions")
    return Seeded(account_code, calendar_ids, codes, first)


HOT_QUERIES = {
    "subscription by id (subscription_with_calendar)": (
        "SELECT s.*, c.calendar_id IS NOT NULL AS calendar_known, c.deleted AS calendar_deleted,"
        " coalesce(v.version, 0) AS calendar_feed_version, v.changed_at AS calendar_feed_changed_at"
        " FROM feed.subscriptions s LEFT JOIN feed.calendars c USING (calendar_id)"
        " LEFT JOIN feed.calendar_versions v USING (calendar_id) WHERE s.subscription_id = '{subscription}'"
    ),
    "calendar with version (calendar_with_version)": (
        "SELECT c.*, coalesce(v.version, 0) AS feed_version, v.changed_at AS feed_changed_at FROM feed.calendars c"
        " LEFT JOIN feed.calendar_versions v USING (calendar_id) WHERE c.calendar_id = '{calendar}'"
    ),
    "calendar by code (calendar_by_code)": (
        "SELECT c.calendar_id, c.protected FROM feed.calendars c WHERE lower(c.account_code) = lower('{account}')"
        " AND lower(c.code) = lower('{code}') AND NOT c.deleted ORDER BY c.changed_at DESC LIMIT 1"
    ),
    "private events of a subscription (private_events)": (
        "SELECT block, tzids, changed_at FROM feed.events WHERE subscription_ids @> ARRAY['{subscription}']::uuid[]"
        " AND cardinality(subscription_ids) > 0 ORDER BY start_utc, event_id"
    ),
    "versions re-check, 1,000 subscriptions (current_versions)": (
        "SELECT subscription_id, feed_version FROM feed.subscriptions WHERE subscription_id = ANY("
        "(SELECT array_agg(subscription_id) FROM (SELECT subscription_id FROM feed.subscriptions"
        " WHERE calendar_id = '{calendar}' LIMIT 1000) s)::uuid[])"
    ),
    "directory load: a calendar's subscriptions (services/feed/directory.py)": (
        "SELECT subscription_id, calendar_id, tag_ids, time_zone_tag, include_ids, include_external, exclude_ids,"
        " exclude_external, deactivated_at, feed_username, feed_password_hash, feed_version, feed_changed_at"
        " FROM feed.subscriptions WHERE calendar_id = '{calendar}'"
    ),
    "directory load: which of 2,000 subscriptions have events of their own (with_private_events)": (
        "SELECT DISTINCT member FROM feed.events, unnest(subscription_ids) AS member"
        " WHERE cardinality(subscription_ids) > 0 AND subscription_ids && (SELECT array_agg(subscription_id)"
        " FROM (SELECT subscription_id FROM feed.subscriptions WHERE calendar_id = '{calendar}' LIMIT 2000) s)"
    ),
}


async def explain_hot_queries(conn: asyncpg.Connection, seeded: Seeded) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the feed's hot reads against the seeded schema, as text."""
    from services.feed.adapters.repository import _SHARED

    values = {
        "subscription": seeded.first_calendar_subscriptions[0],
        "calendar": seeded.calendar_ids[0],
        "account": seeded.account_code,
        "code": seeded.calendar_codes[0],
    }
    out: list[str] = []
    for title, sql in HOT_QUERIES.items():
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql.format(**values))
        out += [f"== {title}", *(row[0] for row in plan), ""]
    # The shared section of one filter: the query behind every section build.
    await conn.execute(f"PREPARE section AS {_SHARED}")
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    plan = await conn.fetch(
        f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE section('{seeded.calendar_ids[0]}', '{{}}', NULL, '{{}}', '{{}}',"
        " '{}', '{game-1}', NULL)"
    )
    out += ["== shared section of one filter (shared_section)", *(row[0] for row in plan), ""]
    await conn.execute("DEALLOCATE section")
    return "\n".join(out)
