"""Rendering iCalendar (RFC 5545 + RFC 7986) text: one VEVENT block per event, the calendar header.

Shared by the read sides: feed assembles feeds from the blocks, sync PUTs one event per CalDAV resource.

icalendar builds every component, so escaping of TEXT values and folding at 75 octets (never inside
a UTF-8 sequence) are the library's. Blocks are rendered when the projection changes and stored;
a feed is then `header + VTIMEZONEs + blocks + FOOTER`, joined without re-parsing anything.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from icalendar import Alarm, Calendar, Event, vCalAddress, vText, vUri

from shared.colors import css_color_name
from shared.messages import EventData
from shared.recurrence import MAX_LINES, InvalidRecurrence, parse_line
from shared.timezones import UnknownTimezone, resolve, zone
from shared.zone_needs import first_years, vtimezone_block, zone_need

PRODID = "-//Kalends//Kalends Feed 1.0//EN"
FOOTER = b"END:VCALENDAR\r\n"
_END = b"END:VCALENDAR\r\n"


class InvalidEvent(ValueError):
    """An event the renderer cannot express (bad dates, bad recurrence line)."""


@dataclass(frozen=True)
class EventInput:
    """What the renderer needs of an event (a subset of shared.messages.EventData)."""

    uid: str
    sequence: int
    changed_at: datetime
    created_at: datetime
    title: str
    start: str
    end: str
    timezone: str = "UTC"
    all_day: bool = False
    description: str = ""
    location: str = ""
    notify_before: int | None = None
    url: str | None = None
    status: str = "confirmed"
    transparency: str = "opaque"
    classification: str = "public"
    categories: Sequence[str] = ()
    color: str | None = None
    organizer: dict[str, Any] | None = None
    attendees: Sequence[dict[str, Any]] = ()
    conference: str | None = None
    image: str | None = None
    recurrence: Sequence[str] = ()
    cancelled: bool = False


def event_uid(event_id: uuid.UUID) -> str:
    """The event's id as is: a UUID is globally unique (RFC 7986 5.3), and clients that store one
    file per UID (vdirsyncer, DAVx5) keep it unchanged only when it is free of characters like '@'."""
    return str(event_id)


def event_input(event: EventData) -> EventInput:
    return EventInput(
        uid=event_uid(event.event_id),
        sequence=event.sequence,
        changed_at=event.changed_at,
        created_at=event.created_at,
        title=event.title,
        description=event.description,
        location=event.location,
        start=event.start,
        end=event.end,
        timezone=event.timezone,
        all_day=event.all_day,
        notify_before=event.notify_before,
        url=event.url,
        status=event.status,
        transparency=event.transparency,
        classification=event.class_,
        categories=tuple(event.categories),
        color=event.color,
        organizer=event.organizer.model_dump() if event.organizer else None,
        attendees=tuple(p.model_dump() for p in event.attendees),
        conference=event.conference,
        image=event.image,
        recurrence=tuple(event.recurrence),
        cancelled=event.deleted or event.status == "cancelled",
    )


@dataclass(frozen=True)
class RenderedEvent:
    block: bytes
    tzids: tuple[str, ...]  # zone needs, `TZID@YEAR` (timezones.zone_need)
    start_utc: datetime
    skipped: tuple[str, ...] = ()  # recurrence lines left out, and why


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise InvalidEvent(f"{field} must be a date YYYY-MM-DD for an all-day event, got {value!r}") from None


def parse_wall_clock(value: str, field: str) -> datetime:
    """A wall-clock datetime (no zone); an offset or `Z`, if any, is dropped: the zone is the event's."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise InvalidEvent(f"{field} must be an ISO 8601 date-time, got {value!r}") from None
    return moment.replace(tzinfo=None, microsecond=0)


def event_times(event: EventInput) -> tuple[date | datetime, date | datetime, str | None]:
    """DTSTART, DTEND (exclusive) and the TZID used (None for DATE values or UTC)."""
    if event.all_day:
        first = parse_date(event.start, "start")
        last = parse_date(event.end or event.start, "end")
        if last < first:
            raise InvalidEvent("end must not be before start")
        return first, last + timedelta(days=1), None
    try:
        tzid = resolve(event.timezone or "UTC")
    except UnknownTimezone as exc:
        raise InvalidEvent(str(exc)) from None
    tz = zone(tzid)
    start = parse_wall_clock(event.start, "start").replace(tzinfo=tz)
    end = parse_wall_clock(event.end or event.start, "end").replace(tzinfo=tz)
    if end < start:
        raise InvalidEvent("end must not be before start")
    return start, end, None if tzid == "UTC" else tzid


