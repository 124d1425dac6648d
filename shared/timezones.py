"""Time-zone names, resolved one way for every service: what ingest accepts, feed and sync render.

A name is an IANA zone of the pinned `tzdata` package's list (any case; "Factory" and the files
that are not zones, such as `posixrules`, `right/UTC` or `localtime`, are not on it), a UTC alias,
or a Windows id. Windows ids go through CLDR's windowsZones table (territory 001) as icalendar
ships it (`icalendar.timezone.windows_to_olson`), plus two ids that CLDR has retired but CalReply's
Timezones page (seed 002) still lists, with the zones older CLDR releases gave them.
"""

from __future__ import annotations

import functools
from importlib import resources
from zoneinfo import ZoneInfo

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_RETIRED_WINDOWS_IDS = {
    "Mid-Atlantic Standard Time": "Etc/GMT+2",
    "Kamchatka Standard Time": "Asia/Kamchatka",
}
WINDOWS_TO_IANA: dict[str, str] = {**WINDOWS_TO_OLSON, **_RETIRED_WINDOWS_IDS}
_WINDOWS_BY_LOWER = {name.lower(): name for name in WINDOWS_TO_IANA}
_UTC_ALIASES = {"utc", "z", "gmt", "etc/utc", "zulu", "etc/zulu", "universal", "etc/universal"}
# On tzdata's list, but no place keeps its clocks by it ("-00": local time unknown).
_NOT_A_PLACE = {"factory"}
MAX_NAME_LENGTH = 64


class UnknownTimezone(ValueError):
    """Neither an IANA zone of tzdata's list, a UTC alias, nor a Windows id."""


@functools.cache
def _iana_by_lower() -> dict[str, str]:
    listed = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return {name.lower(): name for name in listed if name.lower() not in _NOT_A_PLACE}


def windows_id(name: str) -> str | None:
    """The Windows id spelled as Windows spells it, or None when `name` is not one."""
    return _WINDOWS_BY_LOWER.get(name.strip().lower())


def resolve(name: str) -> str:
    """The IANA name (tzdata's spelling, or "UTC") for an IANA name or Windows id; UnknownTimezone else."""
    key = name.strip()
    if not key or len(key) > MAX_NAME_LENGTH:
        raise UnknownTimezone(f"unknown time zone {key[:MAX_NAME_LENGTH]!r}: use an IANA name or a Windows id")
    if key.lower() in _UTC_ALIASES:
        return "UTC"
    windows = windows_id(key)
    if windows is not None:
        return WINDOWS_TO_IANA[windows]
    iana = _iana_by_lower().get(key.lower())
    if iana is None:
        raise UnknownTimezone(f"unknown time zone {key!r}: use an IANA name (Europe/Berlin) or a Windows id")
    return iana


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The tzinfo of a name `resolve` accepts."""
    return ZoneInfo(resolve(name))


def is_utc(name: str) -> bool:
    return resolve(name) == "UTC"
