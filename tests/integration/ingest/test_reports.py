"""The reports the console reads: subscriptions searched and filtered, and counted per day and dimension."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.ingest.adapters import reports
from tests.integration.ingest.conftest import Harness, Merchant

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


async def _calendar_with_tags(harness: Harness, m: Merchant) -> dict[str, str]:
    await harness.client.post(f"/v1/calendars/{m.code}", json={"code": "league", "name": "League"}, headers=m.headers)
    tags = {}
    for name in ("Reds", "Blues"):
        answer = await harness.client.post(
            f"/v1/calendars/{m.code}/league/tags", json={"name": name}, headers=m.headers
        )
        tags[name] = (await answer.json())["id"]
    return tags


async def _subscribe(harness: Harness, m: Merchant, body: dict[str, Any]) -> str:
    routed = {"subscriptionMethod": "webcal", **body} if "userAgent" not in body else body
    answer = await harness.client.post(f"/v1/subscribe/{m.code}/league", json=routed, headers=m.headers)
    assert answer.status in (200, 201), await answer.text()
    return str((await answer.json())["subscriptionId"])


async def _get(harness: Harness, m: Merchant, path: str, **query: str) -> tuple[int, Any]:
    answer = await harness.client.get(path, params=query, headers=m.headers)
    return answer.status, await answer.json()


async def test_the_search_finds_subscriptions_by_subscriber_email_and_filters_them(harness: Harness) -> None:
    m = harness.merchant()
    tags = await _calendar_with_tags(harness, m)
    ann = await _subscribe(
        harness,
        m,
        {"subscriberId": "ann", "emailAddress": "Ann@Example.com", "userAgent": IPHONE, "calendarTags": [tags["Reds"]]},
    )
    await _subscribe(harness, m, {"subscriberId": "bob", "userAgent": WINDOWS, "calendarTags": [tags["Blues"]]})
    path = f"/v1/subscriptions/{m.code}"

    status, everyone = await _get(harness, m, path)
    assert status == 200 and everyone["total"] == 2
    assert [s["subscriberId"] for s in everyone["subscriptions"]] == ["bob", "ann"]  # newest first
    _, by_email = await _get(harness, m, path, q="ann@example.com")
    assert [s["subscriptionId"] for s in by_email["subscriptions"]] == [ann]
    assert by_email["subscriptions"][0]["tags"] == ["Reds"]
    _, by_tag = await _get(harness, m, path, tag=tags["Blues"])
    assert [s["subscriberId"] for s in by_tag["subscriptions"]] == ["bob"]
    _, by_device = await _get(harness, m, path, device=everyone["subscriptions"][1]["deviceName"])
    assert [s["subscriberId"] for s in by_device["subscriptions"]] == ["ann"]

    await harness.client.request("DELETE", f"/v1/subscription/{m.code}/league", json={"id": ann}, headers=m.headers)
    _, active = await _get(harness, m, path, active="true")
    _, inactive = await _get(harness, m, path, active="false", method="webcal")
    assert [s["subscriberId"] for s in active["subscriptions"]] == ["bob"]
    assert [s["subscriberId"] for s in inactive["subscriptions"]] == ["ann"]
    _, past_the_end = await _get(harness, m, path, offset="10")
    assert past_the_end == {"total": 2, "subscriptions": []}


async def test_bad_filters_are_clear_400s_and_another_account_sees_nothing(harness: Harness) -> None:
    m, other = harness.merchant(), harness.merchant()
    await _calendar_with_tags(harness, m)
    await _subscribe(harness, m, {"subscriberId": "ann"})
    status, body = await _get(harness, m, f"/v1/subscriptions/{m.code}", method="fax")
    assert status == 400 and "method" in body["errors"][0]["reason"]
    status, body = await _get(harness, m, f"/v1/subscriptions/{m.code}", active="maybe")
    assert status == 400 and "active" in body["errors"][0]["reason"]
    # str.isdigit() is true of both, and int() refuses both: each was a 500.
    for offset in ("\u00b2", "9" * 5000):
        status, body = await _get(harness, m, f"/v1/subscriptions/{m.code}", offset=offset)
        assert status == 400 and "offset" in body["errors"][0]["reason"], (status, body)
    assert (await harness.client.get(f"/v1/subscriptions/{m.code}", headers=other.headers)).status == 403
    status, body = await _get(harness, other, f"/v1/subscriptions/{other.code}")
    assert (status, body) == (200, {"total": 0, "subscriptions": []})


async def test_analytics_count_each_day_and_break_the_counts_down(harness: Harness) -> None:
    m = harness.merchant()
    tags = await _calendar_with_tags(harness, m)
    first = await _subscribe(
        harness,
        m,
        {
            "subscriberId": "ann",
            "userAgent": IPHONE,
            "utmSource": "newsletter",
            "utmMedium": "email",
            "utmCampaign": "spring",
            "calendarTags": [tags["Reds"]],
        },
    )
    await _subscribe(harness, m, {"subscriberId": "bob", "userAgent": WINDOWS, "utmSource": "newsletter"})
    await harness.client.request("DELETE", f"/v1/subscription/{m.code}/league", json={"id": first}, headers=m.headers)
    today = datetime.now(UTC).date()
    status, body = await _get(harness, m, f"/v1/analytics/{m.code}", calendarCode="league")
    assert status == 200
    assert body["to"] == today.isoformat() and body["from"] == (today - timedelta(days=29)).isoformat()
    assert len(body["days"]) == 30
    assert body["days"][-1] == {"date": today.isoformat(), "subscriptions": 2, "unsubscriptions": 1}
    assert body["totals"] == {"subscriptions": 2, "unsubscriptions": 1}
    breakdowns = body["breakdowns"]
    assert breakdowns["utmSource"] == [{"value": "newsletter", "subscriptions": 2, "unsubscriptions": 1}]
    assert {r["value"]: r["subscriptions"] for r in breakdowns["utmCampaign"]} == {"spring": 1, None: 1}
    assert {r["value"]: r["subscriptions"] for r in breakdowns["tag"]} == {"Reds": 1, None: 1}
    assert {r["value"] for r in breakdowns["method"]} == {"webcal"}
    assert len(breakdowns["device"]) == 2
    status, body = await _get(harness, m, f"/v1/analytics/{m.code}", **{"from": "2020-01-01", "to": "2020-01-31"})
    assert body["totals"] == {"subscriptions": 0, "unsubscriptions": 0} and len(body["days"]) == 31


async def test_an_unusable_date_range_is_a_400_that_says_why(harness: Harness) -> None:
    m = harness.merchant()
    for query, reason in (
        ({"from": "yesterday"}, "YYYY-MM-DD"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "after"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "at most 366"),
    ):
        status, body = await _get(harness, m, f"/v1/analytics/{m.code}", **query)
        assert status == 400 and reason in body["errors"][0]["reason"], body


class Explaining:
    """A connection whose fetch answers nothing and keeps the plan PostgreSQL would use for the query."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.plans: list[str] = []

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        self.plans.append("\n".join(row[0] for row in await self.conn.fetch("EXPLAIN " + query, *args)))
        return []


async def test_the_search_reads_only_the_accounts_subscriptions_through_its_index(harness: Harness) -> None:
    """The plan of the console's search: an index scan on the account (subscriptions_by_account), not a
    scan of every account's rows. Sequential scans are off, so the tiny test table shows the plan a large
    one gets."""
    conn = await asyncpg.connect(harness.database_url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            explaining = Explaining(conn)
            await reports.search_subscriptions(explaining, uuid.uuid4(), reports.SubscriptionSearch())  # type: ignore[arg-type]
    finally:
        await conn.close()
    assert explaining.plans and "subscriptions_by_account" in explaining.plans[0], explaining.plans
