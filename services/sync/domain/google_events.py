"""What Kalends sends Google: an event and a calendar in Calendar v3's shapes, as pure functions.

An event is imported with `iCalUID` = the feed's UID (the event id), so Google keys it the same way
a webcal client does and a second import updates it instead of adding a copy. Times keep their IANA
zone; an all-day event's end becomes Google's exclusive end date; `notifyBefore` becomes a popup
reminder; a colour becomes the nearest of Google's eleven event colours.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from pydantic.color import COLORS_BY_NAME

from shared.messages import CalendarData, EventData

MAX_REMINDER_MINUTES = 40320  # Google's limit: four weeks
# Google's event palette (colors.get, "event"): colorId -> background.
EVENT_COLORS = {
    "1": "#a4bdfc",
    "2": "#7ae7bf",
    "3": "#dbadff",
    "4": "#ff887c",
    "5": "#fbd75b",
    "6": "#ffb878",
    "7": "#46d6db",
    "8": "#e1e1e1",
    "9": "#5484ed",
    "10": "#51b749",
    "11": "#dc2127",
}
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def css_to_hex(color: str | None) -> str | None:
    """`#rrggbb` for a `#RRGGBB` or CSS colour name; None for nothing or a name CSS does not know."""
    if not color:
        return None
    if _HEX.match(color):
        return color.lower()
    rgb = COLORS_BY_NAME.get(color.strip().lower())
    return "#{:02x}{:02x}{:02x}".format(*rgb[:3]) if rgb else None


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)


def nearest_color_id(color: str | None) -> str | None:
    """The Google event colorId closest (in RGB) to the event's colour."""
    hex_color = css_to_hex(color)
    if hex_color is None:
        return None
    r, g, b = _rgb(hex_color)
    return min(
        EVENT_COLORS,
        key=lambda cid: sum((a - c) ** 2 for a, c in zip((r, g, b), _rgb(EVENT_COLORS[cid]), strict=True)),
    )


def foreground_for(background: str) -> str:
    """Black or white text, whichever reads better on `background` (WCAG relative luminance)."""
    r, g, b = (c / 255 for c in _rgb(background))
    return "#000000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "#ffffff"


def event_uid(event: EventData) -> str:
    """The UID the feed gives this event (feed's projection: the event id as is)."""
    return str(event.event_id)


def _times(event: EventData) -> tuple[dict[str, str], dict[str, str]]:
    if event.all_day:
        first = date.fromisoformat(event.start[:10])
        last = date.fromisoformat(event.end[:10])
        end = max(last, first) + timedelta(days=1)  # Google's end date is exclusive
        return {"date": first.isoformat()}, {"date": end.isoformat()}
    return (
        {"dateTime": event.start, "timeZone": event.timezone},
        {"dateTime": event.end, "timeZone": event.timezone},
    )


def google_event(event: EventData) -> dict[str, Any]:
    """The events.import (or update) body for `event`; every property is set, so an update also
    clears what the merchant removed."""
    start, end = _times(event)
    body: dict[str, Any] = {
        "iCalUID": event_uid(event),
        "summary": event.title,
        "description": event.description,
        "location": event.location,
        "start": start,
        "end": end,
        "status": "tentative" if event.status == "tentative" else "confirmed",
        "transparency": event.transparency,
        "visibility": event.class_,
        "sequence": event.sequence,
        "recurrence": list(event.recurrence),
        "reminders": {"useDefault": False},
        "extendedProperties": {"private": {"kalendsEventId": str(event.event_id)}},
    }
    if event.notify_before is not None:
        minutes = min(max(event.notify_before, 0), MAX_REMINDER_MINUTES)
        body["reminders"]["overrides"] = [{"method": "popup", "minutes": minutes}]
    color_id = nearest_color_id(event.color)
    if color_id is not None:
        body["colorId"] = color_id
    if event.url and event.url.startswith(("http://", "https://")):
        body["source"] = {"title": event.title[:200] or event.url, "url": event.url}
    return body


def google_calendar(calendar: CalendarData, time_zone: str) -> dict[str, Any]:
    """The calendars.insert body: the merchant's calendar's name, description and IANA zone."""
    return {"summary": calendar.name, "description": calendar.description, "timeZone": time_zone}


def calendar_colors(calendar: CalendarData) -> dict[str, str] | None:
    """The calendarList.patch body (with colorRgbFormat=true) for the calendar's colour, if any."""
    background = css_to_hex(calendar.color)
    if background is None:
        return None
    return {"backgroundColor": background, "foregroundColor": foreground_for(background)}
