"""Read-only queries over an account's subscriptions: the search a console lists, the daily analytics.

Every query is bounded by the account id first; the search by one page (LIMIT), the analytics by a
date range. Days are UTC days.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from services.ingest.adapters.repository import SCHEMA


@dataclass(frozen=True)
class SubscriptionSearch:
    """Filters of a subscription search; None means any."""

    calendar_code: str | None = None
    query: str | None = None  # a subscriber id, an email address or a subscription id
    active: bool | None = None
    method: str | None = None  # subscription_type: webcal, google, caldav
    device: str | None = None  # details.device_name
    tag_id: str | None = None
    limit: int = 50
    offset: int = 0


async def search_subscriptions(
    conn: asyncpg.Connection, account_id: uuid.UUID, search: SubscriptionSearch
) -> tuple[list[asyncpg.Record], int]:
    """One page of the account's subscriptions, newest first, and how many match in all."""
    rows = await conn.fetch(
        f"""
        SELECT s.subscription_id, c.code AS calendar_code, c.name AS calendar_name, s.subscriber_id,
               s.subscription_type, s.active, s.created_at, s.deactivated_at,
               s.details->>'email_address' AS email_address, s.details->>'device_name' AS device_name,
               s.details->>'utm_source' AS utm_source,
               coalesce((SELECT array_agg(t.name ORDER BY t.name) FROM {SCHEMA}.tags t
                         WHERE t.tag_id::text IN (SELECT jsonb_array_elements_text(s.details->'tag_ids'))), '{{}}')
                   AS tag_names,
               count(*) OVER () AS total
        FROM {SCHEMA}.subscriptions s JOIN {SCHEMA}.calendars c ON c.calendar_id = s.calendar_id
        WHERE s.account_id = $1
          AND ($2::text IS NULL OR lower(c.code) = lower($2))
          AND ($3::text IS NULL OR s.subscriber_id = $3 OR lower(s.details->>'email_address') = lower($3)
               OR s.subscription_id::text = lower($3))
          AND ($4::boolean IS NULL OR s.active = $4)
          AND ($5::text IS NULL OR s.subscription_type = $5)
          AND ($6::text IS NULL OR lower(s.details->>'device_name') = lower($6))
          AND ($7::text IS NULL OR coalesce(s.details->'tag_ids', '[]'::jsonb) ? $7)
        ORDER BY s.created_at DESC, s.subscription_id
        LIMIT $8 OFFSET $9
        """,
        account_id,
        search.calendar_code,
        search.query,
        search.active,
        search.method,
        search.device,
        search.tag_id,
        search.limit,
        search.offset,
    )
    if rows or not search.offset:
        return list(rows), int(rows[0]["total"]) if rows else 0
    # A page past the end: count the matches with the first page instead.
    first = await search_subscriptions(conn, account_id, dataclasses.replace(search, offset=0, limit=1))
    return [], first[1]


# The breakdowns of the analytics: wire name -> SQL expression of a subscription row `s`.
DIMENSIONS: dict[str, str] = {
    "method": "s.subscription_type",
    "device": "s.details->>'device_name'",
    "utmSource": "s.details->>'utm_source'",
    "utmMedium": "s.details->>'utm_medium'",
    "utmCampaign": "s.details->>'utm_campaign'",
}

_SCOPE = f"""
    FROM {SCHEMA}.subscriptions s JOIN {SCHEMA}.calendars c ON c.calendar_id = s.calendar_id
    WHERE s.account_id = $1 AND ($2::text IS NULL OR lower(c.code) = lower($2))
      AND ((s.created_at >= $3 AND s.created_at < $4) OR (s.deactivated_at >= $3 AND s.deactivated_at < $4))
"""
_COUNTS = """
    count(*) FILTER (WHERE s.created_at >= $3 AND s.created_at < $4) AS subscriptions,
    count(*) FILTER (WHERE s.deactivated_at >= $3 AND s.deactivated_at < $4) AS unsubscriptions
"""


async def analytics(
    conn: asyncpg.Connection, account_id: uuid.UUID, calendar_code: str | None, first: date, last: date
) -> dict[str, Any]:
    """Per-day subscription and unsubscription counts from `first` to `last` (UTC days, inclusive),
    and the same counts by method, device, UTM source/medium/campaign and tag."""
    args = (account_id, calendar_code, _midnight(first), _midnight(last, plus_days=1))
    created = await conn.fetch(
        f"SELECT (s.created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n {_SCOPE}"
        " AND s.created_at >= $3 AND s.created_at < $4 GROUP BY 1",
        *args,
    )
    ended = await conn.fetch(
        f"SELECT (s.deactivated_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n {_SCOPE}"
        " AND s.deactivated_at >= $3 AND s.deactivated_at < $4 GROUP BY 1",
        *args,
    )
    breakdowns: dict[str, list[asyncpg.Record]] = {}
    for name, expression in DIMENSIONS.items():
        breakdowns[name] = await conn.fetch(
            f"SELECT {expression} AS value, {_COUNTS} {_SCOPE} GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST LIMIT 50",
            *args,
        )
    # A subscription that chose no tag follows the whole calendar: its tag is NULL ("all events").
    breakdowns["tag"] = await conn.fetch(
        f"""
        SELECT t.name AS value, {_COUNTS}
        FROM {SCHEMA}.subscriptions s JOIN {SCHEMA}.calendars c ON c.calendar_id = s.calendar_id
        LEFT JOIN LATERAL jsonb_array_elements_text(coalesce(s.details->'tag_ids', '[]'::jsonb)) AS chosen(tag_id)
            ON true
        LEFT JOIN {SCHEMA}.tags t ON t.tag_id::text = chosen.tag_id
        WHERE s.account_id = $1 AND ($2::text IS NULL OR lower(c.code) = lower($2))
          AND ((s.created_at >= $3 AND s.created_at < $4) OR (s.deactivated_at >= $3 AND s.deactivated_at < $4))
        GROUP BY 1 ORDER BY 2 DESC, 1 NULLS LAST LIMIT 50
        """,
        *args,
    )
    return {
        "created": {r["day"]: r["n"] for r in created},
        "ended": {r["day"]: r["n"] for r in ended},
        "breakdowns": breakdowns,
    }


def _midnight(day: date, plus_days: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=plus_days)
