"""The revocation denylist: what auth revoked or disabled, refused by every service within seconds.

Auth announces revocations through its outbox (`access_token.revoked`, `token_family.revoked`,
`client.disabled`/`client.enabled`, `account.disabled`/`account.enabled`). Every service that
consumes anything also takes these on its first queue (`lifecycle.consumers` adds them) and writes
them into the `denylist` table of its own schema, in the consumer's transaction. API processes load
that table at start and poll it every `POLL_INTERVAL` seconds, so the bearer middleware checks an
in-memory set; API-key routes join the table in their key lookup (`shared.api_keys.live_api_key`).

The table is persisted, not replayed from auth: a service that restarts, or whose API runs
without its worker, learns the current state from its own schema, with no call to auth and no
endpoint that lists disabled merchants. Entries for tokens and families expire with the tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import asyncpg

from shared.consumer import Handler, QueueSpec
from shared.logging import get_logger
from shared.messages import (
    AccessTokenRevoked,
    AccountStateChanged,
    ClientStateChanged,
    Envelope,
    TokenFamilyRevoked,
)

log = get_logger(__name__)

ROUTING_KEYS = (
    "access_token.revoked",
    "token_family.revoked",
    "client.disabled",
    "client.enabled",
    "account.disabled",
    "account.enabled",
)
POLL_INTERVAL = 1.0
FULL_RELOAD_INTERVAL = 60.0
# A consumer transaction that commits later than this after it wrote is caught by the full reload.
POLL_OVERLAP = timedelta(seconds=10)
# How long a re-enabled entry is kept, so a `disabled` message delivered late cannot win.
ENABLED_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Entry:
    kind: str  # token | family | client | account
    subject: str
    denied: bool
    changed_at: datetime
    expires_at: datetime | None


def entry_of(envelope: Envelope) -> Entry | None:
    """The denylist entry a message sets, or None for any other message."""
    if envelope.type not in ROUTING_KEYS:
        return None
    data = envelope.parsed()
    if isinstance(data, AccessTokenRevoked):
        return Entry("token", data.jti, True, envelope.occurred_at, data.expires_at)
    if isinstance(data, TokenFamilyRevoked):
        return Entry("family", str(data.family_id), True, envelope.occurred_at, data.expires_at)
    denied = envelope.type.endswith(".disabled")
    if isinstance(data, ClientStateChanged):
        subject = data.client_id
    elif isinstance(data, AccountStateChanged):
        subject = str(data.account_id)
    else:  # pragma: no cover - ROUTING_KEYS and the schemas agree
        return None
    kind = envelope.type.split(".", 1)[0]
    return Entry(kind, subject, denied, data.changed_at, None if denied else data.changed_at + ENABLED_KEPT)


# --- the write side: a consumer's handler -------------------------------------------------------


async def record(conn: asyncpg.Connection, schema: str, entry: Entry) -> None:
    """Upsert one entry (an older change never overwrites a newer one) and drop expired ones."""
    await conn.execute(
        f"INSERT INTO {schema}.denylist AS d (kind, subject, denied, changed_at, expires_at, written_at)"
        " VALUES ($1, $2, $3, $4, $5, clock_timestamp())"
        " ON CONFLICT (kind, subject) DO UPDATE SET denied = EXCLUDED.denied, changed_at = EXCLUDED.changed_at,"
        " expires_at = EXCLUDED.expires_at, written_at = clock_timestamp()"
        " WHERE d.changed_at <= EXCLUDED.changed_at",
        entry.kind,
        entry.subject,
        entry.denied,
        entry.changed_at,
        entry.expires_at,
    )
    await conn.execute(f"DELETE FROM {schema}.denylist WHERE expires_at < now() - interval '1 minute'")


def following(schema: str, handler: Handler) -> Handler:
    """`handler`, with the denylist's messages taken out of its stream and recorded instead."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        entry = entry_of(envelope)
        if entry is None:
            await handler(conn, envelope)
            return
        await record(conn, schema, entry)
        log.info("denylist.recorded", kind=entry.kind, subject=entry.subject[:80], denied=entry.denied)

    return handle


