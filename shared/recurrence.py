"""Recurrence lines of RFC 5545 (RRULE, EXRULE, RDATE, EXDATE): one parser for every service.

Ingest accepts a line only if `parse_line` does; feed (and sync) render what `parse_line` returns,
so whatever ingest stored, the feed can write. Rules are read by icalendar (`vRecur`) and checked
twice: their meaning here (RFC 5545 3.3.10: ranges of the BYxxx parts, INTERVAL and COUNT at least
1, never COUNT with UNTIL, BYxxx parts only with the frequencies they belong to), then by dateutil
with the event's start as DTSTART. UNTIL is put in RFC 5545's form for that start (UTC for a zoned
start: a floating UNTIL is read in the event's zone; a date for an all-day one). Date lists are
read by icalendar's `vDate`/`vDatetime`, in the event's terms; periods are not accepted.

Sub-daily rules (HOURLY, MINUTELY, SECONDLY) end by COUNT or UNTIL within `MAX_SUB_DAILY_SPAN` of
their start and have at most `MAX_SUB_DAILY_OCCURRENCES` occurrences, and only timed events have
them: a calendar client expands every rule it is given, and an hourly rule with no end never ends.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dateutil.rrule import rrule, rrulestr
from icalendar.parser import Contentline
from icalendar.prop import vDate, vDatetime, vRecur

from shared.timezones import UnknownTimezone, resolve, zone

MIN_YEAR = 1900
MAX_YEAR = 2200
MAX_LINES = 50
MAX_LINE_LENGTH = 2000
MAX_SUB_DAILY_OCCURRENCES = 1000
MAX_SUB_DAILY_SPAN = timedelta(days=366)
RULE_NAMES = ("RRULE", "EXRULE")
DATE_NAMES = ("RDATE", "EXDATE")
FREQUENCIES = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
SUB_DAILY = FREQUENCIES[:3]

Start = date | datetime  # a date for an all-day event, else an aware datetime in the event's zone

# part: (smallest, largest, negative values allowed), RFC 5545 3.3.10
_RANGES = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_FREQUENCIES_OF = {
    "BYWEEKNO": ("YEARLY",),
    "BYYEARDAY": ("YEARLY", *SUB_DAILY),
    "BYMONTHDAY": tuple(f for f in FREQUENCIES if f != "WEEKLY"),
}
_BY_PARTS = (*_RANGES, "BYDAY")


class InvalidRecurrence(ValueError):
    """A recurrence line no service can use; `str()` is `field: reason`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class RecurrenceLine:
    name: str  # RRULE, EXRULE, RDATE or EXDATE
    text: str  # the line as stored: the name upper-cased (and a rule's value), the rest as sent
    rule: vRecur | None = None  # for rules: UNTIL in the form RFC 5545 wants with this DTSTART
    dates: tuple[date | datetime, ...] = ()  # for date lists: in the event's terms (dates, or its zone)


def dtstart_of(start: str, all_day: bool, timezone: str) -> Start:
    """DTSTART of an event whose start is stored as `YYYY-MM-DD[THH:MM:SS]` wall clock."""
    if all_day:
        return date.fromisoformat(start[:10])
    return datetime.fromisoformat(start).replace(tzinfo=zone(timezone))


def parse_recurrence(lines: Sequence[object], dtstart: Start) -> list[RecurrenceLine]:
    if len(lines) > MAX_LINES:
        raise InvalidRecurrence("recurrence", f"at most {MAX_LINES} lines")
    return [parse_line(line, i, dtstart) for i, line in enumerate(lines)]


def parse_line(line: object, index: int, dtstart: Start) -> RecurrenceLine:
    field = f"recurrence[{index}]"
    if not isinstance(line, str) or not line.strip():
        raise InvalidRecurrence(field, "expected a line such as 'RRULE:FREQ=WEEKLY;COUNT=10'")
    if len(line) > MAX_LINE_LENGTH or any(c in line for c in "\r\n"):
        raise InvalidRecurrence(field, f"a recurrence line is one line of at most {MAX_LINE_LENGTH} characters")
    text = line.strip()
    try:
        name, raw_params, value = Contentline(text).parts()
    except Exception as exc:  # icalendar raises ValueError and friends with no common base
        raise InvalidRecurrence(field, f"not an RFC 5545 content line ({type(exc).__name__})") from None
    name = str(name).upper()
    params = {str(k).upper(): str(v) for k, v in raw_params.items()}
    try:
        if name in RULE_NAMES:
            if params:
                raise InvalidRecurrence(field, f"{name} takes no parameters")
            rule = _rule(str(value), field, dtstart)
            return RecurrenceLine(name, f"{name}:{str(value).upper()}", rule=rule)
        if name in DATE_NAMES:
            dates = _dates(str(value), params, field, dtstart)
            return RecurrenceLine(name, name + text[len(name) :], dates=dates)
    except InvalidRecurrence as exc:  # say which line, as a merchant may send many
        raise InvalidRecurrence(exc.field, f"{exc.reason} (in {text[:100]!r})") from None
    raise InvalidRecurrence(field, f"expected RRULE, EXRULE, RDATE or EXDATE, not {name[:20]!r}")


