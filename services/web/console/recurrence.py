"""Recurrence in words, and the RRULE a simple form builds: pure functions over RFC 5545 lines.

`describe(["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"])` is "Every week on Monday and Wednesday,
10 times". Rules beyond what the words cover are still described by their frequency, and the page
shows the lines themselves beside the words.
"""

from __future__ import annotations

from datetime import datetime

from shared.http import whole_number

WEEKDAYS = {
    "MO": "Monday",
    "TU": "Tuesday",
    "WE": "Wednesday",
    "TH": "Thursday",
    "FR": "Friday",
    "SA": "Saturday",
    "SU": "Sunday",
}
UNITS = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year", "HOURLY": "hour", "MINUTELY": "minute"}
MONTHS = "January February March April May June July August September October November December".split()
ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last", -2: "second to last"}
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")


def _parts(rule: str) -> dict[str, str]:
    parts = {}
    for item in rule.split(";"):
        name, _, value = item.partition("=")
        if name and value:
            parts[name.strip().upper()] = value.strip().upper()
    return parts


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _weekday(token: str) -> str:
    """`MO` -> Monday, `2TU` -> the second Tuesday, `-1FR` -> the last Friday."""
    day = WEEKDAYS.get(token[-2:], token[-2:])
    count = token[:-2]
    if not count:
        return day
    try:
        n = int(count)
    except ValueError:
        return day
    return f"the {ORDINALS.get(n, _nth(n))} {day}"


def _day_of_month(token: str) -> str:
    try:
        n = int(token)
    except ValueError:
        return token
    return "the last day" if n == -1 else f"the {_nth(n)}" if n > 0 else f"the {_nth(-n)} to last day"


def _until(value: str) -> str:
    for layout in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            moment = datetime.strptime(value, layout)
        except ValueError:
            continue
        return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"
    return value


def describe_rule(rule: str) -> str:
    parts = _parts(rule.split(":", 1)[1] if ":" in rule else rule)
    frequency = parts.get("FREQ", "")
    unit = UNITS.get(frequency)
    if unit is None:
        return "Repeats on a custom schedule"
    try:
        interval = max(1, int(parts.get("INTERVAL", "1")))
    except ValueError:
        interval = 1
    text = f"Every {unit}" if interval == 1 else f"Every {interval} {unit}s"
    if frequency == "WEEKLY" and set(parts.get("BYDAY", "").split(",")) == {"MO", "TU", "WE", "TH", "FR"}:
        text = "Every weekday" if interval == 1 else text + " on weekdays"
    elif "BYDAY" in parts:
        text += " on " + _join([_weekday(d) for d in parts["BYDAY"].split(",") if d])
    if "BYMONTHDAY" in parts:
        text += " on " + _join([_day_of_month(d) for d in parts["BYMONTHDAY"].split(",") if d])
    if "BYMONTH" in parts:
        months = []
        for m in parts["BYMONTH"].split(","):
            number = whole_number(m, 2)
            months.append(MONTHS[number - 1] if number is not None and 1 <= number <= 12 else m)
        text += " in " + _join(months)
    if "COUNT" in parts:
        count = parts["COUNT"]
        text += ", once" if count == "1" else f", {count} times"
    elif "UNTIL" in parts:
        text += f", until {_until(parts['UNTIL'])}"
    return text


def describe(recurrence: list[str]) -> str:
    """The lines of an event's `recurrence` in words; empty for a single event."""
    rules = [line for line in recurrence if line.upper().startswith("RRULE")]
    if not recurrence:
        return ""
    sentences = [describe_rule(rule) for rule in rules]
    if not sentences:
        sentences = ["On extra dates only"]
    extra = sum(len(line.split(":", 1)[-1].split(",")) for line in recurrence if line.upper().startswith("RDATE"))
    skipped = sum(len(line.split(":", 1)[-1].split(",")) for line in recurrence if line.upper().startswith("EXDATE"))
    if any(line.upper().startswith("EXRULE") for line in recurrence):
        sentences.append("with exceptions by rule")
    text = "; ".join(sentences)
    if extra:
        text += f", plus {extra} extra date{'s' if extra > 1 else ''}"
    if skipped:
        text += f", except {skipped} date{'s' if skipped > 1 else ''}"
    return text


def build_rule(frequency: str, interval: str, weekdays: list[str], count: str, until: str) -> str | None:
    """The RRULE line of the event form's simple fields, or None for "does not repeat".
    Values are passed on as typed: ingest validates the rule and answers what is wrong."""
    if frequency not in FREQUENCIES:
        return None
    parts = [f"FREQ={frequency}"]
    if interval.strip() and interval.strip() != "1":
        parts.append(f"INTERVAL={interval.strip()}")
    days = [d for d in weekdays if d in WEEKDAYS]
    if days and frequency == "WEEKLY":
        parts.append("BYDAY=" + ",".join(days))
    if count.strip():
        parts.append(f"COUNT={count.strip()}")
    elif until.strip():
        parts.append("UNTIL=" + until.strip().replace("-", "") + "T235959Z")
    return "RRULE:" + ";".join(parts)