Moments = list[date | datetime]


def _add_moments(component: Event, name: str, value: date | datetime | Moments) -> None:
    """A date-time in a zone as its wall clock with the zone's TZID (a VTIMEZONE says the rest).

    icalendar would write a zone it deems equivalent to UTC today (Africa/Abidjan and its links) as
    UTC, without converting: a 1950 date-time in Africa/Conakry (UTC-1 then) would be an hour off."""
    values = value if isinstance(value, list) else [value]
    tzid = getattr(values[0].tzinfo, "key", None) if values and isinstance(values[0], datetime) else None
    if tzid is None or tzid == "UTC":
        component.add(name, value)
        return
    walls = [moment.replace(tzinfo=None) for moment in values if isinstance(moment, datetime)]
    component.add(name, walls if isinstance(value, list) else walls[0], parameters={"TZID": tzid})


def _add_recurrence(component: Event, event: EventInput, dtstart: date | datetime) -> tuple[Moments, list[str]]:
    """The event's recurrence lines, read by the parser ingest validated them with: the dates used,
    and why any line was left out. Ingest refuses such lines; one stored before it did is dropped
    (and logged by the caller) rather than costing the whole event its place in every feed."""
    moments: Moments = []
    skipped = [f"recurrence: at most {MAX_LINES} lines"] if len(event.recurrence) > MAX_LINES else []
    for index, text in enumerate(event.recurrence[:MAX_LINES]):
        try:
            line = parse_line(text, index, dtstart)
        except InvalidRecurrence as exc:
            skipped.append(str(exc))
            continue
        if line.rule is not None:
            component.add(line.name.lower(), line.rule)
        else:
            _add_moments(component, line.name.lower(), list(line.dates))
            moments.extend(line.dates)
    return moments, skipped


def _mailto(email: str) -> str:
    return email if email.lower().startswith("mailto:") else f"mailto:{email}"


def render_event(event: EventInput) -> RenderedEvent:
    """One VEVENT block. Depends only on the event's own state, so the same event gives the same bytes."""
    dtstart, dtend, tzid = event_times(event)
    component = Event()
    component.add("uid", event.uid)
    stamp = _utc(event.changed_at).replace(microsecond=0)
    component.add("dtstamp", stamp)
    component.add("created", _utc(event.created_at).replace(microsecond=0))
    component.add("last-modified", stamp)
    component.add("sequence", max(0, event.sequence))
    component.add("summary", event.title)
    _add_moments(component, "dtstart", dtstart)
    _add_moments(component, "dtend", dtend)
    if event.description:
        component.add("description", event.description)
    if event.location:
        component.add("location", event.location)
    if event.url:
        component.add("url", vUri(event.url), parameters={"VALUE": "URI"})
    status = "CANCELLED" if event.cancelled else event.status.upper()
    component.add("status", status)
    component.add("transp", event.transparency.upper())
    component.add("class", event.classification.upper())
    if event.categories:
        component.add("categories", list(event.categories))
    if event.color:
        name = css_color_name(event.color)
        if name:
            component.add("color", name)
        if event.color.startswith("#"):
            # COLOR holds only a CSS3 name; these keep the merchant's exact hex for clients reading them.
            component.add("x-apple-calendar-color", event.color.upper())
            component.add("x-outlook-color", event.color.upper())
    if event.organizer and event.organizer.get("email"):
        organizer = vCalAddress(_mailto(event.organizer["email"]))
        if event.organizer.get("name"):
            organizer.params["CN"] = vText(event.organizer["name"])
        component.add("organizer", organizer)
    for person in event.attendees:
        if not person.get("email"):
            continue
        attendee = vCalAddress(_mailto(person["email"]))
        if person.get("name"):
            attendee.params["CN"] = vText(person["name"])
        attendee.params["ROLE"] = (person.get("role") or "REQ-PARTICIPANT").upper()
        attendee.params["PARTSTAT"] = (person.get("partstat") or "NEEDS-ACTION").upper()
        if person.get("rsvp") is not None:
            attendee.params["RSVP"] = "TRUE" if person["rsvp"] else "FALSE"
        component.add("attendee", attendee)
    if event.conference:
        component.add("conference", vUri(event.conference), parameters={"VALUE": "URI", "FEATURE": "VIDEO"})
    if event.image:
        component.add("image", vUri(event.image), parameters={"VALUE": "URI", "DISPLAY": "BADGE"})
    moments, skipped = _add_recurrence(component, event, dtstart)
    moments.append(dtstart)
    if event.notify_before is not None and event.notify_before >= 0 and not event.cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", event.title or "Reminder")
        alarm.add("trigger", timedelta(minutes=-event.notify_before))
        component.add_component(alarm)
    used = _param_tzids(component) | ({tzid} if tzid else set())
    first_year = min(moment.year for moment in moments)
    tzids = tuple(sorted(zone_need(t, first_year) for t in used if t and t != "UTC"))
    start_utc = _utc(dtstart) if isinstance(dtstart, datetime) else datetime.combine(dtstart, datetime.min.time(), UTC)
    return RenderedEvent(bytes(component.to_ical()), tzids, start_utc, tuple(skipped))