# --- rules --------------------------------------------------------------------------------------


def _rule(value: str, field: str, dtstart: Start) -> vRecur:
    try:
        rule = vRecur.from_ical(value.upper())
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidRecurrence(field, f"{value[:80]!r} is not a recurrence rule: {str(exc)[:120]}") from None
    freq = _check_meaning(rule, field)
    normalised = _until_as_rfc_wants(rule, dtstart)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dateutil only warns about some mistakes
        try:
            text = normalised.to_ical().decode()
            expanded = rrulestr(f"RRULE:{text}", dtstart=_naive_or_aware(dtstart))
        except (ValueError, TypeError, OverflowError, KeyError, Warning) as exc:
            raise InvalidRecurrence(field, str(exc)[:200]) from None
    if freq in SUB_DAILY:
        assert isinstance(expanded, rrule)
        _check_sub_daily(rule, expanded, field, dtstart)
    return normalised


def _check_meaning(rule: vRecur, field: str) -> str:
    freqs = rule.get("FREQ") or []
    if len(freqs) != 1 or str(freqs[0]).upper() not in FREQUENCIES:
        raise InvalidRecurrence(field, f"FREQ must be one of {', '.join(FREQUENCIES)}")
    freq = str(freqs[0]).upper()
    for part, smallest in (("INTERVAL", 1), ("COUNT", 1)):
        for number in rule.get(part, []):
            if number < smallest:
                raise InvalidRecurrence(field, f"{part} must be at least {smallest}, not {number}")
    if "COUNT" in rule and "UNTIL" in rule:
        raise InvalidRecurrence(field, "COUNT and UNTIL together: a rule ends by one or the other (RFC 5545)")
    for part, (low, high, signed) in _RANGES.items():
        for number in rule.get(part, []):
            if not (low <= number <= high or (signed and -high <= number <= -low)):
                allowed = f"{low} to {high}" + (f" or -{high} to -{low}" if signed else "")
                raise InvalidRecurrence(field, f"{part} values are {allowed}, not {number}")
    for part, frequencies in _FREQUENCIES_OF.items():
        if part in rule and freq not in frequencies:
            raise InvalidRecurrence(field, f"{part} is not allowed with FREQ={freq}")
    if "BYSETPOS" in rule and not any(part in rule for part in _BY_PARTS if part != "BYSETPOS"):
        raise InvalidRecurrence(field, "BYSETPOS needs another BYxxx part to choose from")
    _check_weekdays(rule, freq, field)
    return freq


def _check_weekdays(rule: vRecur, freq: str, field: str) -> None:
    limit = {"MONTHLY": 5, "YEARLY": 53}.get(freq)
    for day in rule.get("BYDAY", []):
        text = str(day)
        ordinal = text[:-2].lstrip("+")
        if not ordinal:
            continue
        if limit is None or ("BYWEEKNO" in rule and freq == "YEARLY"):
            raise InvalidRecurrence(field, f"BYDAY={text}: a numbered weekday needs FREQ=MONTHLY or YEARLY")
        if not (1 <= abs(int(ordinal)) <= limit):
            numbers = f"1 to {limit} or -{limit} to -1"
            raise InvalidRecurrence(field, f"BYDAY={text}: with FREQ={freq} the number is {numbers}")


