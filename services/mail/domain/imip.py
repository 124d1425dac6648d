"""iTIP objects for iMIP (RFC 5546, RFC 6047): the calendar a recipient gets for REQUEST or CANCEL.

The caller's VCALENDAR (one component, or several sharing one UID: a recurring series and its
overrides) is the truth; this module sets METHOD, puts the organizer in, marks every attendee
NEEDS-ACTION with RSVP=TRUE for a request, and for a cancellation names only whom it cancels.
"""

from __future__ import annotations

from dataclasses import dataclass

from icalendar import Calendar, vCalAddress, vText

COMPONENTS = ("VEVENT", "VTODO", "VJOURNAL")
METHODS = ("REQUEST", "CANCEL")


class InvalidInvitation(ValueError):
    """A calendar that cannot be sent as an invitation (no component, several UIDs)."""


@dataclass(frozen=True)
class Party:
    email: str
    name: str | None = None


def mailto(email: str) -> str:
    return email if email.lower().startswith("mailto:") else f"mailto:{email}"


def address_of(value: object) -> str:
    """`mailto:Ann@Example.com` -> `ann@example.com`."""
    text = str(value)
    return (text[7:] if text.lower().startswith("mailto:") else text).strip().lower()


def parse_calendar(text: str | bytes) -> Calendar:
    try:
        calendar = Calendar.from_ical(text)
    except ValueError as exc:
        raise InvalidInvitation(f"the calendar is not valid iCalendar ({exc})") from None
    components = [c for c in calendar.subcomponents if c.name in COMPONENTS]
    if not components:
        raise InvalidInvitation("the calendar holds no VEVENT, VTODO or VJOURNAL")
    uids = {str(c.get("uid", "")) for c in components}
    if len(uids) != 1 or "" in uids:
        raise InvalidInvitation("an invitation carries one UID (a series and its overrides share it)")
    return calendar


def calendar_uid(calendar: Calendar) -> str:
    return next(str(c["uid"]) for c in calendar.subcomponents if c.name in COMPONENTS)


def _attendee(party: Party, partstat: str) -> vCalAddress:
    address = vCalAddress(mailto(party.email))
    if party.name:
        address.params["CN"] = vText(party.name)
    address.params["ROLE"] = "REQ-PARTICIPANT"
    address.params["PARTSTAT"] = partstat
    address.params["RSVP"] = "TRUE"
    return address


def itip(
    calendar: Calendar,
    method: str,
    organizer: Party,
    attendees: list[Party],
    *,
    sequence: int | None = None,
) -> bytes:
    """The VCALENDAR to send: METHOD set, ORGANIZER set, ATTENDEE lines exactly `attendees`
    (NEEDS-ACTION, RSVP=TRUE), SEQUENCE `sequence` when given, STATUS:CANCELLED for a cancellation."""
    if method not in METHODS:
        raise InvalidInvitation(f"method must be one of {', '.join(METHODS)}")
    out = Calendar.from_ical(calendar.to_ical())
    for name in ("method",):
        out.pop(name, None)
    out.add("method", method)
    if "prodid" not in out:
        out.add("prodid", "-//Kalends//Kalends//EN")
    if "version" not in out:
        out.add("version", "2.0")
    for component in out.subcomponents:
        if component.name not in COMPONENTS:
            continue
        for name in ("organizer", "attendee"):
            component.pop(name, None)
        owner = vCalAddress(mailto(organizer.email))
        if organizer.name:
            owner.params["CN"] = vText(organizer.name)
        component.add("organizer", owner)
        for party in attendees:
            component.add("attendee", _attendee(party, "NEEDS-ACTION"))
        if sequence is not None:
            component.pop("sequence", None)
            component.add("sequence", sequence)
        if method == "CANCEL":
            component.pop("status", None)
            component.add("status", "CANCELLED")
    return bytes(out.to_ical())


def summary_of(calendar: Calendar) -> tuple[str, str, str]:
    """(summary, when, location) of the first component, for the mail's text."""
    component = next(c for c in calendar.subcomponents if c.name in COMPONENTS)
    start = component.get("dtstart") or component.get("due")
    when = ""
    if start is not None:
        moment = start.dt
        when = moment.isoformat(sep=" ") if hasattr(moment, "hour") else moment.isoformat()
        tzid = start.params.get("TZID")
        if tzid:
            when = f"{when} ({tzid})"
    return str(component.get("summary", "")), when, str(component.get("location", ""))
