"""A Convier body (already decoded to nested dicts) read into a ConvierRequest, per component."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.mail.domain.convier import (
    COMPONENTS,
    EVENT_STATUSES,
    JOURNAL_STATUSES,
    MAX_ATTENDEES,
    TODO_STATUSES,
    Available,
    Component,
    Conference,
    ConvierRequest,
    Moment,
    _as_list,
    _text,
    duration,
    email_options,
    flag,
    missing,
    moment,
    person,
    rrule,
    time_zone,
    unusable,
    url,
    whole,
)

TEXT_PROPERTIES = ("summary", "description", "location", "comment", "contact")
METHODS = ("REQUEST", "CANCEL")


def _status(value: Any, name: str, allowed: tuple[str, ...]) -> str | None:
    text = _text(value, name)
    if text is None:
        return None
    status = text.strip().upper().replace("_", "-").replace(" ", "-")
    if status not in allowed:
        raise unusable(name, f"expected one of {', '.join(allowed)}")
    return status


def _after(first: Moment | None, last: Moment | None, name: str) -> None:
    if first is None or last is None:
        return
    a, b = first.value, last.value
    if isinstance(a, datetime) != isinstance(b, datetime):
        raise unusable(name, "give dates for both (all day) or date-times for both")
    if (a.replace(tzinfo=None) if isinstance(a, datetime) else a) > (
        b.replace(tzinfo=None) if isinstance(b, datetime) else b
    ) and first.tzid == last.tzid:
        raise unusable(name, "it is before the start")


def _common(body: dict[str, Any], prefix: str, tz: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for prop in TEXT_PROPERTIES:
        value = _text(body.get(prop), f"{prefix}[{prop}]")
        if value is not None:
            fields[prop] = value
    start = moment(body.get("start") or body.get("dtstart"), f"{prefix}[start]", tz)
    if start is not None:
        fields["dtstart"] = start
    for prop in ("url", "image"):
        value = url(body.get(prop), f"{prefix}[{prop}]")
        if value is not None:
            fields[prop] = value
    color = _text(body.get("color"), f"{prefix}[color]")
    if color is not None:
        fields["color"] = color.strip()
    categories = body.get("categories")
    if categories:
        fields["categories"] = [
            _text(c, f"{prefix}[categories]") or ""
            for c in (categories if isinstance(categories, list) else [categories])
        ]
    recurrence = rrule(body.get("rrule"), f"{prefix}[rrule]")
    if recurrence is not None:
        fields["rrule"] = recurrence
    klass = _text(body.get("class"), f"{prefix}[class]")
    if klass is not None:
        fields["class"] = _status(klass, f"{prefix}[class]", ("PUBLIC", "PRIVATE", "CONFIDENTIAL"))
    return fields


def _event(body: dict[str, Any], tz: str | None) -> dict[str, Any]:
    fields = _common(body, "event", tz)
    if "dtstart" not in fields:
        raise missing("event[start][date]")
    end = moment(body.get("end") or body.get("dtend"), "event[end]", tz)
    _after(fields["dtstart"], end, "event[end]")
    if end is not None:
        fields["dtend"] = end
    status = _status(body.get("status"), "event[status]", EVENT_STATUSES)
    if status:
        fields["status"] = status
    transparency = _status(
        body.get("transparency") or body.get("transp"), "event[transparency]", ("OPAQUE", "TRANSPARENT")
    )
    if transparency:
        fields["transp"] = transparency
    return fields


def _todo(body: dict[str, Any], tz: str | None) -> dict[str, Any]:
    fields = _common(body, "todo", tz)
    if "summary" not in fields:
        raise missing("todo[summary][value]")
    due = moment(body.get("due"), "todo[due]", tz)
    _after(fields.get("dtstart"), due, "todo[due]")
    completed = moment(body.get("completed"), "todo[completed]", tz)
    if due is not None:
        fields["due"] = due
    if completed is not None:
        fields["completed"] = completed
    percent = whole(
        body.get("percent") or body.get("percent-complete") or body.get("percent_complete"), "todo[percent]", 0, 100
    )
    if percent is not None:
        fields["percent-complete"] = percent
    priority = whole(body.get("priority"), "todo[priority]", 0, 9)
    if priority is not None:
        fields["priority"] = priority
    status = _status(body.get("status"), "todo[status]", TODO_STATUSES)
    if status:
        fields["status"] = status
    return fields


def _journal(body: dict[str, Any], tz: str | None) -> dict[str, Any]:
    fields = _common(body, "journal", tz)
    if "summary" not in fields and "description" not in fields:
        raise missing("journal[summary][value]")
    status = _status(body.get("status"), "journal[status]", JOURNAL_STATUSES)
    if status:
        fields["status"] = status
    return fields


def _conferences(value: Any) -> tuple[Conference, ...]:
    found = []
    for i, item in enumerate(_as_list(value, "event[conference]")):
        name = f"event[conference][{i}]"
        if isinstance(item, str):
            item = {"uri": item}
        if not isinstance(item, dict):
            raise unusable(name, "expected {uri, feature, label}")
        uri = url(item.get("uri") or item.get("url") or item.get("value"), f"{name}[uri]")
        if uri is None:
            raise missing(f"{name}[uri]")
        features = item.get("feature") or item.get("features") or []
        features = features.split(",") if isinstance(features, str) else _as_list(features, f"{name}[feature]")
        found.append(
            Conference(
                uri=uri,
                features=tuple((_text(f, f"{name}[feature]") or "").strip().upper() for f in features if f),
                label=_text(item.get("label"), f"{name}[label]"),
            )
        )
    return tuple(found)


def _calendar(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise unusable("calendar", "expected calendar[name], calendar[description], ...")
    calendar: dict[str, Any] = {}
    for prop in ("name", "description", "color"):
        text = _text(value.get(prop), f"calendar[{prop}]")
        if text is not None:
            calendar[prop] = text
    for prop in ("url", "source", "image"):
        uri = url(value.get(prop), f"calendar[{prop}]")
        if uri is not None:
            calendar[prop] = uri
    refresh = duration(value.get("refresh-interval") or value.get("refresh_interval"), "calendar[refresh-interval]")
    if refresh is not None:
        calendar["refresh-interval"] = refresh
    return calendar


def _availability(value: Any, tz: str | None) -> tuple[Available, ...]:
    blocks = []
    for i, item in enumerate(_as_list(value, "availability")):
        name = f"availability[{i}]"
        if not isinstance(item, dict):
            raise unusable(name, "expected {start, end, summary, rrule}")
        start = moment(item.get("start"), f"{name}[start]", tz)
        if start is None:
            raise missing(f"{name}[start][date]")
        end = moment(item.get("end"), f"{name}[end]", tz)
        _after(start, end, f"{name}[end]")
        recurrence = rrule(item.get("rrule"), f"{name}[rrule]")
        blocks.append(Available(start, end, _text(item.get("summary"), f"{name}[summary]"), recurrence))
    return tuple(blocks)


def parse_request(component: Component, payload: Any) -> ConvierRequest:
    """The request for `POST /api/{component}`; ConvierError (400/402) names what is wrong."""
    assert component in COMPONENTS
    if not isinstance(payload, dict):
        raise missing(component)
    body = payload.get(component)
    if not isinstance(body, dict) or not body:
        raise missing(component)
    tz = time_zone(body.get("timezone") or payload.get("timezone"), f"{component}[timezone]")
    parse = {"event": _event, "todo": _todo, "journal": _journal}[component]
    fields = parse(body, tz)
    attendees = _as_list(body.get("attendees"), f"{component}[attendees]")
    if len(attendees) > MAX_ATTENDEES:
        raise unusable(f"{component}[attendees]", f"at most {MAX_ATTENDEES} attendees")
    organizer = body.get("organizer")
    method = (_text(payload.get("method"), "method") or "REQUEST").strip().upper()
    if method not in METHODS:
        raise unusable("method", f"expected one of {', '.join(METHODS)}")
    uid = _text(body.get("uid") or payload.get("uid"), "uid")
    if uid is not None and (len(uid) > 255 or not uid.strip()):
        raise unusable("uid", "1 to 255 characters")
    return ConvierRequest(
        component=component,
        uid=uid.strip() if uid else None,
        fields=fields,
        organizer=person(organizer, f"{component}[organizer]") if organizer else None,
        attendees=tuple(person(a, f"{component}[attendees][{i}]") for i, a in enumerate(attendees)),
        conferences=_conferences(body.get("conference")) if component == "event" else (),
        calendar=_calendar(payload.get("calendar")),
        availability=_availability(payload.get("availability"), tz),
        email=email_options(payload.get("email")),
        download=flag(payload.get("download"), "download", False),
        method=method,
    )


def all_day(value: datetime | date) -> bool:
    return not isinstance(value, datetime)
