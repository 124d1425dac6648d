"""A ConvierRequest rendered as iCalendar with the `icalendar` library (RFC 5545, 7986, 7953)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from icalendar import Calendar, Component, Event, Journal, Todo, vCalAddress, vText
from icalendar.cal import Availability
from icalendar.cal import Available as AvailableComponent

from services.mail.domain.convier import ConvierRequest, Moment, Person
from shared.colors import css_color_name
from shared.timezones import zone
from shared.vtimezone import vtimezone

PRODID = "-//Kalends//Convier//EN"
COMPONENT_CLASSES: dict[str, type[Component]] = {"event": Event, "todo": Todo, "journal": Journal}


def _value(when: Moment) -> datetime | date:
    if isinstance(when.value, datetime) and when.tzid:
        return when.value.replace(tzinfo=zone(when.tzid))
    return when.value


def _address(who: Person, *, attendee: bool) -> vCalAddress:
    address = vCalAddress(f"mailto:{who.email}")
    if who.name:
        address.params["CN"] = vText(who.name)
    if attendee:
        address.params["ROLE"] = vText(who.role or "REQ-PARTICIPANT")
        address.params["PARTSTAT"] = vText("NEEDS-ACTION")
        address.params["RSVP"] = vText("TRUE" if who.rsvp else "FALSE")
    return address


def _color(target: Component, color: str) -> None:
    name = css_color_name(color)
    if name:
        target.add("color", name)
    if color.startswith("#"):
        target.add("x-apple-calendar-color", color.upper())


def _component(request: ConvierRequest, uid: str, sequence: int, stamp: datetime) -> Component:
    item = COMPONENT_CLASSES[request.component]()
    item.add("uid", uid)
    item.add("dtstamp", stamp)
    item.add("sequence", sequence)
    for prop, value in request.fields.items():
        if isinstance(value, Moment):
            item.add(prop, _value(value))
        elif prop == "color":
            _color(item, value)
        elif prop == "rrule":
            item.add("rrule", _rrule(value))
        elif prop == "image":
            item.add("image", value, parameters={"VALUE": "URI"})
        else:
            item.add(prop, value)
    if request.method == "CANCEL":
        item["status"] = "CANCELLED"
    if request.organizer:
        item.add("organizer", _address(request.organizer, attendee=False))
    for who in request.attendees:
        item.add("attendee", _address(who, attendee=True))
    for conference in request.conferences:
        params: dict[str, Any] = {"VALUE": "URI"}
        if conference.features:
            params["FEATURE"] = list(conference.features)
        if conference.label:
            params["LABEL"] = conference.label
        item.add("conference", conference.uri, parameters=params)
    return item


def _rrule(text: str) -> dict[str, Any]:
    from icalendar import vRecur

    return dict(vRecur.from_ical(text))


def _availability(request: ConvierRequest, uid: str, stamp: datetime) -> Availability:
    availability = Availability()
    availability.add("uid", f"{uid}-availability")
    availability.add("dtstamp", stamp)
    if request.organizer:
        availability.add("organizer", _address(request.organizer, attendee=False))
    for i, block in enumerate(request.availability):
        available = AvailableComponent()
        available.add("uid", f"{uid}-available-{i}")
        available.add("dtstamp", stamp)
        available.add("dtstart", _value(block.start))
        if block.end is not None:
            available.add("dtend", _value(block.end))
        if block.summary:
            available.add("summary", block.summary)
        if block.rrule:
            available.add("rrule", _rrule(block.rrule.removeprefix("RRULE:")))
        availability.add_component(available)
    return availability


def _zones(request: ConvierRequest) -> dict[str, int]:
    moments = [v for v in request.fields.values() if isinstance(v, Moment)]
    moments += [b.start for b in request.availability] + [b.end for b in request.availability if b.end]
    years: dict[str, int] = {}
    for when in moments:
        if isinstance(when.value, datetime) and when.tzid and when.tzid != "UTC":
            years[when.tzid] = min(years.get(when.tzid, when.value.year), when.value.year)
    return years


def render_calendar(request: ConvierRequest, *, uid: str, sequence: int, stamp: datetime, method: str) -> bytes:
    """One VCALENDAR: the `calendar` globals, one VTIMEZONE per TZID, the component, availability."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    globals_ = request.calendar
    parameters = {"url": {"VALUE": "URI"}, "source": {"VALUE": "URI"}, "refresh-interval": {"VALUE": "DURATION"}}
    for prop in ("name", "description", "url", "source", "refresh-interval"):
        if prop in globals_:
            calendar.add(prop, globals_[prop], parameters=parameters.get(prop, {}))
    if "name" in globals_:
        calendar.add("x-wr-calname", globals_["name"])
    if "image" in globals_:
        calendar.add("image", globals_["image"], parameters={"VALUE": "URI"})
    if "color" in globals_:
        _color(calendar, globals_["color"])
    for tzid, year in sorted(_zones(request).items()):
        calendar.add_component(vtimezone(tzid, year))
    calendar.add_component(_component(request, uid, sequence, stamp))
    if request.availability:
        calendar.add_component(_availability(request, uid, stamp))
    return calendar.to_ical()
