"""Analytics: subscriptions and unsubscriptions per day and by dimension, as server-drawn SVG, and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from markupsafe import Markup

from services.web.console.apis import ApiProblem
from services.web.console.charts import DayCount, breakdown_chart, daily_chart
from services.web.console.pages import account, api, render

DIMENSIONS = {
    "method": "Method",
    "device": "Device",
    "utmSource": "UTM source",
    "utmMedium": "UTM medium",
    "utmCampaign": "UTM campaign",
    "tag": "Tag",
}
NONE_LABELS = {"tag": "(all events)"}


def _filters(request: web.Request) -> dict[str, str]:
    return {name: request.query.get(name, "").strip() for name in ("calendarCode", "from", "to")}


async def _analytics(request: web.Request, filters: dict[str, str]) -> dict[str, Any]:
    params = {name: value for name, value in filters.items() if value}
    answer: dict[str, Any] = await api(
        request, "GET", "ingest", f"/v1/analytics/{quote(account(request), safe='')}", params=params
    )
    return answer


def _cell(value: str) -> str:
    """UTM values come from visitors' links: never let a spreadsheet read one as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _label(dimension: str, value: str | None) -> str:
    return value if value is not None else NONE_LABELS.get(dimension, "(none)")


async def show_analytics(request: web.Request) -> web.Response:
    filters = _filters(request)
    calendars = await api(request, "GET", "ingest", f"/v1/calendars/{quote(account(request), safe='')}")
    try:
        report = await _analytics(request, filters)
    except ApiProblem as problem:
        if problem.status >= 500:
            raise
        context = {"filters": filters, "calendars": calendars, "report": None, "errors": problem.reasons}
        return await render(request, "console/analytics.html", context, status=problem.status)
    days = [DayCount(d["date"], d["subscriptions"], d["unsubscriptions"]) for d in report["days"]]
    breakdowns = []
    for name, title in DIMENSIONS.items():
        rows = [
            (_label(name, r["value"]), r["subscriptions"], r["unsubscriptions"]) for r in report["breakdowns"][name]
        ]
        svg = breakdown_chart(rows, f"{title}: subscriptions and unsubscriptions")
        chart = Markup(svg) if rows else None  # noqa: S704 - charts.py escapes every text it draws
        heading = title if title.startswith("UTM") else title.lower()
        breakdowns.append({"name": name, "title": title, "heading": heading, "rows": rows, "chart": chart})
    title = f"Subscriptions and unsubscriptions per day, {report['from']} to {report['to']}"
    context = {
        "filters": filters,
        "calendars": calendars,
        "report": report,
        "chart": Markup(daily_chart(days, title)),  # noqa: S704 - charts.py escapes every text it draws
        "breakdowns": breakdowns,
        "csv_query": urlencode({k: v for k, v in filters.items() if v}),
    }
    return await render(request, "console/analytics.html", context)


async def export_csv(request: web.Request) -> web.Response:
    """Every number of the page in one CSV: the days, then each breakdown (`dimension,value,...`)."""
    report = await _analytics(request, _filters(request))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["dimension", "value", "subscriptions", "unsubscriptions"])
    for day in report["days"]:
        writer.writerow(["day", day["date"], day["subscriptions"], day["unsubscriptions"]])
    for name in DIMENSIONS:
        for row in report["breakdowns"][name]:
            writer.writerow([name, _cell(_label(name, row["value"])), row["subscriptions"], row["unsubscriptions"]])
    filename = f"kalends-analytics-{report['from']}-{report['to']}.csv"
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