def _param_tzids(component: Event) -> set[str | None]:
    found: set[str | None] = set()
    for _name, value in component.property_items(recursive=False):
        params = getattr(value, "params", None)
        if params and "TZID" in params:
            found.add(str(params["TZID"]))
    return found


@dataclass(frozen=True)
class CalendarHeader:
    name: str
    description: str = ""
    color: str | None = None
    image: str | None = None
    refresh_interval: str = "PT1H"
    source: str | None = None
    timezone: str | None = None


def render_header(header: CalendarHeader) -> bytes:
    """BEGIN:VCALENDAR and the calendar's properties (no calendar-level UID), up to the first component."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    # No METHOD: a feed is a publication, not an iTIP message. METHOD:PUBLISH would oblige every
    # VEVENT to carry an ORGANIZER (RFC 5546 3.2.1), which libical's restriction check enforces.
    calendar.add("x-wr-calname", vText(header.name))
    calendar.add("name", vText(header.name))
    if header.description:
        calendar.add("x-wr-caldesc", vText(header.description))
        calendar.add("description", vText(header.description))
    if header.timezone and header.timezone != "UTC":
        calendar.add("x-wr-timezone", vText(header.timezone))
    if header.color:
        name = css_color_name(header.color)
        if name:
            calendar.add("color", name)
        if header.color.startswith("#"):
            calendar.add("x-apple-calendar-color", header.color)
    if header.image:
        calendar.add("image", vUri(header.image), parameters={"VALUE": "URI", "DISPLAY": "BADGE"})
    if header.source:
        calendar.add("source", vUri(header.source), parameters={"VALUE": "URI"})
    interval = header.refresh_interval or "PT1H"
    calendar.add("refresh-interval", vText(interval), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", interval)
    text = bytes(calendar.to_ical())
    assert text.endswith(_END)
    return text[: -len(_END)]


_DURATION = re.compile(r"^P(?!$)(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")


def valid_duration(value: str) -> bool:
    return bool(_DURATION.match(value))


def assemble(header: bytes, tzids: Iterable[str], blocks: Iterable[bytes], vtimezone: Any) -> bytes:
    """header + one VTIMEZONE per TZID (sorted), from the first year its events need + blocks + footer.

    `tzids` are the events' zone needs; `vtimezone(tzid, first_year)` gives a VTIMEZONE's bytes."""
    parts = [header]
    parts.extend(vtimezone(tzid, year) for tzid, year in sorted(first_years(tzids).items()))
    parts.extend(blocks)
    parts.append(FOOTER)
    return b"".join(parts)


def render_single(event: EventData) -> bytes:
    """One event as a whole VCALENDAR object (a CalDAV resource: RFC 4791 4.1, one UID per resource)."""
    rendered = render_event(event_input(event))
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    header = bytes(calendar.to_ical())
    assert header.endswith(_END)
    return assemble(header[: -len(_END)], rendered.tzids, [rendered.block], vtimezone_block)


def strong_etag(*parts: bytes) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part)
    return f'"{digest.hexdigest()}"'
