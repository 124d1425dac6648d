"""Read-only reports of an account's subscriptions: the search and the daily analytics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.ingest.adapters import reports as queries
from services.ingest.adapters.reports import SubscriptionSearch
from services.ingest.domain import reports as rules
from services.ingest.services._base import Account, UseCaseBase
from shared.errors import InvalidRequest


class ReportUseCases(UseCaseBase):
    async def search_subscriptions(
        self, account: Account, search: SubscriptionSearch
    ) -> tuple[list[asyncpg.Record], int]:
        async def work(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], int]:
            return await queries.search_subscriptions(conn, account.account_id, search)

        return await self._read(work)

    async def subscription_analytics(
        self, account: Account, calendar_code: str | None, first: str | None, last: str | None
    ) -> dict[str, Any]:
        try:
            start, end = rules.date_range(first, last, datetime.now(UTC).date())
        except rules.BadRange as exc:
            raise InvalidRequest(str(exc)) from None

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            return await queries.analytics(conn, account.account_id, calendar_code, start, end)

        counts = await self._read(work)
        days = rules.daily_series(start, end, counts["created"], counts["ended"])
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "calendarCode": calendar_code,
            "totals": {
                "subscriptions": sum(int(d["subscriptions"]) for d in days),
                "unsubscriptions": sum(int(d["unsubscriptions"]) for d in days),
            },
            "days": days,
            "breakdowns": {
                name: [
                    {"value": r["value"], "subscriptions": r["subscriptions"], "unsubscriptions": r["unsubscriptions"]}
                    for r in rows
                ]
                for name, rows in counts["breakdowns"].items()
            },
        }
