"""Time-zone names: IANA ids as they are, Windows ids mapped through CLDR's windowsZones table.

The table is the one icalendar ships (generated from CLDR's `windowsZones.xml`, territory "001"),
so the mapping follows the library rather than a copy of our own.
"""

from __future__ import annotations

import functools
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from icalendar import Timezone
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

# VTIMEZONEs list explicit transitions over this span. Both bounds are fixed so that the same
# TZID always renders the same bytes; events outside it are rare for a published calendar.
VTIMEZONE_FIRST = date(2000, 1, 1)
VTIMEZONE_LAST = date(2040, 1, 1)

_WINDOWS_LOWER = {name.lower(): iana for name, iana in WINDOWS_TO_OLSON.items()}


@functools.cache
def _iana_lower() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


class UnknownTimezone(ValueError):
    """Neither an IANA zone nor a Windows zone id CLDR maps."""


def to_iana(name: str) -> str:
    """The IANA id for an IANA or Windows zone name (case-insensitive); raises UnknownTimezone."""
    key = name.strip()
    if not key:
        raise UnknownTimezone("empty time zone")
    if key.upper() in {"UTC", "Z", "GMT", "ETC/UTC"}:
        return "UTC"
    canonical = _iana_lower().get(key.lower())
    if canonical is not None:
        return canonical
    mapped = _WINDOWS_LOWER.get(key.lower())
    if mapped is not None:
        return mapped
    raise UnknownTimezone(f"unknown time zone {name!r}: use an IANA name (America/New_York) or a Windows id")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(to_iana(name))
    except ZoneInfoNotFoundError as exc:  # pragma: no cover - table and tzdata disagree
        raise UnknownTimezone(str(exc)) from None


@functools.cache
def vtimezone_block(tzid: str) -> bytes:
    """The VTIMEZONE of one IANA zone, rendered once per process (deterministic bytes)."""
    component = Timezone.from_tzid(tzid, first_date=VTIMEZONE_FIRST, last_date=VTIMEZONE_LAST)
    for observance in component.subcomponents:
        # One RDATE property per transition: ical.js reads only the first value of a multi-valued
        # RDATE in a VTIMEZONE (found by the cross-parser tests), which shifts every later instant.
        rdates = observance.get("RDATE")
        if rdates is None:
            continue
        moments = [d.dt for value in (rdates if isinstance(rdates, list) else [rdates]) for d in value.dts]
        del observance["RDATE"]
        for moment in moments:
            observance.add("rdate", moment)
    return bytes(component.to_ical())
