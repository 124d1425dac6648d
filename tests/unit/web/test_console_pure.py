"""The console's pure parts: recurrence in words, the RRULE of the event form, the SVG charts."""

from __future__ import annotations

import re

import pytest

from services.web.console import recurrence
from services.web.console.charts import DayCount, breakdown_chart, daily_chart


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ([], ""),
        (["RRULE:FREQ=DAILY"], "Every day"),
        (["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"], "Every week on Monday and Wednesday, 10 times"),
        (
            ["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;UNTIL=20261231T235959Z"],
            "Every 2 weeks on Friday, until 31 December 2026",
        ),
        (["RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"], "Every weekday"),
        (["RRULE:FREQ=MONTHLY;BYDAY=1SU"], "Every month on the first Sunday"),
        (["RRULE:FREQ=MONTHLY;BYDAY=-1FR"], "Every month on the last Friday"),
        (["RRULE:FREQ=MONTHLY;BYMONTHDAY=15"], "Every month on the 15th"),
        (["RRULE:FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=1;COUNT=1"], "Every year on the 1st in March, once"),
        (["RRULE:FREQ=WEEKLY", "EXDATE:20260105T100000,20260112T100000"], "Every week, except 2 dates"),
        (["RDATE:20260105T100000"], "On extra dates only, plus 1 extra date"),
        (["RRULE:FREQ=SECONDLY"], "Repeats on a custom schedule"),
    ],
)
def test_recurrence_is_described_in_words(lines: list[str], words: str) -> None:
    assert recurrence.describe(lines) == words


def test_the_event_forms_simple_fields_make_one_rrule_or_none() -> None:
    assert recurrence.build_rule("", "1", [], "", "") is None
    assert recurrence.build_rule("WEEKLY", "1", ["SA", "XX"], "6", "") == "RRULE:FREQ=WEEKLY;BYDAY=SA;COUNT=6"
    assert (
        recurrence.build_rule("DAILY", "3", ["MO"], "", "2026-12-31")
        == "RRULE:FREQ=DAILY;INTERVAL=3;UNTIL=20261231T235959Z"
    )


def test_the_daily_chart_draws_each_days_values_to_scale_and_says_them_in_text() -> None:
    days = [DayCount("2026-11-29", 0, 0), DayCount("2026-11-30", 4, 1)]
    svg = daily_chart(days, "Per day")
    bars = re.findall(r'height="([\d.]+)" fill="#\w+" data-day="([^"]+)" data-kind="(\w+)" data-value="(\d+)"', svg)
    by_key = {(day, kind): (float(h), int(v)) for h, day, kind, v in bars}
    assert by_key[("2026-11-29", "subscriptions")] == (0.0, 0)
    four, one = by_key[("2026-11-30", "subscriptions")], by_key[("2026-11-30", "unsubscriptions")]
    assert four[1] == 4 and one[1] == 1 and four[0] == pytest.approx(4 * one[0])
    assert "4 subscriptions and 1 unsubscriptions from 2026-11-29 to 2026-11-30." in svg
    assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_chart_labels_are_escaped() -> None:
    svg = breakdown_chart([("<script>alert(1)</script>", 2, 0)], "By UTM source")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
