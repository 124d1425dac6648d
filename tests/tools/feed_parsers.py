"""Independent iCalendar parsers for feed tests: ical.js (node), libical (GObject, system python3),
vobject and recurring-ical-events (in-process). Each returns, per UID, the summary, the status and
the occurrences: UTC instants ("2026-03-28T18:00:00Z") for timed events, dates for all-day ones.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events
import vobject

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent.parent
UNTIL_YEAR = 2030
MAX = 500

Occurrences = dict[str, dict[str, Any]]


def install() -> None:
    """Idempotent: libical bindings, ical.js and vdirsyncer (scripts/tools/parsers.sh)."""
    subprocess.run([str(ROOT / "scripts" / "tools" / "parsers.sh")], check=True, timeout=900)


def _instant(value: date | datetime) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise AssertionError(f"floating time {value} in a feed")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def icaljs(body: bytes, until_year: int = UNTIL_YEAR) -> Occurrences:
    result = subprocess.run(
        ["node", str(TOOLS / "icaljs_occurrences.mjs"), str(until_year)],
        input=body,
        capture_output=True,
        check=True,
        timeout=60,
        cwd=TOOLS,
    )
    parsed: Occurrences = json.loads(result.stdout)
    return parsed


def libical(body: bytes, until_year: int = UNTIL_YEAR) -> Occurrences:
    """libical's occurrences; an AssertionError when its iTIP restriction check fails on the feed."""
    result = subprocess.run(
        ["/usr/bin/python3", str(TOOLS / "libical_occurrences.py"), str(until_year)],
        input=body,
        capture_output=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"libical refused the feed: {result.stderr.decode(errors='replace')[:2000]}")
    parsed: Occurrences = json.loads(result.stdout)
    return parsed


def with_vobject(body: bytes, until_year: int = UNTIL_YEAR) -> Occurrences:
    """vobject builds its own tzinfo from each VTIMEZONE, so it checks our VTIMEZONE text too. It keeps
    the first tzinfo it built per TZID for the whole process, so that registry is emptied first: each
    feed is read with its own VTIMEZONEs (whose coverage follows the feed's first year)."""
    registry: dict[str, Any] = vars(vobject.icalendar)["__tzidMap"]
    registry.clear()
    vobject.icalendar.registerTzid("UTC", vobject.icalendar.utc)
    calendar = vobject.readOne(body.decode("utf-8"))
    out: Occurrences = {}
    for vevent in getattr(calendar, "vevent_list", []):
        ruleset = vevent.getrruleset(addRDate=True)
        if ruleset is None:
            starts = [vevent.dtstart.value]
        else:
            starts = []
            for moment in ruleset:
                if moment.year >= until_year or len(starts) >= MAX:
                    break
                starts.append(moment)
        all_day = not isinstance(vevent.dtstart.value, datetime)
        out[vevent.uid.value] = {
            "summary": vevent.summary.value,
            "status": vevent.status.value if hasattr(vevent, "status") else None,
            "occurrences": [_instant(s.date() if all_day and isinstance(s, datetime) else s) for s in starts],
        }
    return out


def with_recurring_ical_events(body: bytes, until_year: int = UNTIL_YEAR) -> Occurrences:
    calendar = icalendar.Calendar.from_ical(body)
    out: Occurrences = {}
    for component in calendar.walk("VEVENT"):
        out[str(component["UID"])] = {"summary": str(component["SUMMARY"]), "status": str(component.get("STATUS"))}
        out[str(component["UID"])]["occurrences"] = []
    for occurrence in recurring_ical_events.of(calendar).between(date(1900, 1, 1), date(until_year, 1, 1)):
        entry = out[str(occurrence["UID"])]
        if len(entry["occurrences"]) < MAX:
            entry["occurrences"].append(_instant(occurrence.decoded("DTSTART")))
    for entry in out.values():
        entry["occurrences"].sort()
    return out


PARSERS = {
    "ical.js": icaljs,
    "libical": libical,
    "vobject": with_vobject,
    "recurring-ical-events": with_recurring_ical_events,
}


def parse_everywhere(body: bytes, until_year: int = UNTIL_YEAR) -> Occurrences:
    """Parse with every parser; assert they agree on UIDs, summaries, statuses and occurrences, and
    that libical's iTIP restriction check passes."""
    results = {name: parser(body, until_year) for name, parser in PARSERS.items()}
    reference_name, reference = next(iter(results.items()))
    for name, result in results.items():
        assert sorted(result) == sorted(reference), f"{name} and {reference_name} see different UIDs"
        for uid, entry in reference.items():
            other = result[uid]
            assert other["summary"] == entry["summary"], (name, uid, other["summary"], entry["summary"])
            assert (other["status"] or "CONFIRMED").upper() == (entry["status"] or "CONFIRMED").upper(), (name, uid)
            assert sorted(other["occurrences"]) == sorted(entry["occurrences"]), (
                f"{name} and {reference_name} disagree on {uid}",
                sorted(set(other["occurrences"]) ^ set(entry["occurrences"]))[:6],
            )
    return reference
