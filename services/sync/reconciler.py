"""Reconciling one subscription with its remote calendar: the engine's unit of work.

Loads what the subscription should show (shared/selection.py over the mirror) and what was pushed
(`sync.pushed`), asks the provider for the difference (domain/reconcile.py) and records each
answer at once, so a restart or a replay pushes nothing twice. Provider errors (domain/provider.py)
decide what happens next: retry later, back off a remote user, wait for consent, or stop for good
and ask ingest to deactivate the subscription (`push.stopped`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, Counter

from services.sync.adapters import repository as repo
from services.sync.domain.provider import (
    AuthExpired,
    CalendarGone,
    CalendarMeta,
    Connection,
    EventRejected,
    NeedsConsent,
    Provider,
    PushedEvent,
    RateLimited,
    Unauthorized,
)
from services.sync.domain.reconcile import EventHead, PushedHead, backoff, desired, plan
from services.sync.settings import SyncSettings
from shared import outbox
from shared.crypto import SecretBox
from shared.logging import get_logger
from shared.messages import EventData, PushStopped, make_envelope
from shared.selection import EventFilter

log = get_logger(__name__)
SCHEMA = repo.SCHEMA


class _Stop(Exception):
    """This subscription is not pushed any more (inactive, stopped, waiting for consent)."""


def _head(row: asyncpg.Record) -> EventHead:
    return EventHead(
        event_id=row["event_id"],
        sequence=row["sequence"],
        created_at=row["created_at"],
        external_id=row["external_id"],
        tag_ids=frozenset(row["tag_ids"]),
        time_zone_tag=row["time_zone_tag"],
        deleted=row["deleted"],
    )


class Reconciler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        providers: Mapping[str, Provider],
        settings: SyncSettings,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._pool = pool
        self._box = box
        self._providers = providers
        self._settings = settings
        # A registry of its own when none is given: never the process-wide default, where a second
        # reconciler in the same process would collide.
        registry = registry if registry is not None else CollectorRegistry()
        self.pushes = Counter(
            "sync_pushes", "provider writes that succeeded", ["provider", "action"], registry=registry
        )
        self.failures = Counter(
            "sync_push_failures", "failed reconciliations", ["provider", "error"], registry=registry
        )
        # Plain counts as well, for tests and the bench.
        self.counts: dict[str, int] = {"create": 0, "update": 0, "delete": 0, "reconciled": 0}

    async def reconcile(self, subscription_id: uuid.UUID) -> datetime | None:
        """Bring one subscription's remote calendar up to date; None when done, else when to retry."""
        try:
            work = await self._load(subscription_id)
        except _Stop:
            return None
        provider, connection, calendar, target = work
        try:
            remote_calendar_id = target["remote_calendar_id"]
            if remote_calendar_id is None:
                remote_calendar_id = await self._with_auth(
                    provider, connection, lambda c: provider.ensure_calendar(c, calendar, None)
                )
                async with self._pool.acquire() as conn:
                    await repo.set_remote_calendar(conn, subscription_id, remote_calendar_id)
            await self._calendar_shown(provider, connection, calendar, target, remote_calendar_id)
            await self._push_diff(provider, connection, calendar, subscription_id, remote_calendar_id)
        except Exception as exc:
            return await self._failed(provider, connection, subscription_id, exc)
        if target["failures"]:
            async with self._pool.acquire() as conn:
                await repo.reset_failures(conn, subscription_id)
        self.counts["reconciled"] += 1
        return None

    async def _calendar_shown(
        self,
        provider: Provider,
        connection: Connection,
        calendar: CalendarMeta,
        target: asyncpg.Record,
        remote_calendar_id: str,
    ) -> None:
        """Show a newer name, description or color of the merchant's calendar (the first time, the
        calendar was just made from the current one)."""
        shown = target["calendar_version"]
        if shown is not None and shown >= calendar.version:
            return
        if shown is not None:
            await self._with_auth(
                provider, connection, lambda c: provider.update_calendar(c, remote_calendar_id, calendar)
            )
        async with self._pool.acquire() as conn:
            await repo.set_calendar_version(conn, target["subscription_id"], calendar.version)

    async def _load(self, subscription_id: uuid.UUID) -> tuple[Provider, Connection, CalendarMeta, asyncpg.Record]:
        async with self._pool.acquire() as conn:
            subscription = await repo.subscription(conn, subscription_id)
            target = await repo.target(conn, subscription_id)
            if subscription is None or target is None:
                raise _Stop  # the subscription message will queue it again
            if not subscription["active"] or target["state"] != "active" or target["c_state"] != "active":
                raise _Stop  # deactivated: stop pushing, leave the user's calendar as it is
            calendar = await repo.calendar(conn, subscription["calendar_id"])
            if calendar is None or calendar["deleted"]:
                raise _Stop  # the calendar message will queue it again
        provider = self._providers.get(target["c_provider"])
        if provider is None:
            log.warning("sync.no_provider", provider=target["c_provider"], subscription_id=str(subscription_id))
            raise _Stop
        connection = Connection(
            connection_id=target["connection_id"],
            account_id=target["c_account_id"],
            provider=target["c_provider"],
            remote_user=target["c_remote_user"],
            credentials=json.loads(self._box.decrypt(target["c_credentials"])),
        )
        meta = CalendarMeta(
            calendar_id=calendar["calendar_id"],
            name=calendar["name"],
            description=calendar["description"],
            color=calendar["color"],
            timezone=calendar["timezone"],
            version=calendar["version"],
        )
        return provider, connection, meta, target

    async def _push_diff(
        self,
        provider: Provider,
        connection: Connection,
        calendar: CalendarMeta,
        subscription_id: uuid.UUID,
        remote_calendar_id: str,
    ) -> None:
        async with self._pool.acquire() as conn:
            subscription = await repo.subscription(conn, subscription_id)
            assert subscription is not None
            shared = [_head(r) for r in await repo.calendar_event_heads(conn, subscription["calendar_id"])]
            own = [_head(r) for r in await repo.private_event_heads(conn, subscription_id)]
            pushed = {
                r["event_id"]: PushedHead(r["event_id"], r["remote_id"], r["etag"], r["sequence"], r["rejected"])
                for r in await repo.pushed(conn, subscription_id)
            }
            wanted = desired(EventFilter.from_row(subscription), shared, own)
            diff = plan(wanted, pushed)
            if diff.empty:
                return
            bodies = await repo.event_bodies(conn, [*diff.creates, *(u.event_id for u in diff.updates)])
        log.info(
            "sync.diff",
            subscription_id=str(subscription_id),
            creates=len(diff.creates),
            updates=len(diff.updates),
            deletes=len(diff.deletes),
        )
        for event_id in diff.creates:
            await self._put(provider, connection, calendar, subscription_id, remote_calendar_id, bodies[event_id], None)
        for before in diff.updates:
            await self._put(
                provider, connection, calendar, subscription_id, remote_calendar_id, bodies[before.event_id], before
            )
        for before in diff.deletes:
            if before.remote_id:
                await self._with_auth(
                    provider,
                    connection,
                    lambda c, b=before: provider.delete_event(c, remote_calendar_id, b.remote_id, b.etag),
                )
                self._count(provider, "delete")
            async with self._pool.acquire() as conn:
                await repo.forget_pushed(conn, subscription_id, before.event_id)

    async def _put(
        self,
        provider: Provider,
        connection: Connection,
        calendar: CalendarMeta,
        subscription_id: uuid.UUID,
        remote_calendar_id: str,
        body: dict[str, Any],
        before: PushedHead | None,
    ) -> None:
        event = EventData.model_validate(body)
        remote_id = before.remote_id if before is not None and before.remote_id else None
        etag = before.etag if before is not None else None
        try:
            result: PushedEvent = await self._with_auth(
                provider,
                connection,
                lambda c: provider.put_event(c, remote_calendar_id, calendar, event, remote_id, etag),
            )
        except EventRejected as exc:
            log.warning("sync.event_rejected", event_id=str(event.event_id), reason=exc.reason)
            async with self._pool.acquire() as conn:
                await repo.record_pushed(
                    conn,
                    subscription_id,
                    event.event_id,
                    remote_id=remote_id or "",
                    etag=etag,
                    sequence=event.sequence,
                    rejected=exc.reason[:500],
                )
            return
        self._count(provider, "create" if before is None else "update")
        async with self._pool.acquire() as conn:
            await repo.record_pushed(
                conn,
                subscription_id,
                event.event_id,
                remote_id=result.remote_id,
                etag=result.etag,
                sequence=event.sequence,
            )

    def _count(self, provider: Provider, action: str) -> None:
        self.pushes.labels(provider.name, action).inc()
        self.counts[action] += 1

    async def _with_auth(self, provider: Provider, connection: Connection, call: Any) -> Any:
        """Run one provider call; on AuthExpired refresh the credentials once and try again."""
        try:
            return await call(connection)
        except AuthExpired:
            credentials = await provider.refresh(connection)
        async with self._pool.acquire() as conn:
            await repo.update_credentials(conn, connection.connection_id, self._box.encrypt(json.dumps(credentials)))
        fresh = Connection(
            connection.connection_id, connection.account_id, connection.provider, connection.remote_user, credentials
        )
        try:
            return await call(fresh)
        except AuthExpired as exc:
            raise NeedsConsent(f"the refreshed token was refused too: {exc.reason}") from exc

    # --- failures -------------------------------------------------------------------------------

    async def _failed(
        self, provider: Provider, connection: Connection, subscription_id: uuid.UUID, exc: Exception
    ) -> datetime | None:
        now = datetime.now(UTC)
        name = type(exc).__name__
        self.failures.labels(provider.name, name).inc()
        reason = getattr(exc, "reason", None) or repr(exc)
        log.warning("sync.push_failed", subscription_id=str(subscription_id), error=name, reason=reason[:300])
        async with self._pool.acquire() as conn, conn.transaction():
            if isinstance(exc, RateLimited):
                failures = await repo.count_failure(conn, subscription_id)
                wait = exc.retry_after or backoff(failures, self._settings.backoff_base, self._settings.backoff_max)
                until = now + timedelta(seconds=wait)
                await repo.block_connection(conn, connection.connection_id, until)
                return until
            if isinstance(exc, NeedsConsent):
                await repo.set_connection_state(conn, connection.connection_id, "needs_consent", reason)
                return None
            if isinstance(exc, Unauthorized):
                await repo.set_connection_state(conn, connection.connection_id, "unauthorized", reason)
                await self._stop(conn, connection, subscription_id, "Unauthorized", reason)
                return None
            if isinstance(exc, CalendarGone):
                await self._stop(conn, connection, subscription_id, "CalendarGone", reason)
                return None
            failures = await repo.count_failure(conn, subscription_id)
            wait = backoff(failures, self._settings.backoff_base, self._settings.backoff_max)
            return now + timedelta(seconds=wait)

    async def _stop(
        self, conn: asyncpg.Connection, connection: Connection, subscription_id: uuid.UUID, code: str, reason: str
    ) -> None:
        """Stop pushing for good and ask ingest to deactivate the subscription (Unsubscribe webhook)."""
        await repo.set_target_state(conn, subscription_id, "stopped", f"{code}: {reason}"[:500])
        message = PushStopped(
            subscription_id=subscription_id,
            account_id=connection.account_id,
            code=code,
            reason=reason[:500],
            stopped_at=datetime.now(UTC),
        )
        await outbox.enqueue(conn, SCHEMA, [make_envelope("push.stopped", message, account_id=connection.account_id)])
