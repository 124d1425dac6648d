"""A capacity model from the benchmark figures: cores per role for a workload, and where it stops scaling.

`python -m bench.capacity` prints, for today's largest customer (5 million subscribers polling
hourly) and 10x and 100x that, the CPU each role needs, the broker's and PostgreSQL's share, and the
first resource that cannot be scaled out by adding pods. docs/CAPACITY.md explains the model;
bench/capacity_check.py runs one scenario at reduced scale and compares measured CPU with it.

Figures come from bench/results/*.md (CPU milliseconds per operation, the noise-resistant figure of
each benchmark). What no benchmark measures yet is an `ASSUMED` figure, named in every output.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# Pods are sized for this CPU utilisation (the feed HPA's target): headroom for bursts and a lost node.
TARGET_UTILISATION = 0.6
# Messages of one event change or subscription change: the relay publishes one; the broker routes it
# to each consuming service's quorum queue (feed, webhook, sync, mail).
QUEUES_PER_MESSAGE = 4
# What one node of the stateful tiers can give (a large but ordinary machine): beyond, that tier is
# the bottleneck, because adding pods does not help it.
PRIMARY_CORES = 32  # PostgreSQL primary: every write and every LISTEN goes there
QUEUE_LEADER_CORES = 1.0  # a quorum queue's leader is one Erlang process: about one core per queue
FEED_DIRECTORY_ROWS = 250_000  # KALENDS_FEED_DIRECTORY_ROWS: subscriptions a feed process holds


@dataclass(frozen=True)
class Figure:
    """CPU milliseconds per operation and where the number comes from."""

    ms: float
    source: str
    assumed: bool = False


# Not measured by any benchmark yet: order-of-magnitude values, said so wherever they are used.
ASSUMED = {
    "broker_message": Figure(0.1, "RabbitMQ CPU per message enqueued and delivered once (not benchmarked)", True),
    "db_write": Figure(0.3, "PostgreSQL CPU per ingest transaction with outbox row (not benchmarked)", True),
    "db_feed_miss": Figure(0.1, "PostgreSQL CPU per feed subscription read by index (feed-plans.txt: < 1 ms)", True),
    "feed_projection": Figure(2.0, "feed consumer CPU per event change: render + sections (not benchmarked)", True),
    "ingest_event_change": Figure(0.8, "ingest CPU per event PATCH, taken as a subscribe's (not benchmarked)", True),
}


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _number(cell: str) -> float:
    match = re.search(r"[\d,]*\.?\d+", cell)
    if match is None:
        raise ValueError(f"no number in {cell!r}")
    return float(match.group(0).replace(",", ""))


def _row(rows: list[list[str]], *starts: str) -> list[str]:
    for row in rows:
        if all(any(cell.startswith(start) for cell in row) for start in starts):
            return row
    raise LookupError(f"no row with {starts}")


def load_figures(results: Path = RESULTS) -> dict[str, Figure]:
    """Every figure the model uses: measured ones parsed from bench/results, then the ASSUMED ones."""

    def rows(name: str) -> list[list[str]]:
        return _table_rows((results / name).read_text(encoding="utf-8"))

    feed = rows("feed.md")
    figures = {
        # feed.md columns: events | mode | connections | feed req/s | feed CPU ms/req | ...
        "feed_304": Figure(_number(_row(feed, "200 (", "304", "64")[4]), "feed.md: 304, 200 events, c=64"),
        "feed_full_200": Figure(_number(_row(feed, "200 (", "full", "64")[4]), "feed.md: full body, 200 events"),
        "feed_full_1000": Figure(_number(_row(feed, "1000 (", "full", "64")[4]), "feed.md: full body, 1000 events"),
    }
    memory = rows("feed_memory.md")
    figures["feed_first_poll"] = Figure(
        _number(re.findall(r"([\d.]+) CPU ms", _row(memory, "fetch every subscription once")[1])[0]),
        "feed_memory.md: first poll of each of 100,000 subscriptions",
    )
    figures["feed_many_factor"] = Figure(
        _number(_row(memory, "random / single")[1].split(",")[1]),
        "feed_memory.md: CPU of a random subscription of 100,000 over a single one (a factor, not ms)",
    )
    ingest = rows("ingest.md")
    figures["ingest_write"] = Figure(
        _number(_row(ingest, "POST /v1/subscribe")[5]), "ingest.md: POST /v1/subscribe, role all (API + relay)"
    )
    auth = rows("auth.md")
    grant = _row(auth, "POST /oauth2/token")
    figures["auth_grant"] = Figure(_number(grant[2]), "auth.md: ES256 client-credentials grant")
    figures["db_auth_grant"] = Figure(_number(grant[3]), "auth.md: PostgreSQL CPU per grant")
    webhook = rows("webhook.md")
    figures["webhook_delivery"] = Figure(
        _number(_row(webhook, "CPU ms per delivery, webhook process")[1]), "webhook.md: webhook process per delivery"
    )
    figures["db_webhook_delivery"] = Figure(
        _number(_row(webhook, "CPU ms per delivery, PostgreSQL")[1]), "webhook.md: PostgreSQL per delivery"
    )
    figures = {**ASSUMED, **figures}
    check = results / "capacity_check.md"
    # Per-change figures measured by bench/capacity_check.py, when it has run: they replace the assumptions.
    checked = _table_rows(check.read_text(encoding="utf-8")) if check.exists() else []
    for key, row in (("feed_projection", "feed CPU ms per event change"), ("ingest_event_change", "ingest CPU ms")):
        try:
            figures[key] = Figure(_number(_row(checked, row)[1]), f"capacity_check.md: {row}")
        except LookupError:
            pass
    return figures


@dataclass(frozen=True)
class Workload:
    merchants: int  # N: one calendar each (more calendars per merchant only split the same polls)
    subscribers: int  # S: subscriptions polled by calendar apps
    poll_hours: float  # H: each subscription is polled every H hours
    event_changes_per_hour: float  # E: created, changed or deleted events, all merchants
    webhooks_per_hour: float  # W: webhook deliveries (one subscribe or unsubscribe write each)
    events_per_feed: int = 200  # events in a feed body (its size drives a full answer's cost)
    token_ttl_seconds: float = 300  # each merchant fetches a token this often

    def scaled(self, factor: float) -> Workload:
        return replace(
            self,
            merchants=max(1, round(self.merchants * factor)),
            subscribers=round(self.subscribers * factor),
            event_changes_per_hour=self.event_changes_per_hour * factor,
            webhooks_per_hour=self.webhooks_per_hour * factor,
        )


@dataclass
class Line:
    role: str
    rate: float  # operations per second
    ms: float  # CPU ms per operation
    sources: list[str] = field(default_factory=list)

    @property
    def cores(self) -> float:
        return self.rate * self.ms / 1000


@dataclass
class Estimate:
    workload: Workload
    lines: list[Line]
    full_share: float  # share of polls answered with a whole body (the rest are 304)
    feed_miss_share: float  # share of polls whose subscription a feed process does not hold in memory

    def cores(self, role: str) -> float:
        return sum(line.cores for line in self.lines if line.role == role)

    @property
    def roles(self) -> list[str]:
        return list(dict.fromkeys(line.role for line in self.lines))

    def busiest_queue_cores(self, figures: dict[str, Figure]) -> float:
        """CPU of the busiest quorum queue's leader: every message of the platform reaches feed.projection."""
        writes = next(line.rate for line in self.lines if line.role == "broker")  # messages published per second
        return writes * figures["broker_message"].ms / 1000

    def bottleneck(self, figures: dict[str, Figure]) -> tuple[str, float]:
        """The resource closest to what one node can give, and its use of that node (1.0 = full)."""
        stateful = {
            f"PostgreSQL primary ({PRIMARY_CORES} cores; writes, and feed reads unless a replica takes them)": (
                self.cores("postgresql") / TARGET_UTILISATION / PRIMARY_CORES
            ),
            "the busiest quorum queue's leader (one core)": (
                self.busiest_queue_cores(figures) / TARGET_UTILISATION / QUEUE_LEADER_CORES
            ),
        }
        name = max(stateful, key=lambda key: stateful[key])
        return name, stateful[name]


