"""Subscribers: search and filters, one subscriber (details, what their feed holds), deactivation."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import icalendar
from aiohttp import web

from services.web.console import feed_preview
from services.web.console.apis import ApiProblem
from services.web.console.pages import APIS, account, api, done, form_text, render
from shared.http import read_form

FILTERS = ("q", "calendarCode", "active", "method", "device", "tag")
PAGE = 50
FEED_EVENTS_SHOWN = 100


def _q(value: str) -> str:
    return quote(value, safe="")


async def list_subscribers(request: web.Request) -> web.Response:
    filters = {name: request.query.get(name, "").strip() for name in FILTERS}
    try:
        offset = max(0, int(request.query.get("offset", "0") or 0))
    except ValueError:
        offset = 0
    params = {name: value for name, value in filters.items() if value}
    errors: list[str] = []
    found: dict[str, Any] = {"total": 0, "subscriptions": []}
    status = 200
    try:
        found = await api(
            request,
            "GET",
            "ingest",
            f"/v1/subscriptions/{_q(account(request))}",
            params={**params, "limit": str(PAGE), "offset": str(offset)},
        )
    except ApiProblem as problem:
        if problem.status >= 500:
            raise
        errors, status = problem.reasons, problem.status
    calendars = await api(request, "GET", "ingest", f"/v1/calendars/{_q(account(request))}")
    tags: list[dict[str, Any]] = []
    if filters["calendarCode"]:
        try:
            tags = await api(
                request, "GET", "ingest", f"/v1/calendars/{_q(account(request))}/{_q(filters['calendarCode'])}/tags"
            )
        except ApiProblem:
            tags = []
    pages = {
        "previous": urlencode({**params, "offset": offset - PAGE}) if offset > 0 else None,
        "next": urlencode({**params, "offset": offset + PAGE}) if offset + PAGE < found["total"] else None,
    }
    context = {
        "filters": filters,
        "found": found,
        "calendars": calendars,
        "tags": tags,
        "offset": offset,
        "pages": pages,
        "errors": errors,
    }
    return await render(request, "console/subscribers.html", context, status=status)


def feed_events(text: str) -> list[dict[str, Any]]:
    """The VEVENTs of a feed, as the page lists them (first ones only)."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError:
        return []
    events = []
    for component in calendar.walk("VEVENT")[:FEED_EVENTS_SHOWN]:
        start = component.get("DTSTART")
        events.append(
            {
                "summary": str(component.get("SUMMARY", "")),
                "start": start.dt.isoformat() if start is not None else "",
                "recurs": component.get("RRULE") is not None,
                "categories": [
                    str(c) for c in (component.get("CATEGORIES").cats if component.get("CATEGORIES") else [])
                ],
            }
        )
    return events


async def show_subscriber(request: web.Request) -> web.Response:
    subscription_id = request.match_info["subscriptionId"]
    subscription = await api(request, "GET", "ingest", f"/v1/subscription/{_q(subscription_id)}")
    feed: dict[str, Any] = {
        "url": request.app[APIS].settings.feed_url + f"/v1/webcal/{_q(subscription_id)}",
        "note": None,
        "note_after": None,
        "events": [],
        "count": 0,
    }
    status, text = await request.app[APIS].text("feed", f"/v1/webcal/{_q(subscription_id)}")
    if status == 200:
        feed["events"] = feed_events(text)
        feed["count"] = text.count("BEGIN:VEVENT")
    elif status == 401:
        # Protected: the feed opens only with the subscriber's credentials; the same rule, applied here.
        code = quote(subscription["calendar"]["code"], safe="")
        events = await api(
            request, "GET", "ingest", f"/v1/calendars/{_q(account(request))}/{code}/events", params={"limit": "1000"}
        )
        chosen = feed_preview.selected_events(subscription, events)
        manual = subscription.get("manualEvents") or []
        feed["note_after"] = (
            "This calendar is protected, so its feed opens only with the subscriber's own credentials: "
            "these are the calendar's events the feed's selection rule gives this subscription."
        )
        feed["events"] = [
            {"summary": e["title"], "start": e["start"], "recurs": bool(e.get("recurrence")), "categories": []}
            for e in [*chosen, *manual][:FEED_EVENTS_SHOWN]
        ]
        feed["count"] = len(chosen) + len(manual)
    else:
        feed["note"] = f"The feed service answered {status}; the subscription's feed is not available right now."
    return await render(request, "console/subscriber.html", {"subscription": subscription, "feed": feed})


async def deactivate_subscriber(request: web.Request) -> web.Response:
    subscription_id = request.match_info["subscriptionId"]
    form = await read_form(request)
    code = form_text(form, "calendarCode", 255)
    await api(
        request,
        "DELETE",
        "ingest",
        f"/v1/subscription/{_q(account(request))}/{_q(code)}",
        body={"id": subscription_id},
    )
    await done(request, f"/console/subscribers/{_q(subscription_id)}", "Subscription deactivated.")
