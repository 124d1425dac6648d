"""The feed use-cases: a subscription's feed and a whole calendar, served from memory when current.

A request selects and concatenates; nothing is rendered per request. Each API process keeps
  - the latest version it has heard of per calendar and per subscription (LISTEN `feed_changed`,
    plus a periodic re-check against the database in case a notification was missed),
  - shared sections: the event blocks a filter selects and their VTIMEZONEs, per (calendar, filter
    signature, version), shared by every subscription with that filter, compressed once,
  - per subscription only its own part (header, private events, validators: about a kilobyte),
    valid while both versions are current; it refers to its section and never copies it, so
    100,000 subscribers of one calendar cost about 130 MB per process, not 100,000 bodies (and
    the cache's byte budget bounds it whatever the number),
  - per calendar version its row and a template of its subscribers' headers (domain/headers.py),
    and for popular calendars a directory of their subscriptions (directory.py), so that the first
    poll of a subscriber is put together in memory instead of costing a query.
A cached body is served only when its versions equal the newest heard of, so a change the
projection has committed and announced is never hidden by the cache. Without a working LISTEN
connection every request checks the database.

Nothing is rebuilt when a change is heard: a feed is built on the first request after it. A large
section (a popular calendar's) is hashed and compressed on a worker thread, so building after one
change never holds the event loop other tenants' requests run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import asyncpg

from services.feed.adapters import repository as repo
from services.feed.cache import ByteLru
from services.feed.calendar_copy import CalendarCopy
from services.feed.directory import SubscriberDirectory
from services.feed.domain.feeds import Feed, Section, ceil_second
from services.feed.domain.headers import HeaderTemplate
from services.feed.replica import ReadRouter, ReplicaBehind
from services.feed.settings import FeedSettings
from shared.ical import CalendarHeader, render_header
from shared.logging import get_logger
from shared.selection import ALL_EVENTS, EventFilter

log = get_logger(__name__)

# Bodies from this size up are finished on a worker thread (zlib and blake2b release the GIL); below
# it the hand-off would cost more than the work.
OFF_LOOP_BYTES = 64 * 1024
RECHECK_BATCH = 5000
T = TypeVar("T")


class FeedNotFound(Exception):
    """No such subscription or calendar (or its calendar is gone)."""


class CalendarProtected(Exception):
    """The whole-calendar download is only for unprotected calendars."""


class FeedService:
    def __init__(self, pool: asyncpg.Pool, settings: FeedSettings, reads: ReadRouter | None = None) -> None:
        self._pool = pool
        # Feeds are read through this: from a fresh replica when one is configured (replica.py).
        self.reads = reads or ReadRouter(pool, None)
        self._settings = settings
        self.calendar_versions: dict[uuid.UUID, int] = {}
        self.subscription_versions: dict[uuid.UUID, int] = {}
        self._sections: ByteLru[Section] = ByteLru(settings.cache_bytes // 2)
        self._calendars: dict[uuid.UUID, CalendarCopy] = {}
        self.directory = SubscriberDirectory(settings.directory_rows)
        self._recheck_queue: list[uuid.UUID] = []
        self._feeds: ByteLru[Feed] = ByteLru(settings.cache_bytes // 2)
        self._texts: dict[str, str] = {}
        self._calendar_codes: dict[tuple[str, str], tuple[uuid.UUID, bool]] = {}
        self._locks: dict[object, asyncio.Lock] = {}
        self.listening = False
        self._listener: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._builder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="feed-build")

    # --- change notifications -------------------------------------------------------------------

    async def start(self) -> None:
        await self._listen()
        self._tasks.append(asyncio.create_task(self._recheck_loop(), name="feed-recheck"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        self._builder.shutdown(wait=False, cancel_futures=True)

    async def _off_loop(self, size: int, work: Callable[..., T], *args: object) -> T:
        """`work(*args)`, on a worker thread when `size` (the bytes it handles) is large."""
        if size < OFF_LOOP_BYTES:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(self._builder, work, *args)

    async def gzip_chunks(self, feed: Feed) -> list[bytes]:
        """The feed's gzip in chunks; the shared part is compressed once (off the loop when large)."""
        if not feed.gzip_ready:
            await self._off_loop(feed.gzip_work, feed.prepare_gzip)
        return feed.gzip_chunks()

    async def gzip_body(self, feed: Feed) -> bytes:
        """`gzip_chunks` joined (a few kilobytes: one write with the headers)."""
        if not feed.gzip_ready:
            await self._off_loop(feed.gzip_work, feed.prepare_gzip)
        return feed.gzip_body()

    async def _listen(self) -> None:
        try:
            conn = await asyncpg.connect(self._settings.platform.database_url)
            await conn.add_listener(repo.CHANNEL, self._on_notify)
            conn.add_termination_listener(self._on_listener_lost)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("feed.listen_failed", error=repr(exc))
            self._schedule_relisten()
            return
        self._listener = conn
        # Whatever was announced while nobody listened is unknown: start from a clean slate.
        self._forget_all()
        self.listening = True
        log.info("feed.listening", channel=repo.CHANNEL)

    def _schedule_relisten(self) -> None:
        if self._stopping:
            return

        async def again() -> None:
            await asyncio.sleep(1.0)
            await self._listen()

        self._tasks.append(asyncio.create_task(again(), name="feed-relisten"))

    def _on_listener_lost(self, conn: asyncpg.Connection) -> None:
        self.listening = False
        self._forget_all()
        log.warning("feed.listen_lost")
        self._schedule_relisten()

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        for entry in payload.split(";"):
            self._heard(entry)

    def _heard(self, entry: str) -> None:
        kind, _, rest = entry.partition(":")
        raw_id, _, raw_version = rest.partition(":")
        try:
            key, version = uuid.UUID(raw_id), int(raw_version)
        except ValueError:
            return
        known = self.calendar_versions if kind == "c" else self.subscription_versions
        if version > known.get(key, 0):
            known[key] = version
        if kind == "c":
            # A calendar's code may have changed or been deleted: look it up again.
            for code, (calendar_id, _) in list(self._calendar_codes.items()):
                if calendar_id == key:
                    del self._calendar_codes[code]

    def _forget_all(self) -> None:
        self.directory.clear()
        self._calendars.clear()
        self.calendar_versions.clear()
        self.subscription_versions.clear()
        self._calendar_codes.clear()
        self._feeds.clear()
        self._sections.clear()

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.recheck_seconds)
            try:
                await self.recheck()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("feed.recheck_failed", error=repr(exc))

    async def recheck(self) -> None:
        """Catch up with any version a lost notification did not tell us about.

        Only what is held here matters (cached feeds, directory rows): a version nobody holds is
        read afresh anyway. Calendars are few and all checked each round; subscriptions may be
        hundreds of thousands, so each round checks the next RECHECK_BATCH of them in turn.
        """
        if not self._recheck_queue:
            held = {entry.subscription_id for key in self._feeds.keys() if (entry := self._feeds.peek(key)) is not None}
            held.update(row.subscription_id for row in self.directory.rows.values())
            held.discard(None)
            self._recheck_queue = [sid for sid in held if sid is not None]
        subscriptions = sorted(self._recheck_queue[-RECHECK_BATCH:])
        del self._recheck_queue[-RECHECK_BATCH:]
        calendars = sorted(self.calendar_versions)
        if not calendars and not subscriptions:
            return
        async with self._pool.acquire() as conn:
            fresh_calendars, fresh_subscriptions = await repo.current_versions(conn, calendars, subscriptions)
        for key, version in fresh_calendars.items():
            if version > self.calendar_versions.get(key, 0):
                self.calendar_versions[key] = version
        for key, version in fresh_subscriptions.items():
            if version > self.subscription_versions.get(key, 0):
                self.subscription_versions[key] = version

    def _note(self, known: dict[uuid.UUID, int], key: uuid.UUID, version: int) -> int:
        newest = max(version, known.get(key, 0))
        known[key] = newest
        return newest

    def _lock(self, key: object) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[key] = asyncio.Lock()
        return lock

    # --- a subscription's feed ------------------------------------------------------------------

    def current(self, key: object) -> Feed | None:
        """The cached feed under `key` (a subscription id as text, or ("calendar", id)) while it is
        current: no I/O, so a request that finds it is answered without leaving the loop."""
        if not self.listening:
            return None
        cached = self._feeds.get(key)
        if cached is None:
            return None
        if cached.calendar_version != self.calendar_versions.get(cached.calendar_id):  # type: ignore[arg-type]
            return None
        subscription_id = cached.subscription_id
        if subscription_id is not None and cached.subscription_version != self.subscription_versions.get(
            subscription_id
        ):
            return None
        return cached

    async def subscription_feed(self, subscription_id: uuid.UUID) -> Feed:
        key = str(subscription_id)
        feed = self.current(key) or self.from_directory(key)
        if feed is not None:
            return feed
        async with self._lock(subscription_id):
            feed = self.current(key)
            if feed is not None:
                return feed
            return await self._build_subscription_feed(subscription_id)

    async def _build_subscription_feed(self, subscription_id: uuid.UUID) -> Feed:
        subscription, calendar, section, private = await self.reads.read(
            lambda pool, from_replica: self._load_subscription(pool, from_replica, subscription_id), (FeedNotFound,)
        )
        calendar_version = int(calendar["feed_version"])
        subscription_version = int(subscription["feed_version"])
        self._note(self.calendar_versions, calendar["calendar_id"], calendar_version)
        self._note(self.subscription_versions, subscription_id, subscription_version)
        copy = self._calendar_copy(calendar, calendar_version)
        self.directory.put(subscription, private=bool(private))
        if self.listening and calendar["calendar_id"] not in self.directory.calendars:
            self._tasks.append(asyncio.create_task(self.directory.load(self._pool, calendar["calendar_id"])))
            self._tasks = [task for task in self._tasks if not task.done()]
        moments = [calendar["feed_changed_at"], subscription["feed_changed_at"], calendar["changed_at"]]
        feed = Feed(
            header=self._subscriber_header(copy, subscription_id),
            section=section,
            private_blocks=[row["block"] for row in private],
            private_needs=[tzid for row in private for tzid in row["tzids"]],
            last_modified=ceil_second(max(m for m in moments if m is not None)),
            filename=copy.filename,
            disposition=copy.disposition,
            feed_username=subscription["feed_username"],
            feed_password_hash=subscription["feed_password_hash"],
            protected=copy.protected,
            calendar_id=calendar["calendar_id"],
            calendar_version=calendar_version,
            subscription_id=subscription_id,
            subscription_version=subscription_version,
        )
        self._feeds.put(str(subscription_id), feed)
        return feed

    async def _load_subscription(
        self, pool: asyncpg.Pool, from_replica: bool, subscription_id: uuid.UUID
    ) -> tuple[asyncpg.Record, asyncpg.Record, Section, list[asyncpg.Record]]:
        """A subscription's rows, its calendar's and its section, from one snapshot of `pool`."""
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            subscription = await repo.subscription_with_calendar(conn, subscription_id)
            if subscription is None:
                raise FeedNotFound(f"no subscription {subscription_id}")
            calendar = await repo.calendar_with_version(conn, subscription["calendar_id"])
            if calendar is None or calendar["deleted"]:
                raise FeedNotFound(f"the calendar of subscription {subscription_id} does not exist")
            calendar_version = int(calendar["feed_version"])
            if from_replica:
                self._not_behind(
                    calendar["calendar_id"], calendar_version, subscription_id, subscription["feed_version"]
                )
            selection = EventFilter.from_row(subscription)
            section = await self._section(conn, calendar["calendar_id"], selection, calendar_version)
            private = await repo.private_events(conn, subscription_id, subscription["deactivated_at"])
        return subscription, calendar, section, list(private)

    def _not_behind(
        self,
        calendar_id: uuid.UUID,
        calendar_version: int,
        subscription_id: uuid.UUID | None,
        subscription_version: int,
    ) -> None:
        """Raise ReplicaBehind when a replica's versions are older than ones heard of (replica.py, rule 2)."""
        if calendar_version < self.calendar_versions.get(calendar_id, 0):
            raise ReplicaBehind(f"calendar {calendar_id} at {calendar_version} on the replica")
        if subscription_id is not None and subscription_version < self.subscription_versions.get(subscription_id, 0):
            raise ReplicaBehind(f"subscription {subscription_id} at {subscription_version} on the replica")

    async def _section(
        self, conn: asyncpg.Connection, calendar_id: uuid.UUID, selection: EventFilter, version: int
    ) -> Section:
        key = (calendar_id, selection.signature)
        cached = self._sections.get(key)
        if cached is not None and cached.version == version:
            return cached
        # Subscribers of one popular calendar arriving together after a change share one query.
        async with self._lock(("section", key)):
            cached = self._sections.get(key)
            if cached is not None and cached.version == version:
                return cached
            row = await repo.shared_section(conn, calendar_id, selection)
            blocks: bytes = row["blocks"]
            # Zones rendered and the blocks hashed once per section (off the loop when large).
            section = await self._off_loop(
                len(blocks), Section, version, blocks, frozenset(row["tzids"]), row["changed_at"]
            )
            self._sections.put(key, section)
            return section

    def from_directory(self, key: str) -> Feed | None:
        """The feed of the subscription whose id is `key` (as text), put together in memory from the
        directory's row, the calendar's copy and the cached section when all three are current; None
        sends the request to the database. No id is parsed and one object is made (the feed)."""
        if not self.listening:
            return None
        row = self.directory.get(key)
        if row is None or row.private:
            return None
        subscription_id = row.subscription_id
        if row.feed_version < self.subscription_versions.get(subscription_id, 0):
            return None
        calendar_id = row.calendar_id
        version = self.calendar_versions.get(calendar_id)
        copy = self._calendars.get(calendar_id)
        if version is None or copy is None or copy.version != version:
            return None
        section = self._sections.get((calendar_id, row.signature))
        if section is None or section.version != version:
            return None
        self._note(self.subscription_versions, subscription_id, row.feed_version)
        last_modified, last_modified_http = copy.stamp(row.feed_changed_at)
        feed = Feed.of_section(
            self._subscriber_header(copy, subscription_id, key),
            section,
            last_modified,
            last_modified_http,
            copy.filename,
            copy.disposition,
            row.feed_username,
            row.feed_password_hash,
            copy.protected,
            calendar_id,
            version,
            subscription_id,
            row.feed_version,
        )
        self._feeds.put(key, feed)
        return feed

    def _calendar_copy(self, calendar: asyncpg.Record, version: int) -> CalendarCopy:
        calendar_id = calendar["calendar_id"]
        copy = self._calendars.get(calendar_id)
        if copy is None or copy.version != version:
            template = HeaderTemplate.of(lambda subscription_id: self._header(calendar, subscription_id))
            copy = CalendarCopy(
                version,
                calendar,
                template,
                self._text(f"{calendar['code']}.ics"),
                self._text(f'inline; filename="{calendar["code"]}.ics"'),
            )
            if version >= self.calendar_versions.get(calendar_id, 0):
                if len(self._calendars) > 10_000:
                    self._calendars.clear()
                self._calendars[calendar_id] = copy
        return copy

    def _subscriber_header(self, copy: CalendarCopy, subscription_id: uuid.UUID, text: str | None = None) -> bytes:
        if copy.template is not None:
            return copy.template.fill(subscription_id, text)
        return self._header(copy.record, subscription_id)

    def _text(self, text: str) -> str:
        """One string object per distinct value (a calendar's file name is in every feed of it)."""
        if len(self._texts) > 100_000:
            self._texts.clear()
        return self._texts.setdefault(text, text)

    def _header(self, calendar: asyncpg.Record, subscription_id: uuid.UUID | None) -> bytes:
        description = calendar["description"] or ""
        source = (
            f"{self._settings.platform.public_feed_url}/v1/calendars/{calendar['account_code']}/{calendar['code']}.ics"
        )
        if subscription_id is not None:
            unsubscribe = f"{self._settings.public_api_url}/v1/unsubscribe/{subscription_id}"
            description = (
                f"{description}\n\nUnsubscribe: {unsubscribe}" if description else f"Unsubscribe: {unsubscribe}"
            )
            source = f"{self._settings.platform.public_feed_url}/v1/webcal/{subscription_id}"
        return render_header(
            CalendarHeader(
                name=calendar["name"],
                description=description,
                color=calendar["color"],
                image=calendar["image"],
                refresh_interval=calendar["refresh_interval"],
                source=source,
                timezone=calendar["timezone"],
            )
        )

    # --- a whole calendar -----------------------------------------------------------------------

    async def calendar_feed(self, account_code: str, calendar_code: str) -> Feed:
        code = (account_code.lower(), calendar_code.lower())
        known = self._calendar_codes.get(code) if self.listening else None
        if known is None:
            async with self._pool.acquire() as conn:
                row = await repo.calendar_by_code(conn, account_code, calendar_code)
            if row is None:
                raise FeedNotFound(f"no calendar {account_code}/{calendar_code}")
            known = (row["calendar_id"], bool(row["protected"]))
            if self.listening:
                self._calendar_codes[code] = known
        calendar_id, protected = known
        if protected:
            raise CalendarProtected(f"calendar {account_code}/{calendar_code} is protected")
        key = ("calendar", calendar_id)
        feed = self.current(key)
        if feed is not None:
            return feed
        async with self._lock(key):
            feed = self.current(key)
            if feed is not None:
                return feed
            calendar, section = await self.reads.read(
                lambda pool, from_replica: self._load_calendar(
                    pool, from_replica, calendar_id, f"{account_code}/{calendar_code}"
                ),
                (FeedNotFound,),
            )
            version = int(calendar["feed_version"])
            self._note(self.calendar_versions, calendar_id, version)
            moments = [calendar["feed_changed_at"], calendar["changed_at"]]
            feed = Feed(
                header=self._header(calendar, None),
                section=section,
                last_modified=ceil_second(max(m for m in moments if m is not None)),
                filename=self._text(f"{calendar['code']}.ics"),
                disposition=self._text(f'attachment; filename="{calendar["code"]}.ics"'),
                calendar_id=calendar_id,
                calendar_version=version,
            )
            self._feeds.put(key, feed)
            return feed

    async def _load_calendar(
        self, pool: asyncpg.Pool, from_replica: bool, calendar_id: uuid.UUID, name: str
    ) -> tuple[asyncpg.Record, Section]:
        """A calendar's row and its whole section, from one snapshot of `pool`."""
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            calendar = await repo.calendar_with_version(conn, calendar_id)
            if calendar is None or calendar["deleted"]:
                raise FeedNotFound(f"no calendar {name}")
            version = int(calendar["feed_version"])
            if from_replica:
                self._not_behind(calendar_id, version, None, 0)
            section = await self._section(conn, calendar_id, ALL_EVENTS, version)
        return calendar, section
