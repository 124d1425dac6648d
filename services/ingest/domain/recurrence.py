"""Recurrence lines of RFC 5545 (RRULE, EXRULE, RDATE, EXDATE), checked before they are stored.

Rules are parsed by dateutil (with the event's start as DTSTART, so UNTIL is held to RFC 5545's
form); date lists by icalendar's property types. Lines are stored as sent, names upper-cased.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime

from dateutil.rrule import rrulestr
from icalendar.parser import Contentline
from icalendar.prop import vDDDTypes

from services.ingest.domain.timezones import to_iana
from shared.errors import InvalidRequest

RULE_NAMES = ("RRULE", "EXRULE")
DATE_NAMES = ("RDATE", "EXDATE")
MAX_LINES = 50
MAX_LINE_LENGTH = 2000


def _split(line: str, field: str) -> tuple[str, dict[str, str], str]:
    try:
        name, params, value = Contentline(line).parts()
    except Exception as exc:  # icalendar raises ValueError and friends with no common base
        raise InvalidRequest(f"{field}: not an RFC 5545 content line ({type(exc).__name__})") from None
    return str(name).upper(), {str(k).upper(): str(v) for k, v in params.items()}, str(value)


def _dtstart(start: str, all_day: bool, timezone: str) -> datetime:
    if all_day:
        return datetime.combine(date.fromisoformat(start), datetime.min.time())
    return datetime.fromisoformat(start).replace(tzinfo=zoneinfo.ZoneInfo(timezone))


def validate_line(line: str, index: int, *, start: str, all_day: bool, timezone: str) -> str:
    field = f"recurrence[{index}]"
    if not isinstance(line, str) or not line.strip():
        raise InvalidRequest(f"{field}: expected a line such as 'RRULE:FREQ=WEEKLY;COUNT=10'")
    if len(line) > MAX_LINE_LENGTH or any(c in line for c in "\r\n"):
        raise InvalidRequest(f"{field}: a recurrence line is one line of at most {MAX_LINE_LENGTH} characters")
    name, params, value = _split(line.strip(), field)
    if name in RULE_NAMES:
        if params:
            raise InvalidRequest(f"{field}: {name} takes no parameters")
        try:
            rrulestr(f"RRULE:{value}", dtstart=_dtstart(start, all_day, timezone))
        except (ValueError, TypeError, OverflowError, KeyError) as exc:
            raise InvalidRequest(f"{field}: invalid {name}: {str(exc)[:200]}") from None
        return f"{name}:{value.upper()}"
    if name in DATE_NAMES:
        if "TZID" in params:
            to_iana(params["TZID"], f"{field} TZID")
        if params.get("VALUE", "DATE-TIME").upper() not in ("DATE", "DATE-TIME", "PERIOD"):
            raise InvalidRequest(f"{field}: VALUE must be DATE, DATE-TIME or PERIOD")
        for item in value.split(","):
            try:
                vDDDTypes.from_ical(item.strip())
            except (ValueError, TypeError, OverflowError) as exc:
                raise InvalidRequest(f"{field}: {item.strip()[:40]!r} is not a date, date-time or period") from exc
        return line.strip()[: len(name)].upper() + line.strip()[len(name) :]
    raise InvalidRequest(f"{field}: expected RRULE, EXRULE, RDATE or EXDATE, not {name[:20]!r}")


def validate_recurrence(lines: list[str], *, start: str, all_day: bool, timezone: str) -> list[str]:
    if len(lines) > MAX_LINES:
        raise InvalidRequest(f"recurrence: at most {MAX_LINES} lines")
    return [validate_line(line, i, start=start, all_day=all_day, timezone=timezone) for i, line in enumerate(lines)]
