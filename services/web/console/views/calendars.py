"""Calendars: the list and create form, one calendar (edit, protect, tags), its events and their forms."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from services.web.console import recurrence
from services.web.console.apis import ApiProblem
from services.web.console.pages import account, api, done, form_text, render
from shared.http import read_form

FIELDS = ("code", "name", "description", "timezone", "color", "image", "refreshInterval")


def _q(value: str) -> str:
    return quote(value, safe="")


def _calendar_body(form: Any, *, with_code: bool) -> dict[str, Any]:
    body: dict[str, Any] = {name: form_text(form, name, 4096) for name in FIELDS if form_text(form, name, 4096)}
    if not with_code:
        body.pop("code", None)
    body["protected"] = form.get("protected") == "on"
    body["singleSubscriptionPerSubscriber"] = form.get("singleSubscriptionPerSubscriber") == "on"
    return body


async def list_calendars(request: web.Request) -> web.Response:
    calendars = await api(request, "GET", "ingest", f"/v1/calendars/{_q(account(request))}")
    return await render(request, "console/calendars.html", {"calendars": calendars, "values": {}})


async def create_calendar(request: web.Request) -> web.Response:
    form = await read_form(request)
    body = _calendar_body(form, with_code=True)
    try:
        created = await api(request, "POST", "ingest", f"/v1/calendars/{_q(account(request))}", body=body)
    except ApiProblem as problem:
        calendars = await api(request, "GET", "ingest", f"/v1/calendars/{_q(account(request))}")
        context = {"calendars": calendars, "values": body, "errors": problem.reasons}
        return await render(request, "console/calendars.html", context, status=problem.status)
    await done(request, f"/console/calendars/{_q(created['code'])}", f"Calendar “{created['name']}” created.")


# Events per page of a calendar's page (ingest lists them in the order they were made).
EVENTS_PAGE = 100


def _offset(request: web.Request) -> int:
    try:
        return max(0, int(request.query.get("offset", "0") or 0))
    except ValueError:
        return 0


async def _calendar_context(request: web.Request, code: str) -> dict[str, Any]:
    base = f"/v1/calendars/{_q(account(request))}/{_q(code)}"
    calendar = await api(request, "GET", "ingest", base)
    tags = await api(request, "GET", "ingest", base + "/tags")
    offset = _offset(request)
    # One more than a page: whether a next page exists, without a count.
    params = {"limit": str(EVENTS_PAGE + 1), "offset": str(offset)}
    events = await api(request, "GET", "ingest", base + "/events", params=params)
    pages = {
        "previous": max(0, offset - EVENTS_PAGE) if offset > 0 else None,
        "next": offset + EVENTS_PAGE if len(events) > EVENTS_PAGE else None,
        "first": offset + 1,
        "last": offset + min(len(events), EVENTS_PAGE),
    }
    events = events[:EVENTS_PAGE]
    names = {t["id"]: t["name"] for t in tags}
    for event in events:
        event["recurrenceText"] = recurrence.describe(event.get("recurrence") or [])
        event["tagNames"] = [names.get(t, t) for t in event.get("tags") or []]
    return {
        "calendar": calendar,
        "tags": tags,
        "events": events,
        "event_pages": pages,
        "values": calendar,
        "tag_values": {},
    }


async def show_calendar(request: web.Request) -> web.Response:
    context = await _calendar_context(request, request.match_info["code"])
    return await render(request, "console/calendar.html", context)


async def update_calendar(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    form = await read_form(request)
    body = _calendar_body(form, with_code=False)
    try:
        await api(request, "PUT", "ingest", f"/v1/calendars/{_q(account(request))}/{_q(code)}", body=body)
    except ApiProblem as problem:
        context = await _calendar_context(request, code)
        context.update(values={**context["calendar"], **body}, errors=problem.reasons)
        return await render(request, "console/calendar.html", context, status=problem.status)
    await done(request, f"/console/calendars/{_q(code)}", "Calendar saved.")


async def delete_calendar(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    await api(request, "DELETE", "ingest", f"/v1/calendars/{_q(account(request))}/{_q(code)}")
    await done(request, "/console/calendars", f"Calendar “{code}” deleted.")


async def create_tag(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    form = await read_form(request)
    body = {"name": form_text(form, "name", 1000)}
    if form_text(form, "externalId"):
        body["externalId"] = form_text(form, "externalId", 1000)
    try:
        await api(request, "POST", "ingest", f"/v1/calendars/{_q(account(request))}/{_q(code)}/tags", body=body)
    except ApiProblem as problem:
        context = await _calendar_context(request, code)
        context.update(tag_values=body, errors=problem.reasons)
        return await render(request, "console/calendar.html", context, status=problem.status)
    await done(request, f"/console/calendars/{_q(code)}#tags", f"Tag “{body['name']}” added.")


async def rename_tag(request: web.Request) -> web.Response:
    code, tag_id = request.match_info["code"], request.match_info["tagId"]
    name = form_text(await read_form(request), "name", 1000)
    path = f"/v1/calendars/{_q(account(request))}/{_q(code)}/tags/{_q(tag_id)}"
    try:
        renamed = await api(request, "PUT", "ingest", path, body={"name": name})
    except ApiProblem as problem:
        context = await _calendar_context(request, code)
        context.update(errors=problem.reasons)
        return await render(request, "console/calendar.html", context, status=problem.status)
    await done(request, f"/console/calendars/{_q(code)}#tags", f"Tag renamed “{renamed['name']}”.")


async def delete_tag(request: web.Request) -> web.Response:
    code, tag_id = request.match_info["code"], request.match_info["tagId"]
    path = f"/v1/calendars/{_q(account(request))}/{_q(code)}/tags/{_q(tag_id)}"
    try:
        await api(request, "DELETE", "ingest", path)
    except ApiProblem as problem:  # still on events or in subscriptions' filters: ingest says how many
        context = await _calendar_context(request, code)
        context.update(errors=problem.reasons)
        return await render(request, "console/calendar.html", context, status=problem.status)
    await done(request, f"/console/calendars/{_q(code)}#tags", "Tag deleted.")


# --- events -------------------------------------------------------------------------------------


# Optional fields of the event form that saving it empty clears (externalId stays: it names the event).
CLEARABLE = ("end", "timezone", "url")


def _event_body(form: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": form_text(form, "title", 1000),
        "start": form_text(form, "start", 100),
        "allDayEvent": form.get("allDayEvent") == "on",
        "description": form_text(form, "description"),
        "location": form_text(form, "location", 2000),
        "tags": [t for t in form.getall("tags", []) if isinstance(t, str)],
    }
    for name in ("end", "timezone", "externalId", "url"):
        if form_text(form, name, 4096):
            body[name] = form_text(form, name, 4096)
    lines = [line.strip() for line in form_text(form, "recurrence").splitlines() if line.strip()]
    rule = recurrence.build_rule(
        form_text(form, "frequency", 20),
        form_text(form, "interval", 10),
        [d for d in form.getall("byday", []) if isinstance(d, str)],
        form_text(form, "count", 10),
        form_text(form, "until", 20),
    )
    if rule is not None:  # the simple fields replace any RRULE typed among the lines
        lines = [rule, *(line for line in lines if not line.upper().startswith("RRULE"))]
    body["recurrence"] = lines
    return body


async def _event_form(
    request: web.Request,
    code: str,
    event: dict[str, Any] | None,
    values: dict[str, Any],
    errors: list[str],
    status: int,
) -> web.Response:
    base = f"/v1/calendars/{_q(account(request))}/{_q(code)}"
    calendar = await api(request, "GET", "ingest", base)
    tags = await api(request, "GET", "ingest", base + "/tags")
    context = {
        "calendar": calendar,
        "tags": tags,
        "event": event,
        "values": values,
        "recurrence_lines": "\n".join(values.get("recurrence") or []),
        "recurrence_text": recurrence.describe(values.get("recurrence") or []),
        "weekdays": recurrence.WEEKDAYS,
        "frequencies": recurrence.FREQUENCIES,
        "errors": errors,
    }
    return await render(request, "console/event.html", context, status=status)


async def new_event(request: web.Request) -> web.Response:
    return await _event_form(request, request.match_info["code"], None, {"allDayEvent": False}, [], 200)


async def create_event(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    body = _event_body(await read_form(request))
    try:
        await api(request, "POST", "ingest", f"/v1/calendars/{_q(account(request))}/{_q(code)}/events", body=body)
    except ApiProblem as problem:
        return await _event_form(request, code, None, body, problem.reasons, problem.status)
    await done(request, f"/console/calendars/{_q(code)}#events", f"Event “{body['title']}” created.")


async def show_event(request: web.Request) -> web.Response:
    code, event_id = request.match_info["code"], request.match_info["eventId"]
    event = await api(
        request, "GET", "ingest", f"/v1/calendars/{_q(account(request))}/{_q(code)}/events/{_q(event_id)}"
    )
    return await _event_form(request, code, event, event, [], 200)


async def update_event(request: web.Request) -> web.Response:
    code, event_id = request.match_info["code"], request.match_info["eventId"]
    path = f"/v1/calendars/{_q(account(request))}/{_q(code)}/events/{_q(event_id)}"
    event = await api(request, "GET", "ingest", path)
    form = await read_form(request)
    body = _event_body(form)
    # A field the form shows and the merchant emptied is cleared: null in a PATCH, where leaving it
    # out would keep the stored value.
    body.update({name: None for name in CLEARABLE if name in form and name not in body})
    try:  # PATCH: what the form does not show (attendees, organizer, ...) stays as it is
        await api(request, "PATCH", "ingest", path, body=body)
    except ApiProblem as problem:
        return await _event_form(request, code, event, body, problem.reasons, problem.status)
    await done(request, f"/console/calendars/{_q(code)}#events", f"Event “{body['title']}” saved.")


async def delete_event(request: web.Request) -> web.Response:
    code, event_id = request.match_info["code"], request.match_info["eventId"]
    await api(request, "DELETE", "ingest", f"/v1/calendars/{_q(account(request))}/{_q(code)}/events/{_q(event_id)}")
    await done(request, f"/console/calendars/{_q(code)}#events", "Event cancelled.")