def feed_full_ms(figures: dict[str, Figure], events: int) -> float:
    """CPU per whole-body answer for a feed of `events` events: linear between the 200- and 1000-event rows."""
    small, large = figures["feed_full_200"].ms, figures["feed_full_1000"].ms
    per_event = (large - small) / 800
    return max(small - 200 * per_event, 0.0) + per_event * events


def estimate(workload: Workload, figures: dict[str, Figure]) -> Estimate:
    w = workload
    polls = w.subscribers / (w.poll_hours * 3600)
    # A poll gets a whole body when its calendar changed since the subscriber's previous poll
    # (changes as a Poisson process per calendar), else a 304.
    changes_per_calendar_hour = w.event_changes_per_hour / max(w.merchants, 1)
    full_share = 1 - math.exp(-changes_per_calendar_hour * w.poll_hours)
    full_ms = feed_full_ms(figures, w.events_per_feed)
    many = w.subscribers > 10_000
    factor = figures["feed_many_factor"].ms if many else 1.0
    poll_ms = factor * (full_share * full_ms + (1 - full_share) * figures["feed_304"].ms)
    # Any feed process may be asked for any subscription, and holds at most FEED_DIRECTORY_ROWS of them:
    # the other polls read their subscription from PostgreSQL and cost the feed a first poll's CPU.
    miss_share = max(0.0, 1 - FEED_DIRECTORY_ROWS / w.subscribers) if w.subscribers else 0.0
    writes = (w.event_changes_per_hour + w.webhooks_per_hour) / 3600
    deliveries = w.webhooks_per_hour / 3600
    grants = w.merchants / w.token_ttl_seconds
    extra_miss_ms = max(figures["feed_first_poll"].ms - figures["feed_full_200"].ms, 0.0)
    lines = [
        Line("feed-api", polls, poll_ms, ["feed.md", "feed_memory.md"] if many else ["feed.md"]),
        Line("feed-api", polls * miss_share, extra_miss_ms, ["feed_memory.md: first polls"]),
        Line("feed-worker", w.event_changes_per_hour / 3600, figures["feed_projection"].ms, ["ASSUMED"]),
        Line("ingest", w.event_changes_per_hour / 3600, figures["ingest_event_change"].ms, ["capacity_check.md"]),
        Line("ingest", w.webhooks_per_hour / 3600, figures["ingest_write"].ms, ["ingest.md"]),
        Line("auth", grants, figures["auth_grant"].ms, ["auth.md"]),
        Line("webhook-worker", deliveries, figures["webhook_delivery"].ms, ["webhook.md"]),
        Line("broker", writes, figures["broker_message"].ms * QUEUES_PER_MESSAGE, ["ASSUMED"]),
        Line("postgresql", writes, figures["db_write"].ms, ["ASSUMED"]),
        Line("postgresql", deliveries, figures["db_webhook_delivery"].ms, ["webhook.md"]),
        Line("postgresql", grants, figures["db_auth_grant"].ms, ["auth.md"]),
        Line("postgresql", polls * miss_share, figures["db_feed_miss"].ms, ["ASSUMED"]),
    ]
    return Estimate(w, lines, full_share, miss_share)


