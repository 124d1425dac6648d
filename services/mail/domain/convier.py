"""Convier requests (seed 000): the form or JSON body read into a validated, typed request.

Bodies arrive as form-encoded bracket keys (`event[start][date]=04/26/2019 09:00 PM`,
`event[attendees][0][email]=...`) or as the same structure in JSON. Bracket keys are decoded by
`qs_codec` (a maintained port of Node's `qs`, the format PHP and Rails forms use). Errors follow
Convier's codes: a missing required parameter is a 400 naming it, a parameter present but unusable
(an impossible date, a bad address, an unknown time zone) a 402.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import qs_codec
from dateutil.parser import isoparse
from icalendar import vRecur

from shared.http import whole_number
from shared.recurrence import MAX_YEAR, MIN_YEAR
from shared.timezones import UnknownTimezone, resolve, zone

Component = Literal["event", "todo", "journal"]
COMPONENTS: tuple[Component, ...] = ("event", "todo", "journal")
LOCALES = ("en", "fr", "de", "es")
EMAIL = re.compile(r"^[^@\s<>,;:\"]+@[^@\s<>,;:\"]+\.[^@\s<>,;:\"]+$")
US_FORMATS = ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%m/%d/%Y")
TODO_STATUSES = ("NEEDS-ACTION", "COMPLETED", "IN-PROCESS", "CANCELLED")
EVENT_STATUSES = ("TENTATIVE", "CONFIRMED", "CANCELLED")
JOURNAL_STATUSES = ("DRAFT", "FINAL", "CANCELLED")
ROLES = ("CHAIR", "REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT")
MAX_ATTENDEES = 500


class ConvierError(Exception):
    """A request Convier refuses: 400 (missing parameter) or 402 (present but unusable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def missing(name: str) -> ConvierError:
    return ConvierError(400, f"Missing required parameter: {name}.")


def unusable(name: str, why: str) -> ConvierError:
    return ConvierError(402, f"Parameter {name} is unusable: {why}.")


@dataclass(frozen=True)
class Moment:
    """A date (all day), a floating or zoned wall clock (`tzid`), or a UTC instant (`tzid` "UTC")."""

    value: datetime | date
    tzid: str | None = None


@dataclass(frozen=True)
class Person:
    email: str
    name: str | None = None
    role: str | None = None
    rsvp: bool = True


@dataclass(frozen=True)
class Conference:
    uri: str
    features: tuple[str, ...] = ()
    label: str | None = None


@dataclass(frozen=True)
class Available:
    start: Moment
    end: Moment | None
    summary: str | None = None
    rrule: str | None = None


@dataclass(frozen=True)
class EmailOptions:
    subject: str | None = None
    body: str | None = None
    locale: str = "en"
    attach: bool = False
    inline: bool = True


@dataclass(frozen=True)
class ConvierRequest:
    component: Component
    uid: str | None
    fields: dict[str, Any]  # typed values by iCalendar property name (lower case): summary, dtstart...
    organizer: Person | None
    attendees: tuple[Person, ...]
    conferences: tuple[Conference, ...] = ()
    calendar: dict[str, Any] = field(default_factory=dict)
    availability: tuple[Available, ...] = ()
    email: EmailOptions = EmailOptions()
    download: bool = False
    method: str = "REQUEST"


def decode_form(text: str) -> dict[str, Any]:
    """Bracket keys to nested dicts; indexed keys (`[0]`, `[1]`) to lists, however many there are."""
    return _lists(qs_codec.decode(text, qs_codec.DecodeOptions(list_limit=MAX_ATTENDEES)))


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        # whole_number, not str.isdigit(): that is also true of "²", which int() refuses (it was a 500).
        if value and all(isinstance(k, str) and whole_number(k, 6) is not None for k in value):
            return [_lists(value[k]) for k in sorted(value, key=int)]
        return {str(k): _lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lists(v) for v in value]
    return value


def _text(value: Any, name: str) -> str | None:
    """A property given as text or as `{"value": text}` (the seed's `event[summary][value]`)."""
    if isinstance(value, dict):
        value = value.get("value")
        name = f"{name}[value]"
    if value is None or value == "":
        return None
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, str):
        raise unusable(name, "expected text")
    if "\x00" in value:
        raise unusable(name, "contains a NUL character")
    return value


def flag(value: Any, name: str, default: bool) -> bool:
    text = _text(value, name)
    if text is None:
        return default
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise unusable(name, "expected true or false")


def time_zone(value: Any, name: str) -> str | None:
    text = _text(value, name)
    if text is None:
        return None
    try:
        return resolve(text)
    except UnknownTimezone as exc:
        raise unusable(name, str(exc)) from None


