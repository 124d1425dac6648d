"""A calendar page's content, from what ingest's API answers: pure, no I/O.

Only what a visitor may see is kept: public events (not private or confidential ones, not cancelled),
the upcoming ones first, at most MAX_EVENTS of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.timezones import resolve

MAX_EVENTS = 50
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$|^[a-zA-Z]{3,20}$")


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class PageEvent:
    title: str
    when: str  # as a person reads it, in the event's time zone
    iso: str  # the <time datetime> value
    location: str
    tags: tuple[str, ...]
    repeats: bool


@dataclass(frozen=True)
class CalendarPage:
    account_code: str
    code: str
    name: str
    description: str
    image: str | None
    color: str | None
    protected: bool
    version: int
    tags: tuple[Choice, ...]
    time_zones: tuple[Choice, ...]
    events: tuple[PageEvent, ...]
    email: str  # off | optional | required
    marketing_opt_in: str | None
    additional_opt_in: str | None


def _instant(value: str, zone_name: str) -> datetime | date | None:
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=ZoneInfo(resolve(zone_name)))
        except (ValueError, KeyError):
            moment = moment.replace(tzinfo=UTC)
    return moment


def _when(start: datetime | date, all_day: bool, zone_name: str) -> str:
    if isinstance(start, datetime) and not all_day:
        return f"{start:%a %-d %b %Y, %H:%M} ({zone_name})"
    day = start.date() if isinstance(start, datetime) else start
    return f"{day:%a %-d %b %Y} (all day)"


def _sort_key(start: datetime | date) -> datetime:
    if isinstance(start, datetime):
        return start.astimezone(UTC)
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def upcoming_events(
    events: list[dict[str, Any]], tag_names: dict[str, str], zone: str, now: datetime
) -> list[PageEvent]:
    """Public, live events that have not ended (or that repeat), soonest first."""
    kept: list[tuple[datetime, PageEvent]] = []
    for event in events:
        if event.get("status") == "cancelled" or event.get("class", "public") != "public":
            continue
        event_zone = event.get("timezone") or zone
        start = _instant(str(event.get("start") or ""), event_zone)
        if start is None:
            continue
        end = _instant(str(event.get("end") or ""), event_zone) or start
        repeats = bool(event.get("recurrence"))
        if _sort_key(end) < now and not repeats:
            continue
        page_event = PageEvent(
            title=str(event.get("title") or ""),
            when=_when(start, bool(event.get("allDayEvent")), event_zone),
            iso=start.isoformat(),
            location=str(event.get("location") or ""),
            tags=tuple(tag_names[t] for t in event.get("tags") or [] if t in tag_names),
            repeats=repeats,
        )
        kept.append((_sort_key(start), page_event))
    kept.sort(key=lambda pair: pair[0])
    return [e for _, e in kept[:MAX_EVENTS]]


def calendar_page(
    account_code: str, calendar: dict[str, Any], tags: list[dict[str, Any]], events: list[dict[str, Any]], now: datetime
) -> CalendarPage:
    tag_names = {str(t["id"]): str(t["name"]) for t in tags}
    zone = str(calendar.get("timezone") or "UTC")
    # The time-zone choice filters events by their time-zone tag (seed 002's timeZoneId): offered
    # when the calendar's events carry such tags.
    zone_tags = sorted({str(e["timeZoneTag"]) for e in events if e.get("timeZoneTag")})
    page = calendar.get("subscribePage") or {}
    color = calendar.get("color")
    return CalendarPage(
        account_code=account_code,
        code=str(calendar["code"]),
        name=str(calendar["name"]),
        description=str(calendar.get("description") or ""),
        image=calendar.get("image") or None,
        color=color if isinstance(color, str) and _COLOR.match(color) else None,
        protected=bool(calendar.get("protected")),
        version=int(calendar.get("version") or 0),
        tags=tuple(Choice(str(t["id"]), str(t["name"])) for t in sorted(tags, key=lambda t: str(t["name"]).lower())),
        time_zones=tuple(Choice(z, z) for z in zone_tags),
        events=tuple(upcoming_events(events, tag_names, zone, now)),
        email=str(page.get("email") or "off"),
        marketing_opt_in=page.get("marketingOptIn") or None,
        additional_opt_in=page.get("additionalOptIn") or None,
    )
