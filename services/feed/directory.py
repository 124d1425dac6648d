"""What each API process knows of a popular calendar's subscribers, so their feeds need no query.

A feed is the calendar's header with the subscriber's id in it, the section its filter selects, and
its validators: everything but the filter, credentials and version of the subscription is shared.
After the first poll of a calendar with many subscribers, one background read (a cursor in a
repeatable-read snapshot, in batches, so the loop keeps answering) brings every subscription of it
here as a small row (about 400 bytes). A later first poll of any of them is then put together in
memory, in microseconds, instead of a database round trip per subscriber.

A row is used only while it is current: its `feed_version` is at least the newest version this
process has heard of for the subscription (LISTEN `feed_changed`, services.py), so a change
committed after the snapshot is never hidden; a stale row sends the request to the database, whose
answer replaces it. Subscriptions with events of their own always go to the database.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.feed.adapters import repository as repo
from shared.logging import get_logger
from shared.selection import EventFilter

log = get_logger(__name__)

BATCH = 2000
# The columns EventFilter.from_row reads (the arrays as tuples: a key must be hashable).
_ARRAYS = frozenset({"tag_ids", "include_ids", "include_external", "exclude_ids", "exclude_external"})
_FILTER_COLUMNS = (
    "tag_ids",
    "time_zone_tag",
    "include_ids",
    "include_external",
    "exclude_ids",
    "exclude_external",
    "deactivated_at",
)


class Subscriber:
    __slots__ = (
        "calendar_id",
        "feed_changed_at",
        "feed_password_hash",
        "feed_username",
        "feed_version",
        "private",
        "selection",
        "signature",
        "subscription_id",
    )

    def __init__(
        self,
        subscription_id: uuid.UUID,
        calendar_id: uuid.UUID,
        selection: EventFilter,
        signature: str,
        feed_version: int,
        feed_changed_at: datetime,
        feed_username: str | None,
        feed_password_hash: str | None,
        private: bool,
    ) -> None:
        self.subscription_id = subscription_id
        self.calendar_id = calendar_id
        self.selection = selection
        self.signature = signature
        self.feed_version = feed_version
        self.feed_changed_at = feed_changed_at
        self.feed_username = feed_username
        self.feed_password_hash = feed_password_hash
        self.private = private


class SubscriberDirectory:
    """Rows by subscription id (as text, the form requests carry), for calendars with at least
    `min_subscribers`, up to `max_rows` in all (then further calendars go to the database). A
    calendar is looked at once per LISTEN connection: a small one is not loaded later as it grows
    until the connection is renewed (a restart, a lost listener)."""

    def __init__(self, max_rows: int, min_subscribers: int = 100) -> None:
        self.max_rows = max_rows
        self.min_subscribers = min_subscribers
        self.rows: dict[str, Subscriber] = {}
        self.calendars: set[uuid.UUID] = set()  # looked at: loaded, being loaded, or too small to load
        # Loaded calendars, each id to the one object of it every row of the calendar refers to.
        self._loaded: dict[uuid.UUID, uuid.UUID] = {}
        # Bumped by clear(): a load that started before must not add rows from its older snapshot.
        self.generation = 0
        # One filter object and one signature string per distinct filter, shared by its subscribers,
        # found by the row's filter columns as read (no filter object built per row).
        self._filters: dict[EventFilter, tuple[EventFilter, str]] = {}
        self._columns: dict[tuple[Any, ...], tuple[EventFilter, str]] = {}

    def get(self, key: str) -> Subscriber | None:
        return self.rows.get(key)

    def clear(self) -> None:
        self.generation += 1
        self.rows.clear()
        self.calendars.clear()
        self._loaded.clear()
        self._filters.clear()
        self._columns.clear()

    def put(self, row: Any, private: bool) -> None:
        """Record a subscription read from the database (a load, or a request's own read), unless a
        newer version of it is already here."""
        key = str(row["subscription_id"])
        known = self.rows.get(key)
        if known is not None and known.feed_version > row["feed_version"]:
            return
        calendar_id = self._loaded.get(row["calendar_id"])
        if known is None and (calendar_id is None or len(self.rows) >= self.max_rows):
            return
        columns = tuple(tuple(row[name]) if name in _ARRAYS else row[name] for name in _FILTER_COLUMNS)
        shared = self._columns.get(columns)
        if shared is None:
            selection = EventFilter.from_row(row)
            shared = self._filters.get(selection)
            if shared is None:
                shared = self._filters[selection] = (selection, selection.signature)
            if len(self._columns) > 100_000:
                self._columns.clear()
            self._columns[columns] = shared
        self.rows[key] = Subscriber(
            row["subscription_id"],
            calendar_id or row["calendar_id"],
            *shared,
            int(row["feed_version"]),
            row["feed_changed_at"],
            row["feed_username"],
            row["feed_password_hash"],
            private,
        )

    async def load(self, pool: asyncpg.Pool, calendar_id: uuid.UUID) -> None:
        """Read every subscription of the calendar, once (callers check `calendars` first)."""
        if calendar_id in self.calendars:
            return
        self.calendars.add(calendar_id)
        generation = self.generation
        try:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                count = await repo.subscriber_count(conn, calendar_id)
                if count < self.min_subscribers or len(self.rows) + count > self.max_rows:
                    return  # its feeds are read from the database, one by one
                self._loaded[calendar_id] = calendar_id
                cursor = await repo.subscribers(conn, calendar_id)
                while batch := await cursor.fetch(BATCH):
                    private = await repo.with_private_events(conn, [row["subscription_id"] for row in batch])
                    if generation != self.generation:
                        return
                    for row in batch:
                        self.put(row, row["subscription_id"] in private)
                    await asyncio.sleep(0)  # let requests in between batches
        except (OSError, asyncpg.PostgresError) as exc:
            self.calendars.discard(calendar_id)
            log.warning("feed.directory_load_failed", calendar_id=str(calendar_id), error=repr(exc))
            return
        log.info("feed.directory_loaded", calendar_id=str(calendar_id), subscriptions=count)
