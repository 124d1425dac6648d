"""The Calendar v3 half of the Google double: calendars, calendarList colours and events, with Google's
error bodies, checked first against the discovery document and then against Google's own data rules
(time zones, time ranges, recurrence, reminders, colour ids, the app.created scope)."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from tests.doubles.google_discovery import request_problems

if TYPE_CHECKING:
    from tests.doubles.google import AccessToken, GoogleDouble

_RECURRENCE = re.compile(r"^(RRULE|EXRULE|RDATE|EXDATE)[:;]")
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_FULL = frozenset({"https://www.googleapis.com/auth/calendar", "https://www.googleapis.com/auth/calendar.events"})
_READ_ONLY = ("kind", "etag", "id", "htmlLink", "created", "updated", "creator", "organizer", "iCalUID")


def google_error(status: int, reason: str, message: str, domain: str = "global", **extra: str) -> web.Response:
    detail = {"domain": domain, "reason": reason, "message": message, **extra}
    return web.json_response({"error": {"errors": [detail], "code": status, "message": message}}, status=status)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class GoogleCalendar:
    """A secondary calendar in one user's account, made by one OAuth client."""

    id: str
    owner: str
    client_id: str
    body: dict[str, Any]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    list_entry: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False

    def live_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events.values() if e["status"] != "cancelled"]

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        return next((e for e in self.events.values() if e["iCalUID"] == uid), None)


def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _instant(value: dict[str, Any]) -> datetime | date | None:
    if "date" in value:
        return date.fromisoformat(value["date"])
    raw = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
    if raw.tzinfo is None and value.get("timeZone") and _zone_ok(value["timeZone"]):
        raw = raw.replace(tzinfo=ZoneInfo(value["timeZone"]))
    return raw if raw.tzinfo is not None else None


def event_data_problem(event: dict[str, Any]) -> str | None:
    """Google's rules for an event's data beyond the schema; the message Google gives, or None."""
    recurring = bool(event.get("recurrence"))
    instants = []
    for side in ("start", "end"):
        value = event.get(side) or {}
        if ("date" in value) == ("dateTime" in value):
            return f"Invalid {side} time."
        if "timeZone" in value and not _zone_ok(value["timeZone"]):
            return f"Invalid time zone definition for {side} time."
        if recurring and "dateTime" in value and "timeZone" not in value:
            return f"Missing time zone definition for {side} time."
        instant = _instant(value)
        if instant is None:
            return f"Missing time zone definition for {side} time."
        instants.append(instant)
    if type(instants[0]) is not type(instants[1]):
        return "Invalid start time."
    all_day = not isinstance(instants[0], datetime)
    if instants[1] < instants[0] or (all_day and instants[1] == instants[0]):  # type: ignore[operator]
        return "The specified time range is empty."
    for line in event.get("recurrence") or []:
        if not _RECURRENCE.match(line):
            return "Invalid recurrence rule."
    if "colorId" in event and event["colorId"] not in {str(i) for i in range(1, 12)}:
        return "Invalid value for: colorId"
    reminders = event.get("reminders") or {}
    overrides = reminders.get("overrides") or []
    if reminders.get("useDefault") and overrides:
        return "Cannot specify both default reminders and overrides at the same time."
    if len(overrides) > 5:
        return "Too many reminders."
    for reminder in overrides:
        if reminder.get("method") not in ("email", "popup") or not 0 <= reminder.get("minutes", -1) <= 40320:
            return "Invalid reminder."
    return None


Handler = Callable[[web.Request, "AccessToken", dict[str, Any] | None], Awaitable[web.Response]]


