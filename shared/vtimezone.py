"""VTIMEZONEs from the tz database: the zone's current rules as RRULEs, older changes as RDATEs.

icalendar's `Timezone.from_tzinfo` (7.3.0) lists every transition of a fixed span as an RDATE and
adds a COMMENT saying so: the feed would be wrong outside the span, and libical's restriction check
rejects the COMMENT. Here the zone's transitions are read from zoneinfo (a daily scan from 1850 to
`HORIZON`, each change bisected to the second), and the trailing run of each kind of transition
(same offsets, name, DST flag) is matched against yearly RRULEs built from its last occurrence
(n-th or last weekday of a month, a weekday within seven days of a month, a fixed day): the
candidate matching the longest run up to `HORIZON` becomes the observance's RRULE, with no end.
Checked against zoneinfo's own instants, a rule is used only where it gives the same ones. Every
other transition is history, written as RDATEs from the last one before the feed's first year.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Timezone, TimezoneDaylight, TimezoneStandard, vRecur

SCAN_FROM = datetime(1850, 1, 1, tzinfo=UTC)
HORIZON = datetime(2100, 1, 1, tzinfo=UTC)
BEGINNING = datetime(1601, 1, 1)
MIN_RULE_RUN = 3  # a pattern seen fewer times than this is history, not a rule
_DAY = 86_400
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Offset:
    utcoffset: timedelta
    dst: bool
    name: str


@dataclass(frozen=True)
class Transition:
    at: datetime  # UTC
    before: Offset
    after: Offset

    @property
    def local(self) -> datetime:
        """The wall clock just before the change, as VTIMEZONE's DTSTART and RDATE give it."""
        return (self.at + self.before.utcoffset).replace(tzinfo=None)

    @property
    def kind(self) -> tuple[timedelta, timedelta, bool, str]:
        return (self.before.utcoffset, self.after.utcoffset, self.after.dst, self.after.name)


@dataclass(frozen=True)
class Rule:
    first: Transition  # the observance's DTSTART
    rrule: str
    covered: frozenset[datetime]


@dataclass(frozen=True)
class ZoneHistory:
    initial: Offset
    transitions: tuple[Transition, ...]
    rules: tuple[Rule, ...]


def _state_at(tz: ZoneInfo, timestamp: int) -> tuple[timedelta | None, timedelta | None, str | None]:
    moment = datetime.fromtimestamp(timestamp, tz)
    return moment.utcoffset(), moment.dst(), moment.tzname()


def _offset(state: tuple[timedelta | None, timedelta | None, str | None]) -> Offset:
    return Offset(state[0] or timedelta(0), bool(state[1]), state[2] or "")


def _transitions(tz: ZoneInfo) -> tuple[Offset, list[Transition]]:
    first, last = int(SCAN_FROM.timestamp()), int(HORIZON.timestamp())
    initial = current = _state_at(tz, first)
    found: list[Transition] = []
    for day in range(first + _DAY, last + 1, _DAY):
        low = day - _DAY
        while _state_at(tz, day) != current:  # bisect to the first second after `low` that differs
            high = day
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _state_at(tz, middle) == current else (low, middle)
            after = _state_at(tz, high)
            found.append(Transition(datetime.fromtimestamp(high, UTC), _offset(current), _offset(after)))
            current, low = after, high
    return _offset(initial), found


def _candidates(local: datetime) -> list[str]:
    """Yearly rules that give `local` (its month and weekday), simplest first."""
    weekday, day, month = _WEEKDAYS[local.weekday()], local.day, local.month
    base = f"FREQ=YEARLY;BYMONTH={month}"
    found = [f"{base};BYDAY={(day - 1) // 7 + 1}{weekday}", f"{base};BYDAY=-1{weekday}"]
    for low in range(max(1, day - 6), min(day, 25) + 1):
        days = ",".join(str(d) for d in range(low, low + 7))
        found.append(f"{base};BYMONTHDAY={days};BYDAY={weekday}")
    found.append(f"{base};BYMONTHDAY={day}")
    return found


def _occurrences(rule: str, first_year: int, at: datetime) -> list[datetime]:
    start = datetime.combine(datetime(first_year, 1, 1), at.time())
    return rrulestr(rule, dtstart=start).between(start, HORIZON.replace(tzinfo=None), inc=True)