def report(workload: Workload, figures: dict[str, Figure], factors: tuple[float, ...] = (1, 10, 100)) -> str:
    out = []
    for factor in factors:
        w = workload.scaled(factor)
        est = estimate(w, figures)
        name, use = est.bottleneck(figures)
        out += [
            f"### {factor:g}x: {w.subscribers:,} subscribers polling every {w.poll_hours:g} h, {w.merchants:,}"
            f" merchants, {w.event_changes_per_hour:,.0f} event changes/h, {w.webhooks_per_hour:,.0f} webhooks/h",
            "",
            f"Polls {w.subscribers / (w.poll_hours * 3600):,.0f}/s, {est.full_share:.0%} of them whole bodies;"
            f" {est.feed_miss_share:.0%} of polls read their subscription from PostgreSQL (not held in memory).",
            "",
            f"| role | cores busy | cores to provision (at {TARGET_UTILISATION:.0%}) |",
            "|---|---:|---:|",
        ]
        for role in est.roles:
            busy = est.cores(role)
            out.append(f"| {role} | {busy:,.2f} | {busy / TARGET_UTILISATION:,.2f} |")
        total = sum(est.cores(role) for role in est.roles)
        out += [
            f"| total | {total:,.2f} | {total / TARGET_UTILISATION:,.2f} |",
            "",
            f"First bottleneck: {name}, at {use:.0%} of one node.",
            "",
        ]
    assumed = [f"- {key}: {fig.ms} ms ({fig.source})" for key, fig in figures.items() if fig.assumed]
    measured = [f"- {key}: {fig.ms} ({fig.source})" for key, fig in figures.items() if not fig.assumed]
    return "\n".join([*out, "Measured figures:", *measured, "", "ASSUMED figures (no benchmark yet):", *assumed])


# Today's largest customer, CalReply-sized: 5 million subscribers polling hourly. The other rates are
# the model's assumptions of such a platform: 1,000 merchants, 2,000 event changes and 20,000
# subscription changes (each one webhook) an hour.
BASELINE = Workload(
    merchants=1_000,
    subscribers=5_000_000,
    poll_hours=1,
    event_changes_per_hour=2_000,
    webhooks_per_hour=20_000,
)


def main() -> str:
    """The report for today's largest customer and 10x and 100x. `python -m bench capacity` writes it to
    bench/results/capacity.md, as every bench's `main` (it wrote the exit status there when this returned one)."""
    return report(BASELINE, load_figures())


if __name__ == "__main__":
    print(main())