class CalendarApi:
    """The routes Kalends calls, each checked in the order Google checks: credentials, quota, request."""

    def __init__(self, double: GoogleDouble) -> None:
        self.double = double

    def add_routes(self, app: web.Application, base: str) -> None:
        routes: list[tuple[str, str, str, Handler]] = [
            ("POST", "/calendars", "calendar.calendars.insert", self.calendar_insert),
            ("GET", "/calendars/{calendarId}", "calendar.calendars.get", self.calendar_get),
            ("PATCH", "/calendars/{calendarId}", "calendar.calendars.patch", self.calendar_patch),
            ("DELETE", "/calendars/{calendarId}", "calendar.calendars.delete", self.calendar_delete),
            ("PATCH", "/users/me/calendarList/{calendarId}", "calendar.calendarList.patch", self.list_patch),
            ("POST", "/calendars/{calendarId}/events/import", "calendar.events.import", self.event_import),
            ("POST", "/calendars/{calendarId}/events", "calendar.events.insert", self.event_insert),
            ("GET", "/calendars/{calendarId}/events", "calendar.events.list", self.event_list),
            ("GET", "/calendars/{calendarId}/events/{eventId}", "calendar.events.get", self.event_get),
            ("PATCH", "/calendars/{calendarId}/events/{eventId}", "calendar.events.patch", self.event_write),
            ("PUT", "/calendars/{calendarId}/events/{eventId}", "calendar.events.update", self.event_write),
            ("DELETE", "/calendars/{calendarId}/events/{eventId}", "calendar.events.delete", self.event_delete),
        ]
        for method, path, method_id, handler in routes:
            app.router.add_route(method, base + path, self._guarded(method_id, handler))

    def _guarded(self, method_id: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def guarded(request: web.Request) -> web.Response:
            double = self.double
            double.calls[method_id] += 1
            header = request.headers.get("Authorization", "")
            token = double.token_owner(header.removeprefix("Bearer ").strip()) if header.startswith("Bearer ") else None
            if token is None:
                return google_error(
                    401,
                    "authError",
                    "Invalid Credentials",
                    location="Authorization",
                    locationType="header",
                )
            injected = double.take_injected(token.grant.email)
            if injected is not None:
                domain = "usageLimits" if injected.reason.endswith("LimitExceeded") else "global"
                message = "Rate Limit Exceeded" if domain == "usageLimits" else "Backend Error"
                return google_error(injected.status, injected.reason, message, domain)
            body: Any = None
            if request.can_read_body:
                raw = await request.read()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    double.rejections.append(f"{method_id}: body is not JSON")
                    return google_error(400, "parseError", "Parse Error")
            query: dict[str, list[str]] = {}
            for key, value in request.query.items():
                query.setdefault(key, []).append(value)
            problems = request_problems(
                method_id,
                path_params=dict(request.match_info),
                query=query,
                body=body,
                granted_scopes=token.grant.scopes,
            )
            if problems:
                double.rejections.append(f"{method_id}: {'; '.join(problems)}")
                return google_error(400, "invalid", problems[0])
            return await handler(request, token, body)

        return guarded

    # --- calendars ------------------------------------------------------------------------------

    def _calendar(self, request: web.Request, token: AccessToken) -> GoogleCalendar | web.Response:
        calendar = self.double.calendars.get(request.match_info["calendarId"])
        if calendar is None or calendar.owner != token.grant.email:
            return google_error(404, "notFound", "Not Found")
        if not token.grant.scopes & _FULL and calendar.client_id != token.grant.client_id:
            return google_error(404, "notFound", "Not Found")  # app.created reaches only our own calendars
        if calendar.deleted:
            if self.double.gone_status == 410:
                return google_error(410, "deleted", "Resource has been deleted")
            return google_error(404, "notFound", "Not Found")
        return calendar

    async def calendar_insert(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        if "timeZone" in body and not _zone_ok(body["timeZone"]):
            return google_error(400, "invalid", "Invalid time zone definition.")
        calendar_id = f"{secrets.token_hex(26)}@group.calendar.google.com"
        stored = {k: v for k, v in body.items() if k in ("summary", "description", "timeZone", "location")}
        resource = {"kind": "calendar#calendar", "etag": f'"{time.time_ns()}"', "id": calendar_id, **stored}
        grant = token.grant
        self.double.calendars[calendar_id] = GoogleCalendar(calendar_id, grant.email, grant.client_id, resource)
        return web.json_response(resource)

    async def calendar_get(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        calendar = self._calendar(request, token)
        return calendar if isinstance(calendar, web.Response) else web.json_response(calendar.body)

    async def calendar_patch(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        calendar = self._calendar(request, token)
        if isinstance(calendar, web.Response):
            return calendar
        if "timeZone" in body and not _zone_ok(body["timeZone"]):
            return google_error(400, "invalid", "Invalid time zone definition.")
        calendar.body.update({k: v for k, v in body.items() if k in ("summary", "description", "timeZone", "location")})
        calendar.body["etag"] = f'"{time.time_ns()}"'
        return web.json_response(calendar.body)

    async def calendar_delete(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        """The user (or an app) deleting the calendar; afterwards it is gone for every caller."""
        calendar = self._calendar(request, token)
        if isinstance(calendar, web.Response):
            return calendar
        calendar.deleted = True
        return web.Response(status=204)

    async def list_patch(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        calendar = self._calendar(request, token)
        if isinstance(calendar, web.Response):
            return calendar
        colors = {k: body[k] for k in ("backgroundColor", "foregroundColor") if k in body}
        if colors and request.query.get("colorRgbFormat") != "true":
            return google_error(400, "invalid", "colorRgbFormat=true is required to set RGB colors")
        for value in colors.values():
            if not re.fullmatch(r"#[0-9a-fA-F]{6}", str(value)):
                return google_error(400, "invalid", "Invalid color value.")
        calendar.list_entry.update(body)
        return web.json_response({"kind": "calendar#calendarListEntry", "id": calendar.id, **calendar.list_entry})

    # --- events ---------------------------------------------------------------------------------

    def _store(self, calendar: GoogleCalendar, event_id: str, body: dict[str, Any], uid: str) -> dict[str, Any]:
        existing = calendar.events.get(event_id)
        created = existing["created"] if existing else _now()
        resource = {k: v for k, v in body.items() if k not in _READ_ONLY}
        resource.setdefault("status", "confirmed")
        resource.update(
            kind="calendar#event",
            etag=f'"{time.time_ns()}"',
            id=event_id,
            htmlLink=f"https://www.google.com/calendar/event?eid={event_id}",
            created=created,
            updated=_now(),
            iCalUID=uid,
            organizer={"email": calendar.id, "displayName": calendar.body.get("summary", ""), "self": True},
        )
        calendar.events[event_id] = resource
        return resource

    async def event_import(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        calendar = self._calendar(request, token)
        if isinstance(calendar, web.Response):
            return calendar
        problem = event_data_problem(body)
        if problem:
            return google_error(400, "invalid", problem)
        existing = calendar.by_uid(body["iCalUID"])  # import is keyed by iCalUID: a second import updates
        event_id = existing["id"] if existing else secrets.token_hex(13)
        return web.json_response(self._store(calendar, event_id, body, body["iCalUID"]))

    async def event_insert(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        calendar = self._calendar(request, token)
        if isinstance(calendar, web.Response):
            return calendar
        event_id = body.get("id") or secrets.token_hex(13)
        if not _EVENT_ID.match(event_id):
            return google_error(400, "invalid", "Invalid resource id value.")
        uid = body.get("iCalUID") or f"{event_id}@google.com"
        if event_id in calendar.events or calendar.by_uid(uid):
            return google_error(409, "duplicate", "The requested identifier already exists.")
        problem = event_data_problem(body)
        if problem:
            return google_error(400, "invalid", problem)
        return web.json_response(self._store(calendar, event_id, body, uid))

    def _event(self, request: web.Request, token: AccessToken) -> tuple[GoogleCalendar, dict[str, Any]] | web.Response:
        calendar = self._calendar(request, token)
        if isinstance(calendar, web.Response):
            return calendar
        event = calendar.events.get(request.match_info["eventId"])
        if event is None:
            return google_error(404, "notFound", "Not Found")
        match = request.headers.get("If-Match")
        if match is not None and match not in ("*", event["etag"]):
            return google_error(412, "conditionNotMet", "Precondition Failed", location="If-Match")
        return calendar, event

    async def event_get(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        found = self._event(request, token)
        return found if isinstance(found, web.Response) else web.json_response(found[1])

    async def event_write(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        found = self._event(request, token)
        if isinstance(found, web.Response):
            return found
        calendar, event = found
        if request.method == "PATCH":
            merged = {**event, **body}
        else:
            merged = {**body}
            for key in ("start", "end"):
                if key not in merged:
                    return google_error(400, "required", f"Missing {key} time.")
        problem = event_data_problem(merged)
        if problem:
            return google_error(400, "invalid", problem)
        return web.json_response(self._store(calendar, event["id"], merged, event["iCalUID"]))

    async def event_delete(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        found = self._event(request, token)
        if isinstance(found, web.Response):
            return found
        event = found[1]
        if event["status"] == "cancelled":
            return google_error(410, "deleted", "Resource has been deleted")
        event.update(status="cancelled", updated=_now(), etag=f'"{time.time_ns()}"')
        return web.Response(status=204)

    async def event_list(self, request: web.Request, token: AccessToken, body: Any) -> web.Response:
        calendar = self._calendar(request, token)
        if isinstance(calendar, web.Response):
            return calendar
        show_deleted = request.query.get("showDeleted") == "true"
        items = [e for e in calendar.events.values() if show_deleted or e["status"] != "cancelled"]
        if "iCalUID" in request.query:
            items = [e for e in items if e["iCalUID"] == request.query["iCalUID"]]
        offset = int(request.query.get("pageToken", "0") or 0)
        size = int(request.query.get("maxResults", "250"))
        page = items[offset : offset + size]
        answer: dict[str, Any] = {
            "kind": "calendar#events",
            "summary": calendar.body.get("summary", ""),
            "timeZone": calendar.body.get("timeZone", "UTC"),
            "accessRole": "owner",
            "defaultReminders": [],
            "items": page,
        }
        if offset + size < len(items):
            answer["nextPageToken"] = str(offset + size)
        return web.json_response(answer)