def _check_sub_daily(rule: vRecur, expanded: rrule, field: str, dtstart: Start) -> None:
    freq = str(rule["FREQ"][0]).upper()
    limit, span = MAX_SUB_DAILY_OCCURRENCES, MAX_SUB_DAILY_SPAN
    if not isinstance(dtstart, datetime):
        raise InvalidRecurrence(field, f"FREQ={freq} repeats within a day: an all-day event cannot")
    if "COUNT" not in rule and "UNTIL" not in rule:
        raise InvalidRecurrence(field, f"FREQ={freq} needs COUNT or UNTIL: it would repeat forever")
    count = rule.get("COUNT", [0])[0]
    if count > limit:
        raise InvalidRecurrence(field, f"FREQ={freq} rules have at most {limit} occurrences, not COUNT={count}")
    window_end = dtstart + span
    until = expanded._until  # dateutil keeps UNTIL, as DTSTART's kind of datetime, only here
    if until is not None and until > window_end:
        raise InvalidRecurrence(field, f"FREQ={freq} rules end within {span.days} days of the start (UNTIL)")
    # Counting is bounded: at most limit + 1 occurrences, within one span of days.
    within = expanded.replace(count=None, until=min(until or window_end, window_end))
    found = sum(1 for _ in itertools.islice(within, (count or limit) + 1))
    if count and found < count:
        raise InvalidRecurrence(field, f"FREQ={freq} rules end within {span.days} days of the start (COUNT={count})")
    if not count and found > limit:
        raise InvalidRecurrence(field, f"FREQ={freq} rules have at most {limit} occurrences; this one has more")


def _naive_or_aware(dtstart: Start) -> datetime:
    return dtstart if isinstance(dtstart, datetime) else datetime.combine(dtstart, time())


def _until_as_rfc_wants(rule: vRecur, dtstart: Start) -> vRecur:
    """UNTIL as RFC 5545 3.3.10 writes it: a DATE for an all-day event, UTC for a zoned one."""
    untils = rule.get("UNTIL")
    if not untils:
        return rule
    limit: Any = untils[0]
    normalised = vRecur(rule)
    if not isinstance(dtstart, datetime):
        normalised["UNTIL"] = [limit.date() if isinstance(limit, datetime) else limit]
    elif isinstance(limit, datetime):
        local = limit if limit.tzinfo else limit.replace(tzinfo=dtstart.tzinfo)
        normalised["UNTIL"] = [local.astimezone(UTC)]
    else:
        normalised["UNTIL"] = [datetime.combine(limit, time(23, 59, 59), dtstart.tzinfo).astimezone(UTC)]
    return normalised


# --- date lists ---------------------------------------------------------------------------------


def _dates(value: str, params: dict[str, str], field: str, dtstart: Start) -> tuple[date | datetime, ...]:
    kind = params.get("VALUE", "DATE-TIME").upper()
    if kind not in ("DATE", "DATE-TIME"):
        raise InvalidRecurrence(
            field, f"VALUE={kind[:20]} is not accepted: list DATE or DATE-TIME starts (each lasts as long as the event)"
        )
    tzid = None
    if "TZID" in params:
        try:
            tzid = resolve(params["TZID"])
        except UnknownTimezone as exc:
            raise InvalidRecurrence(field, f"TZID: {exc}") from None
    out: list[date | datetime] = []
    for raw in value.split(","):
        item = raw.strip()
        moment = _date_item(item, kind, tzid, field)
        if not MIN_YEAR <= moment.year <= MAX_YEAR:
            raise InvalidRecurrence(field, f"{item[:20]!r}: the year must be between {MIN_YEAR} and {MAX_YEAR}")
        out.append(_in_event_terms(moment, dtstart))
    return tuple(out)


def _date_item(item: str, kind: str, tzid: str | None, field: str) -> date | datetime:
    try:
        if kind == "DATE" or len(item) == 8:
            return vDate.from_ical(item)
        moment = vDatetime.from_ical(item)
    except (ValueError, TypeError, OverflowError):
        forms = "a DATE (YYYYMMDD) or DATE-TIME (YYYYMMDDTHHMMSS[Z])"
        raise InvalidRecurrence(field, f"{item[:40]!r} is not {forms}") from None
    if moment.tzinfo is None and tzid is not None:
        moment = moment.replace(tzinfo=zone(tzid))
    return moment


def _in_event_terms(moment: date | datetime, dtstart: Start) -> date | datetime:
    """A date for an all-day event (the date written); else a datetime in the event's zone (a bare
    date means the event's start time on that day, a floating time the event's own zone)."""
    if not isinstance(dtstart, datetime):
        return moment.date() if isinstance(moment, datetime) else moment
    if not isinstance(moment, datetime):
        return datetime.combine(moment, dtstart.timetz())
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dtstart.tzinfo)
    return moment.astimezone(dtstart.tzinfo)
