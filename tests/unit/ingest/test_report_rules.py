"""The analytics' date range and day series (services/ingest/domain/reports.py)."""

from __future__ import annotations

from datetime import date

import pytest

from services.ingest.domain import reports


def test_the_default_range_is_the_last_thirty_days_to_today() -> None:
    assert reports.date_range(None, None, date(2026, 11, 30)) == (date(2026, 11, 1), date(2026, 11, 30))
    assert reports.date_range(None, "2026-01-31", date(2026, 11, 30)) == (date(2026, 1, 2), date(2026, 1, 31))


@pytest.mark.parametrize(
    ("first", "last", "reason"),
    [("2026-13-01", None, "YYYY-MM-DD"), ("2026-02-01", "2026-01-01", "after"), ("2024-01-01", "2026-01-01", "366")],
)
def test_unusable_ranges_say_why(first: str, last: str | None, reason: str) -> None:
    with pytest.raises(reports.BadRange, match=reason):
        reports.date_range(first, last, date(2026, 11, 30))


def test_the_series_has_every_day_with_zeros_where_nothing_happened() -> None:
    series = reports.daily_series(date(2026, 2, 27), date(2026, 3, 1), {date(2026, 2, 28): 3}, {date(2026, 3, 1): 1})
    assert series == [
        {"date": "2026-02-27", "subscriptions": 0, "unsubscriptions": 0},
        {"date": "2026-02-28", "subscriptions": 3, "unsubscriptions": 0},
        {"date": "2026-03-01", "subscriptions": 0, "unsubscriptions": 1},
    ]