def _matched_from(moments: list[datetime], rule: str) -> int | None:
    """The index from which `moments` (ascending wall-clock times) are exactly the rule's occurrences
    up to the horizon, or None when its last few are not."""
    recent = moments[-MIN_RULE_RUN:]
    if _occurrences(rule, recent[0].year, recent[-1])[-len(recent) :] != recent:
        return None
    expected = _occurrences(rule, moments[0].year, moments[-1])
    index, position = len(moments) - 1, len(expected) - 1
    while index >= 0 and position >= 0 and moments[index] == expected[position]:
        index, position = index - 1, position - 1
    return index + 1


def _fit_rules(transitions: list[Transition]) -> list[Rule]:
    recent = [t for t in transitions if t.at >= HORIZON - timedelta(days=3 * 366)]
    by_kind: dict[tuple[timedelta, timedelta, bool, str], list[Transition]] = defaultdict(list)
    for transition in transitions:
        by_kind[transition.kind].append(transition)
    rules: list[Rule] = []
    for kind in dict.fromkeys(t.kind for t in recent):
        runs = by_kind[kind]
        moments = [t.local for t in runs]
        best: tuple[int, str] | None = None
        for rule in _candidates(moments[-1]):
            index = _matched_from(moments, rule)
            if index is not None and (best is None or index < best[0]):
                best = (index, rule)
        if best is None or len(moments) - best[0] < MIN_RULE_RUN:
            continue  # left to history: explicit RDATEs up to the horizon
        index, rule = best
        rules.append(Rule(runs[index], rule, frozenset(t.at for t in runs[index:])))
    return rules


@functools.lru_cache(maxsize=256)
def zone_history(tzid: str) -> ZoneHistory:
    """A zone's transitions and rules (about 0.1 s of work, once per zone and process)."""
    initial, transitions = _transitions(ZoneInfo(tzid))
    return ZoneHistory(initial, tuple(transitions), tuple(_fit_rules(transitions)))


def _observance(after: Offset, before: Offset, dtstart: datetime) -> TimezoneStandard | TimezoneDaylight:
    component = TimezoneDaylight() if after.dst else TimezoneStandard()
    component.add("dtstart", dtstart)
    component.add("tzoffsetfrom", before.utcoffset)
    component.add("tzoffsetto", after.utcoffset)
    if after.name:
        component.add("tzname", after.name)
    return component


def vtimezone(tzid: str, first_year: int) -> Timezone:
    """The VTIMEZONE of `tzid`, right for every instant from 1 January of `first_year` on."""
    history = zone_history(tzid)
    covered = frozenset().union(*(rule.covered for rule in history.rules))
    since = datetime(first_year, 1, 1, tzinfo=UTC)
    earlier = [t for t in history.transitions if t.at <= since]
    keep_from = earlier[-1].at if earlier else SCAN_FROM
    observances: list[tuple[datetime, TimezoneStandard | TimezoneDaylight]] = []
    if not earlier:  # the zone's first offset, from long before any event (as Outlook writes it)
        observances.append((BEGINNING, _observance(history.initial, history.initial, BEGINNING)))
    for rule in history.rules:
        component = _observance(rule.first.after, rule.first.before, rule.first.local)
        component.add("rrule", vRecur.from_ical(rule.rrule))
        observances.append((rule.first.local, component))
    grouped: dict[tuple[timedelta, timedelta, bool, str], list[Transition]] = defaultdict(list)
    for transition in history.transitions:
        if transition.at >= keep_from and transition.at not in covered:
            grouped[transition.kind].append(transition)
    for runs in grouped.values():
        component = _observance(runs[0].after, runs[0].before, runs[0].local)
        for transition in runs if len(runs) > 1 else ():
            # DTSTART again as an RDATE: ical.js (2.2) takes no onset from DTSTART when there are
            # RDATEs. One RDATE property per instant: it reads only the first value of a list.
            component.add("rdate", transition.local)
        observances.append((runs[0].local, component))
    timezone = Timezone()
    timezone.add("tzid", tzid)
    for _, component in sorted(observances, key=lambda pair: (pair[0], pair[1].name)):
        timezone.add_component(component)
    return timezone