def with_denylist(schema: str, specs: Sequence[tuple[QueueSpec, Handler]]) -> list[tuple[QueueSpec, Handler]]:
    """The service's consumers, the first one also bound to the denylist's messages."""
    if not specs or any(set(ROUTING_KEYS) <= set(spec.routing_keys) for spec, _ in specs):
        return list(specs)
    (first, handler), *rest = specs
    extended = replace(first, routing_keys=(*first.routing_keys, *ROUTING_KEYS))
    return [(extended, following(schema, handler)), *rest]


# --- the read side: an in-memory copy for the bearer middleware ---------------------------------


@dataclass
class Denylist:
    """What is denied now, by kind; token and family entries carry their expiry."""

    tokens: dict[str, datetime] = field(default_factory=dict)
    families: dict[str, datetime] = field(default_factory=dict)
    clients: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)

    def apply(self, entry: Entry) -> None:
        if entry.kind in ("token", "family"):
            target = self.tokens if entry.kind == "token" else self.families
            if entry.denied and entry.expires_at is not None:
                target[entry.subject] = entry.expires_at
            else:
                target.pop(entry.subject, None)
            return
        members = self.clients if entry.kind == "client" else self.accounts
        if entry.denied:
            members.add(entry.subject)
        else:
            members.discard(entry.subject)

    def replace_all(self, entries: Sequence[Entry]) -> None:
        fresh = Denylist()
        for entry in entries:
            fresh.apply(entry)
        self.tokens, self.families, self.clients, self.accounts = (
            fresh.tokens,
            fresh.families,
            fresh.clients,
            fresh.accounts,
        )

    def refusal(
        self, *, jti: str, family_id: str | None, client_id: str, account_id: str, now: datetime | None = None
    ) -> str | None:
        """Why a token with these claims must be refused, or None when nothing denies it."""
        current = now or datetime.now(UTC)
        expires = self.tokens.get(jti)
        if expires is not None and expires > current:
            return "access token has been revoked"
        expires = self.families.get(family_id) if family_id else None
        if expires is not None and expires > current:
            return "access token has been revoked (its grant was revoked)"
        if client_id in self.clients:
            return "the client of this access token is disabled"
        if account_id in self.accounts:
            return "the account of this access token is disabled"
        return None


_COLUMNS = "kind, subject, denied, changed_at, expires_at"


def _entries(rows: Sequence[asyncpg.Record]) -> list[Entry]:
    return [Entry(r["kind"], r["subject"], r["denied"], r["changed_at"], r["expires_at"]) for r in rows]


class DenylistFollower:
    """Keeps one process's Denylist equal to its schema's table, within `interval` seconds."""

    def __init__(self, pool: asyncpg.Pool, schema: str, denylist: Denylist, *, interval: float = POLL_INTERVAL):
        self._pool = pool
        self._schema = schema
        self.denylist = denylist
        self._interval = interval
        self._cursor: datetime | None = None
        self._full_at = 0.0

    async def load(self) -> None:
        """Everything in the table (at start, and now and then to drop what was purged)."""
        async with self._pool.acquire() as conn:
            now: datetime = await conn.fetchval("SELECT clock_timestamp()")
            rows = await conn.fetch(f"SELECT {_COLUMNS} FROM {self._schema}.denylist WHERE denied")
        self.denylist.replace_all(_entries(rows))
        self._cursor = now
        self._full_at = time.monotonic()

    async def poll(self) -> int:
        """Apply rows written since the last look (with an overlap); returns how many."""
        if self._cursor is None or time.monotonic() - self._full_at > FULL_RELOAD_INTERVAL:
            await self.load()
            return 0
        async with self._pool.acquire() as conn:
            now: datetime = await conn.fetchval("SELECT clock_timestamp()")
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {self._schema}.denylist WHERE written_at > $1", self._cursor - POLL_OVERLAP
            )
        for entry in _entries(rows):
            self.denylist.apply(entry)
        self._cursor = now
        return len(rows)

    async def run(self) -> None:
        """Poll until cancelled; a failed poll (database away) keeps the last known state."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("denylist.poll_failed", error=repr(exc))


@contextlib.asynccontextmanager
async def followed(
    pool: asyncpg.Pool, schema: str, denylist: Denylist, *, interval: float = POLL_INTERVAL
) -> AsyncIterator[DenylistFollower]:
    """Load the denylist, then keep it current in a background task for the block's duration."""
    follower = DenylistFollower(pool, schema, denylist, interval=interval)
    await follower.load()
    task = asyncio.create_task(follower.run(), name=f"denylist-{schema}")
    try:
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
