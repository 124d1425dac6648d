"""What every ingest use-case shares: the account, transactions with retry, the outbox publish."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from services.ingest.adapters import repository as repo
from services.ingest.adapters.geoip import CountryLookup
from services.ingest.adapters.subscription_queries import (
    NewSubscriptionWriter,
    subscribe_targets,
    subscriptions_with_calendar,
)
from services.ingest.adapters.sync_client import SyncClient
from services.ingest.api.schemas import (
    EventBody,
)
from services.ingest.domain.events import EventDraft
from shared.crypto import SecretBox
from shared.errors import Conflict, InvalidRequest
from shared.grouping import on_pool
from shared.messages import (
    Envelope,
    MessageData,
    SubscriptionData,
    make_envelope,
)
from shared.outbox import enqueue

SCHEMA = repo.SCHEMA
T = TypeVar("T")


@dataclass(frozen=True)
class Account:
    """The merchant account a request acts for (from its access token)."""

    account_id: uuid.UUID
    account_code: str


@dataclass(frozen=True)
class Subscribed:
    """The outcome of a create-subscription call, what its response is made of."""

    subscription_id: uuid.UUID
    subscriber_id: str | None
    subscription_type: str
    is_new: bool
    subscription_url: str | None
    redirect_to: str | None
    # CalDAV: the collection the subscription is pushed into.
    calendar_url: str | None = None
    # A new Google subscription waits for the user's consent: not announced yet, this is its message.
    pending: SubscriptionData | None = None


@dataclass
class SubscriptionView:
    """A subscription with what its GET response shows."""

    row: asyncpg.Record
    calendar: Mapping[str, Any]  # at least code, name and image
    tags: Sequence[Mapping[str, Any]]  # at least tag_id and name
    included: list[asyncpg.Record] = field(default_factory=list)
    excluded: list[asyncpg.Record] = field(default_factory=list)
    manual_events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    """What one tenant may hold, so no message or feed grows without bound (README, "Limits")."""

    # Manual events one subscription holds: all of them travel to every feed rebuild of it.
    manual_events_per_subscription: int = 200
    # Live events of one calendar: each is in the shared feed of every subscriber of it.
    events_per_calendar: int = 5000


class _Retry(Exception):
    """A unique index said another writer got there first: run the transaction again."""


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _within(prefix: str) -> Iterator[None]:
    """Name the enclosing field in a 400 raised inside (`events[2].start: ...`)."""
    try:
        yield
    except InvalidRequest as exc:
        raise InvalidRequest(f"{prefix}.{exc.reason}") from None


def _uuid(value: str, field_name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidRequest(f"{field_name}: {str(value)[:64]!r} is not a UUID") from None


def _maybe_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


def _draft(body: EventBody) -> EventDraft:
    return EventDraft(
        title=body.title,
        start=body.start,
        end=body.end,
        timezone=body.timezone,
        all_day=body.all_day_event,
        description=body.description or body.body or "",
        location=body.location,
        notify_before=body.notify_before,
        time_zone_tag=body.time_zone_tag,
        url=body.url,
        status=body.status,
        transparency=body.transparency,
        class_=body.class_,
        categories=body.categories,
        color=body.color,
        organizer=body.organizer.model_dump() if body.organizer else None,
        attendees=[a.model_dump() for a in body.attendees],
        conference=body.conference,
        image=body.image,
        recurrence=body.recurrence,
        notify=body.notify,
    )


class UseCaseBase:
    """Transactions, reads and outbox publishing that every use-case module builds on."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        public_feed_url: str,
        limits: Limits | None = None,
        sync: SyncClient | None = None,
        *,
        secrets: SecretBox,
        geo: CountryLookup | None = None,
    ) -> None:
        self._pool = pool
        self._new_subscriptions = NewSubscriptionWriter(pool)
        # GET /v1/subscription/{id} and subscribe's lookup: one statement for concurrent requests.
        self._subscription_reads = on_pool(pool, subscriptions_with_calendar, name="ingest-subscription-reads")
        self._subscribe_targets = on_pool(pool, subscribe_targets, name="ingest-subscribe-targets")
        self._public_feed_url = public_feed_url
        self._limits = limits or Limits()
        self._sync = sync
        self._secrets = secrets
        self._geo = geo

    def _country(self, ip_address: str | None) -> dict[str, str]:
        """`country_code`/`geo_country` of the address when a GeoIP database is configured."""
        return self._geo.details(ip_address) if self._geo is not None else {}

    async def _transaction(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *, attempts: int = 3) -> T:
        for attempt in range(attempts):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    return await work(conn)
            except _Retry:
                if attempt == attempts - 1:
                    raise Conflict("a concurrent request changed the same record; retry") from None
        raise AssertionError("unreachable")

    async def _read(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async with self._pool.acquire() as conn:
            return await work(conn)

    @staticmethod
    async def _publish(conn: asyncpg.Connection, account: Account, messages: Sequence[tuple[str, MessageData]]) -> None:
        envelopes: list[Envelope] = [make_envelope(t, d, account_id=account.account_id) for t, d in messages]
        await enqueue(conn, SCHEMA, envelopes)


_IDENTITY = {
    "event_id",
    "calendar_id",
    "account_id",
    "external_id",
    "sequence",
    "changed_at",
    "created_at",
    "subscription_ids",
    "deleted",
}