def moment(value: Any, name: str, default_tz: str | None = None) -> Moment | None:
    """`{date, timezone}` or a plain string: `MM/DD/YYYY hh:mm AM` or ISO 8601 (an offset: UTC)."""
    tzid = default_tz
    if isinstance(value, dict):
        tzid = time_zone(value.get("timezone") or value.get("tzid") or value.get("time_zone"), name) or tzid
        value = value.get("date") if "date" in value else value.get("value")
        name = f"{name}[date]"
    text = _text(value, name)
    if text is None:
        return None
    text = text.strip()
    parsed: datetime | date | None = None
    for form in US_FORMATS:
        try:
            parsed = datetime.strptime(text, form)
        except ValueError:
            continue
        if form == "%m/%d/%Y":
            return Moment(parsed.date())
        break
    if parsed is None:
        parsed = _iso(text, name)
        if isinstance(parsed, date) and not isinstance(parsed, datetime):
            return Moment(parsed)
    assert isinstance(parsed, datetime)
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise unusable(name, f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
    if parsed.tzinfo is not None:
        return Moment(parsed.astimezone(zone("UTC")).replace(tzinfo=None), "UTC")
    return Moment(parsed.replace(microsecond=0), tzid)


def _iso(text: str, name: str) -> datetime | date:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise unusable(name, f"{text!r} is not a real date") from None
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise unusable(name, f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
        return day
    if not re.match(r"^\d{4}-?\d{2}-?\d{2}T", text):
        raise unusable(name, f"{text[:40]!r} is neither MM/DD/YYYY hh:mm AM nor ISO 8601")
    try:
        return isoparse(text)
    except (ValueError, OverflowError):
        raise unusable(name, f"{text[:40]!r} is not a real date and time") from None


def email_address(value: Any, name: str) -> str:
    text = _text(value, name)
    if text is None:
        raise missing(name)
    address = text.strip().removeprefix("mailto:")
    if not EMAIL.match(address) or len(address) > 254:
        raise unusable(name, f"{address[:80]!r} is not an email address")
    return address


def person(value: Any, name: str) -> Person:
    if isinstance(value, str):
        return Person(email_address(value, name))
    if not isinstance(value, dict):
        raise unusable(name, "expected {email, name}")
    role = _text(value.get("role"), f"{name}[role]")
    if role is not None:
        role = role.strip().upper().replace("_", "-")
        if role not in ROLES:
            raise unusable(f"{name}[role]", f"expected one of {', '.join(ROLES)}")
    return Person(
        email=email_address(value.get("email"), f"{name}[email]"),
        name=_text(value.get("name") or value.get("cn"), f"{name}[name]"),
        role=role,
        rsvp=flag(value.get("rsvp"), f"{name}[rsvp]", True),
    )


def _as_list(value: Any, name: str) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise unusable(name, "expected a list")
    return value


def whole(value: Any, name: str, low: int, high: int) -> int | None:
    text = _text(value, name)
    if text is None:
        return None
    number = whole_number(text.strip())
    if number is None or not low <= number <= high:
        raise unusable(name, f"expected a whole number from {low} to {high}")
    return number


def duration(value: Any, name: str) -> timedelta | None:
    text = _text(value, name)
    if text is None:
        return None
    # [0-9] with a bound, not \d+: int() refuses a number of over 4,300 digits (a 500).
    n = "([0-9]{1,15})"
    match = re.fullmatch(f"P(?:{n}W)?(?:{n}D)?(?:T(?:{n}H)?(?:{n}M)?(?:{n}S)?)?", text.strip().upper())
    if not match or not any(match.groups()):
        raise unusable(name, "expected an ISO 8601 duration such as PT1H or P1D")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    try:
        return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:  # PT45117079069H (schemathesis): beyond what any date arithmetic can hold
        raise unusable(name, "expected a duration of at most 999,999,999 days") from None


def url(value: Any, name: str) -> str | None:
    text = _text(value, name)
    if text is None:
        return None
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$", text.strip()):
        raise unusable(name, "expected an absolute URI")
    return text.strip()


def email_options(value: Any) -> EmailOptions:
    if value is None or value == "":
        return EmailOptions()
    if not isinstance(value, dict):
        raise unusable("email", "expected email[subject], email[body], email[locale], email[attach], email[inline]")
    locale = (_text(value.get("locale"), "email[locale]") or "en").strip().lower().replace("_", "-")
    language = locale.split("-")[0]
    return EmailOptions(
        subject=_text(value.get("subject"), "email[subject]"),
        body=_text(value.get("body"), "email[body]"),
        locale=language if language in LOCALES else "en",
        attach=flag(value.get("attach"), "email[attach]", False),
        inline=flag(value.get("inline"), "email[inline]", True),
    )


def rrule(value: Any, name: str) -> str | None:
    """An RFC 5545 RRULE value (with or without the `RRULE:` prefix), checked by icalendar's parser."""
    text = _text(value, name)
    if text is None:
        return None
    rule = text.strip().removeprefix("RRULE:")
    try:
        parsed = vRecur.from_ical(rule)
    except (ValueError, TypeError):
        raise unusable(name, f"{rule[:80]!r} is not an RFC 5545 RRULE") from None
    if "FREQ" not in parsed:
        raise unusable(name, "an RRULE needs FREQ")
    return rule
