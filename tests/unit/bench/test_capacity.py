"""The capacity model (bench/capacity.py): figures read from benchmark tables, and its arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.capacity import (
    BASELINE,
    FEED_DIRECTORY_ROWS,
    RESULTS,
    TARGET_UTILISATION,
    Workload,
    estimate,
    feed_full_ms,
    load_figures,
    report,
)

TABLES = {
    "feed.md": """| events | mode | connections | feed req/s | feed CPU ms/req | feed p99 ms |
|---|---|---|---|---|---|
| 200 (129 KiB) | full | 64 | 14,317 | 0.060 | 45.2 |
| 200 (129 KiB) | full | 256 | 13,151 | 0.099 | 65.5 |
| 200 (129 KiB) | 304 | 64 | 26,158 | 0.030 | 34.3 |
| 1000 (643 KiB) | full | 64 | 3,235 | 0.140 | 85.5 |
""",
    "feed_memory.md": """| measure | value |
|---|---|
| fetch every subscription once (64 at a time) | 42.6 s, 2,346 feeds/s, 0.150 CPU ms/feed |
| random / single | 74% req/s, 1.50x CPU per request |
""",
    "ingest.md": """| request | clients | requests | errors | per second | server CPU ms/request | p50 ms |
|---|---|---|---|---|---|---|
| GET /healthz (framework floor) | 32 | 81447 | 0 | 8,139 | 0.050 | 3.5 |
| POST /v1/subscribe (new subscriber, + outbox) | 32 | 5291 | 0 | 526 | 0.800 | 52.7 |
""",
    "auth.md": """| run | req/s | auth CPU ms/req | PostgreSQL CPU ms/req |
|---|---:|---:|---:|
| POST /oauth2/token client_credentials (ES256 JWT) | 1351 | 0.300 | 0.100 |
""",
    "webhook.md": """| measure | webhook service (1 worker process) | reference |
|---|---|---|
| CPU ms per delivery, webhook process | 0.50 ms | - |
| CPU ms per delivery, PostgreSQL backends | 0.40 ms | - |
""",
}


@pytest.fixture
def figures(tmp_path: Path) -> dict:
    for name, text in TABLES.items():
        (tmp_path / name).write_text(f"# {name}\n\nRun today\n\n{text}\n")
    return load_figures(tmp_path)


def test_figures_are_read_from_the_rows_and_columns_of_the_benchmark_tables(figures: dict) -> None:
    measured = {key: fig.ms for key, fig in figures.items() if not fig.assumed}
    assert measured == {
        "feed_304": 0.030,
        "feed_full_200": 0.060,
        "feed_full_1000": 0.140,
        "feed_first_poll": 0.150,
        "feed_many_factor": 1.50,
        "ingest_write": 0.800,
        "auth_grant": 0.300,
        "db_auth_grant": 0.100,
        "webhook_delivery": 0.50,
        "db_webhook_delivery": 0.40,
    }
    assert all(fig.source for fig in figures.values())


def test_the_committed_benchmark_results_give_every_figure() -> None:
    figures = load_figures(RESULTS)
    assert all(fig.ms > 0 for fig in figures.values())
    assert figures["feed_304"].ms < figures["feed_full_200"].ms < figures["feed_full_1000"].ms


def test_a_full_body_costs_linearly_in_its_events_between_the_measured_sizes(figures: dict) -> None:
    assert feed_full_ms(figures, 200) == pytest.approx(0.060)
    assert feed_full_ms(figures, 1000) == pytest.approx(0.140)
    assert feed_full_ms(figures, 600) == pytest.approx(0.100)


def test_polls_follow_subscribers_over_the_interval_and_changes_decide_how_many_get_a_body(figures: dict) -> None:
    quiet = Workload(merchants=10, subscribers=3600, poll_hours=1, event_changes_per_hour=0, webhooks_per_hour=0)
    est = estimate(quiet, figures)
    feed = next(line for line in est.lines if line.role == "feed-api")
    assert feed.rate == pytest.approx(1.0)  # 3,600 subscribers once an hour
    assert est.full_share == 0 and feed.ms == pytest.approx(0.030)  # nothing changed: every poll a 304
    busy = replace_changes(quiet, 10)  # one change per calendar per hour
    assert estimate(busy, figures).full_share == pytest.approx(1 - math.exp(-1))


def replace_changes(workload: Workload, per_hour: float) -> Workload:
    return Workload(
        merchants=workload.merchants,
        subscribers=workload.subscribers,
        poll_hours=workload.poll_hours,
        event_changes_per_hour=per_hour,
        webhooks_per_hour=workload.webhooks_per_hour,
    )


def test_subscriptions_beyond_what_a_feed_process_holds_are_read_from_postgresql(figures: dict) -> None:
    small = estimate(BASELINE.scaled(FEED_DIRECTORY_ROWS / BASELINE.subscribers), figures)
    assert small.feed_miss_share == pytest.approx(0.0)
    large = estimate(BASELINE.scaled(100), figures)
    assert large.feed_miss_share == pytest.approx(1 - FEED_DIRECTORY_ROWS / 500_000_000)
    assert large.cores("postgresql") > 10 * small.cores("postgresql")
    name, use = large.bottleneck(figures)
    assert name.startswith("PostgreSQL primary") and use > 0.5


def test_cores_scale_with_the_workload_and_the_report_names_its_assumptions(figures: dict) -> None:
    one, ten = estimate(BASELINE, figures), estimate(BASELINE.scaled(10), figures)
    assert ten.cores("ingest") == pytest.approx(10 * one.cores("ingest"))
    assert ten.cores("webhook-worker") == pytest.approx(10 * one.cores("webhook-worker"))
    text = report(BASELINE, figures)
    assert "### 100x: 500,000,000 subscribers" in text
    assert f"at {TARGET_UTILISATION:.0%}" in text
    assert "ASSUMED figures" in text and "feed_projection" in text
