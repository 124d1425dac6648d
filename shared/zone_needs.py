"""The VTIMEZONEs a feed carries: one per TZID, right from the first year its events need.

Each rendered event says which zones it needs and from which year, as `TZID@YEAR` (stored with
its block). A feed takes, per TZID, the earliest year its events need and one year before it (so
that a wall-clock time near New Year, and the offset in force then, are covered), and writes the
zone's VTIMEZONE from that year on (see vtimezone.py). The bytes depend only on the TZID and that
year, so they are rendered once per process and the same feed state always gives the same feed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from shared.vtimezone import vtimezone

# What a need written before needs carried a year (a bare TZID) covers.
DEFAULT_FIRST_YEAR = 1970
_SEPARATOR = "@"


def zone_need(tzid: str, year: int) -> str:
    """What an event needs of a zone: its VTIMEZONE, valid from `year`."""
    return f"{tzid}{_SEPARATOR}{year}"


def first_years(needs: Iterable[str]) -> dict[str, int]:
    """Per TZID, the first year the VTIMEZONE must cover (a year before the earliest needed)."""
    years: dict[str, int] = {}
    for need in needs:
        tzid, _, year = need.partition(_SEPARATOR)
        first = int(year) - 1 if year.isdigit() else DEFAULT_FIRST_YEAR
        years[tzid] = min(first, years.get(tzid, first))
    return years


@functools.lru_cache(maxsize=2048)
def vtimezone_block(tzid: str, first_year: int = DEFAULT_FIRST_YEAR) -> bytes:
    """The VTIMEZONE of one IANA zone from `first_year` on, rendered once per process."""
    return bytes(vtimezone(tzid, first_year).to_ical())
