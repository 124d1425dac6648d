"""Time zone names at the API edge: Windows ids (CalReply) and IANA names, both to IANA.

The Windows table is CLDR's windowsZones (territory 001), as icalendar ships it
(`icalendar.timezone.windows_to_olson`, pinned with icalendar). Two ids of the seed's Timezones
page that CLDR has since retired are added with the zones older CLDR releases gave them.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from shared.errors import InvalidRequest

# Retired from CLDR, still on CalReply's list (seed 002, "Timezones").
_RETIRED_WINDOWS_IDS = {
    "Mid-Atlantic Standard Time": "Etc/GMT+2",
    "Kamchatka Standard Time": "Asia/Kamchatka",
}

WINDOWS_TO_IANA: dict[str, str] = {**WINDOWS_TO_OLSON, **_RETIRED_WINDOWS_IDS}
_WINDOWS_BY_LOWER = {name.lower(): name for name in WINDOWS_TO_IANA}


def windows_id(name: str) -> str | None:
    """The Windows id spelled as Windows spells it, or None when `name` is not one."""
    return _WINDOWS_BY_LOWER.get(name.strip().lower())


@lru_cache(maxsize=1024)
def _iana(name: str) -> str | None:
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return name


def to_iana(name: str, field: str) -> str:
    """An IANA name for a Windows id or an IANA name; a 400 naming `field` otherwise."""
    cleaned = name.strip()
    windows = windows_id(cleaned)
    if windows is not None:
        return WINDOWS_TO_IANA[windows]
    iana = _iana(cleaned)
    if iana is None:
        raise InvalidRequest(f"{field}: unknown time zone {cleaned[:64]!r}; use a Windows id or an IANA name")
    return iana


def require_windows_id(name: str, field: str) -> str:
    """A time-zone tag must be a Windows id (what CalReply's time-zone filter matches)."""
    windows = windows_id(name)
    if windows is None:
        raise InvalidRequest(f"{field}: unknown Windows time zone id {name.strip()[:64]!r}")
    return windows
