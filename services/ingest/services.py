"""The ingest use-cases: each validates, writes its rows and its outbox messages in one transaction.

Handlers call exactly one method of `Ingest`. Messages are enqueued with the change they announce
(shared.outbox), so a write is published exactly when it commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from services.ingest.adapters import repository as repo
from services.ingest.api.schemas import (
    CalendarBody,
    DeactivateBody,
    EventBody,
    SubscribeBody,
    SubscriptionEventBody,
    TagBody,
    TagRef,
    UpdateSubscriptionBody,
)
from services.ingest.domain.calendars import refresh_interval
from services.ingest.domain.events import EventDraft, event_fields
from services.ingest.domain.subscriptions import (
    device_name,
    hash_feed_password,
    new_feed_password,
    referrer_source,
    subscription_type,
    webcal_url,
)
from services.ingest.domain.timezones import require_windows_id, to_iana
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.messages import (
    CalendarData,
    CalendarDeleted,
    Envelope,
    EventData,
    MessageData,
    SubscriptionData,
    SubscriptionEventAccepted,
    SubscriptionTag,
    TagData,
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


@dataclass
class SubscriptionView:
    """A subscription with what its GET response shows."""

    row: asyncpg.Record
    calendar: asyncpg.Record
    tags: list[asyncpg.Record]
    included: list[asyncpg.Record] = field(default_factory=list)
    excluded: list[asyncpg.Record] = field(default_factory=list)
    manual_events: list[dict[str, Any]] = field(default_factory=list)


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
        description=body.description,
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
    )


class Ingest:
    """The composition root's one object of use-cases, over a pool and the public feed URL."""

    def __init__(self, pool: asyncpg.Pool, public_feed_url: str) -> None:
        self._pool = pool
        self._public_feed_url = public_feed_url

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

    # --- calendars --------------------------------------------------------------------------------

    @staticmethod
    async def _calendar(
        conn: asyncpg.Connection, account: Account, code: str, *, for_update: bool = False
    ) -> asyncpg.Record:
        row = await repo.calendar_by_code(conn, account.account_id, code, for_update=for_update)
        if row is None:
            raise NotFound(f"calendar '{code[:100]}' not found", code="CalendarNotFound")
        return row

    @staticmethod
    def _calendar_values(body: CalendarBody) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in ("name", "description", "image", "color", "protected", "single_subscription_per_subscriber"):
            if name in body.model_fields_set:
                value = getattr(body, name)
                if value is None and name in ("name", "protected", "single_subscription_per_subscriber"):
                    raise InvalidRequest(f"{name}: must not be null")
                values[name] = "" if value is None and name == "description" else value
        if "timezone" in body.model_fields_set:
            values["timezone"] = to_iana(body.timezone, "timezone") if body.timezone else "UTC"
        if "refresh_interval" in body.model_fields_set:
            values["refresh_interval"] = refresh_interval(body.refresh_interval) if body.refresh_interval else "PT1H"
        return values

    @staticmethod
    def calendar_message(row: asyncpg.Record, account: Account, merchant: str) -> CalendarData:
        return CalendarData(
            calendar_id=row["calendar_id"],
            account_id=row["account_id"],
            account_code=account.account_code,
            account_name=merchant,
            code=row["code"],
            name=row["name"],
            description=row["description"],
            image=row["image"],
            color=row["color"],
            timezone=row["timezone"],
            protected=row["protected"],
            refresh_interval=row["refresh_interval"],
            single_subscription_per_subscriber=row["single_subscription_per_subscriber"],
            version=row["version"],
            changed_at=row["updated_at"],
        )

    async def create_calendar(self, account: Account, body: CalendarBody) -> asyncpg.Record:
        if not body.code:
            raise InvalidRequest("code: calendar code is required")
        if not body.name:
            raise InvalidRequest("name: calendar name is required")
        values = self._calendar_values(body)

        async def work(conn: asyncpg.Connection) -> asyncpg.Record:
            merchant = await repo.merchant_name(conn, account.account_id, account.account_code)
            assert body.code is not None
            row = await repo.insert_calendar(conn, account.account_id, body.code, values)
            if row is None:
                raise Conflict(f"code: the account already has a calendar '{body.code}'", code="CalendarExists")
            await self._publish(conn, account, [("calendar.created", self.calendar_message(row, account, merchant))])
            return row

        return await self._transaction(work)

    async def list_calendars(self, account: Account) -> list[asyncpg.Record]:
        return await self._read(lambda conn: repo.list_calendars(conn, account.account_id))

    async def get_calendar(self, account: Account, code: str) -> asyncpg.Record:
        return await self._read(lambda conn: self._calendar(conn, account, code))

    async def update_calendar(self, account: Account, code: str, body: CalendarBody) -> asyncpg.Record:
        if body.code is not None and body.code.lower() != code.lower():
            raise InvalidRequest("code: a calendar's code cannot change")
        values = self._calendar_values(body)

        async def work(conn: asyncpg.Connection) -> asyncpg.Record:
            merchant = await repo.merchant_name(conn, account.account_id, account.account_code)
            calendar = await self._calendar(conn, account, code, for_update=True)
            if all(calendar[k] == v for k, v in values.items()):
                return calendar
            row = await repo.update_calendar(conn, calendar["calendar_id"], values)
            await self._publish(conn, account, [("calendar.updated", self.calendar_message(row, account, merchant))])
            return row

        return await self._transaction(work)

    async def delete_calendar(self, account: Account, code: str) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            calendar = await self._calendar(conn, account, code, for_update=True)
            row = await repo.delete_calendar(conn, calendar["calendar_id"])
            deleted = CalendarDeleted(
                calendar_id=row["calendar_id"],
                account_id=row["account_id"],
                code=row["code"],
                version=row["version"],
                changed_at=row["updated_at"],
            )
            await self._publish(conn, account, [("calendar.deleted", deleted)])

        await self._transaction(work)

    # --- tags -------------------------------------------------------------------------------------

    @staticmethod
    def tag_message(row: asyncpg.Record) -> TagData:
        return TagData(
            tag_id=row["tag_id"],
            calendar_id=row["calendar_id"],
            name=row["name"],
            external_id=row["external_id"],
            version=row["version"],
            changed_at=row["updated_at"],
        )

    async def save_tag(self, account: Account, code: str, body: TagBody) -> tuple[asyncpg.Record, bool]:
        """Create the tag, or rename the calendar's tag of the same external id; True when created."""

        async def work(conn: asyncpg.Connection) -> tuple[asyncpg.Record, bool]:
            calendar = await self._calendar(conn, account, code)
            if body.external_id is not None:
                existing = await repo.tag_by_external_id(conn, calendar["calendar_id"], body.external_id)
                if existing is not None:
                    if existing["name"] == body.name:
                        return existing, False
                    row = await repo.rename_tag(conn, existing["tag_id"], body.name)
                    await self._publish(conn, account, [("tag.updated", self.tag_message(row))])
                    return row, False
            created = await repo.insert_tag(
                conn, calendar["calendar_id"], account.account_id, body.name, body.external_id
            )
            if created is None:
                raise _Retry
            await self._publish(conn, account, [("tag.created", self.tag_message(created))])
            return created, True

        return await self._transaction(work)

    async def list_tags(self, account: Account, code: str) -> list[asyncpg.Record]:
        async def work(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            calendar = await self._calendar(conn, account, code)
            return await repo.list_tags(conn, calendar["calendar_id"])

        return await self._read(work)

    @staticmethod
    async def _resolve_tags(
        conn: asyncpg.Connection, calendar_id: uuid.UUID, refs: Sequence[TagRef], field_name: str
    ) -> list[asyncpg.Record]:
        """The calendar's tags the refs name, in order, without repeats; a 400 for any other."""
        if not refs:
            return []
        tags = await repo.list_tags(conn, calendar_id)
        by_id = {t["tag_id"]: t for t in tags}
        by_external = {t["external_id"]: t for t in tags if t["external_id"] is not None}
        found: dict[uuid.UUID, asyncpg.Record] = {}
        for i, ref in enumerate(refs):
            internal = ref.internal_id or ref.id
            if internal:
                name = "internalId" if ref.internal_id else "id"
                tag = by_id.get(_uuid(internal, f"{field_name}[{i}].{name}"))
                what = internal
            else:
                assert ref.external_id is not None
                tag = by_external.get(ref.external_id)
                what = ref.external_id
            if tag is None:
                raise InvalidRequest(
                    f"{field_name}[{i}]: no tag {what[:64]!r} on this calendar", code="InvalidRequestParameter"
                )
            found.setdefault(tag["tag_id"], tag)
        return list(found.values())

    # --- events -----------------------------------------------------------------------------------

    @staticmethod
    async def _write_event(
        conn: asyncpg.Connection,
        existing: asyncpg.Record | None,
        *,
        kind: str,
        account: Account,
        calendar_id: uuid.UUID,
        subscription_id: uuid.UUID | None,
        external_id: str | None,
        fields: dict[str, Any],
        subscription_ids: Sequence[uuid.UUID] = (),
        deleted: bool = False,
    ) -> tuple[EventData, str | None]:
        """Store the event; returns it and what happened ('created', 'updated' or None: no change)."""
        now = _now()
        if existing is None:
            event = EventData(
                event_id=uuid.uuid4(),
                calendar_id=calendar_id,
                account_id=account.account_id,
                external_id=external_id,
                sequence=0,
                changed_at=now,
                created_at=now,
                subscription_ids=list(subscription_ids),
                deleted=deleted,
                **fields,
            )
            row = await repo.insert_event(
                conn,
                event_id=event.event_id,
                kind=kind,
                account_id=account.account_id,
                calendar_id=calendar_id,
                subscription_id=subscription_id,
                external_id=external_id,
                data=event.model_dump(mode="json", by_alias=True),
            )
            if row is None:
                raise _Retry
            return event, "created"
        before = EventData.model_validate(existing["data"])
        candidate = EventData.model_validate(
            {
                **before.model_dump(),
                **fields,
                "calendar_id": calendar_id,
                "subscription_ids": list(subscription_ids),
                "deleted": deleted,
            }
        )
        if candidate.model_dump(mode="json") == before.model_dump(mode="json"):
            return before, None
        event = candidate.model_copy(update={"sequence": existing["sequence"] + 1, "changed_at": now})
        await repo.update_event(
            conn, event.event_id, event.sequence, event.model_dump(mode="json", by_alias=True), deleted=deleted
        )
        return event, "updated"

    async def _calendar_event_fields(
        self, conn: asyncpg.Connection, calendar: asyncpg.Record, body: EventBody
    ) -> dict[str, Any]:
        tags = await self._resolve_tags(conn, calendar["calendar_id"], body.tags, "tags")
        return event_fields(_draft(body), default_timezone=calendar["timezone"], tag_ids=[t["tag_id"] for t in tags])

    async def save_event(self, account: Account, code: str, body: EventBody) -> tuple[EventData, bool]:
        """POST: create the event, or update the one of the same external id; True when created."""

        async def work(conn: asyncpg.Connection) -> tuple[EventData, bool]:
            calendar = await self._calendar(conn, account, code)
            fields = await self._calendar_event_fields(conn, calendar, body)
            key = body.merchant_id
            existing = await repo.calendar_event(conn, calendar["calendar_id"], key, for_update=True) if key else None
            if existing is not None and existing["external_id"] != key:
                existing = None  # the key matched an id, but a POST names events by external id only
            event, change = await self._write_event(
                conn,
                existing,
                kind="calendar",
                account=account,
                calendar_id=calendar["calendar_id"],
                subscription_id=None,
                external_id=key,
                fields=fields,
            )
            if change is not None:
                await self._publish(conn, account, [(f"event.{change}", event)])
            return event, existing is None

        return await self._transaction(work)

    async def _existing_event(
        self, conn: asyncpg.Connection, account: Account, code: str, key: str, *, for_update: bool = False
    ) -> tuple[asyncpg.Record, asyncpg.Record]:
        calendar = await self._calendar(conn, account, code)
        row = await repo.calendar_event(conn, calendar["calendar_id"], key, for_update=for_update)
        if row is None or row["deleted_at"] is not None:
            raise NotFound(f"event '{key[:100]}' not found on calendar '{code[:100]}'", code="EventNotFound")
        return calendar, row

    async def get_event(self, account: Account, code: str, key: str) -> EventData:
        async def work(conn: asyncpg.Connection) -> EventData:
            _, row = await self._existing_event(conn, account, code, key)
            return EventData.model_validate(row["data"])

        return await self._read(work)

    async def list_events(self, account: Account, code: str, *, limit: int, offset: int) -> list[EventData]:
        async def work(conn: asyncpg.Connection) -> list[EventData]:
            calendar = await self._calendar(conn, account, code)
            rows = await repo.list_calendar_events(conn, calendar["calendar_id"], limit=limit, offset=offset)
            return [EventData.model_validate(r["data"]) for r in rows]

        return await self._read(work)

    async def replace_event(
        self, account: Account, code: str, key: str, body_for: Callable[[EventData], EventBody]
    ) -> EventData:
        """PUT and PATCH: `body_for` gives the new body from the stored event (PATCH merges)."""

        async def work(conn: asyncpg.Connection) -> EventData:
            calendar, row = await self._existing_event(conn, account, code, key, for_update=True)
            body = body_for(EventData.model_validate(row["data"]))
            if body.merchant_id is not None and body.merchant_id != row["external_id"]:
                raise InvalidRequest("externalId: an event's external id cannot change")
            fields = await self._calendar_event_fields(conn, calendar, body)
            event, change = await self._write_event(
                conn,
                row,
                kind="calendar",
                account=account,
                calendar_id=calendar["calendar_id"],
                subscription_id=None,
                external_id=row["external_id"],
                fields=fields,
            )
            if change is not None:
                await self._publish(conn, account, [(f"event.{change}", event)])
            return event

        return await self._transaction(work)

    async def delete_event(self, account: Account, code: str, key: str) -> EventData:
        """Cancel the event: status cancelled, sequence raised, published as event.deleted."""

        async def work(conn: asyncpg.Connection) -> EventData:
            calendar, row = await self._existing_event(conn, account, code, key, for_update=True)
            before = EventData.model_validate(row["data"])
            fields = {"status": "cancelled"}
            event, _ = await self._write_event(
                conn,
                row,
                kind="calendar",
                account=account,
                calendar_id=calendar["calendar_id"],
                subscription_id=None,
                external_id=row["external_id"],
                fields={**before.model_dump(include=set(EventData.model_fields) - _IDENTITY), **fields},
                deleted=True,
            )
            await self._publish(conn, account, [("event.deleted", event)])
            return event

        return await self._transaction(work)

    # --- subscriptions ----------------------------------------------------------------------------

    async def _subscription_message(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        calendar: asyncpg.Record,
        account: Account,
        *,
        may_have_events: bool = True,
    ) -> SubscriptionData:
        details = dict(row["details"])
        merchant = await repo.merchant_name(conn, account.account_id, account.account_code)
        tag_ids = [uuid.UUID(t) for t in details.get("tag_ids", [])]
        tags = await repo.tags_by_ids(conn, tag_ids) if tag_ids else []
        # A subscription made just now without manual events has none to look up.
        manual = await repo.manual_events(conn, row["subscription_id"]) if may_have_events else []
        known = set(SubscriptionData.model_fields)
        return SubscriptionData(
            subscription_id=row["subscription_id"],
            account_id=row["account_id"],
            account_code=account.account_code,
            merchant_name=merchant,
            calendar_id=calendar["calendar_id"],
            calendar_code=calendar["code"],
            calendar_title=calendar["name"],
            subscription_type=row["subscription_type"],
            subscriber_id=row["subscriber_id"],
            active=row["active"],
            created_at=row["created_at"],
            deactivated_at=row["deactivated_at"],
            calendar_tags=[
                SubscriptionTag(tag_id=t["tag_id"], tag_text=t["name"], external_id=t["external_id"]) for t in tags
            ],
            feed_username=row["feed_username"],
            feed_password_hash=row["feed_password_hash"],
            events=[EventData.model_validate(m["data"]) for m in manual if m["deleted_at"] is None],
            version=row["version"],
            **{k: v for k, v in details.items() if k in known and k != "tag_ids"},
        )

    async def _event_filters(
        self, conn: asyncpg.Connection, calendar_id: uuid.UUID, ids: Sequence[str], external_ids: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """Those of the ids and external ids that name live events of the calendar (others ignored)."""
        wanted = [u for u in (_maybe_uuid(i) for i in ids) if u is not None]
        rows = await repo.calendar_events_matching(conn, calendar_id, wanted, external_ids)
        found_ids = {r["event_id"] for r in rows}
        found_external = {r["external_id"] for r in rows}
        matched_ids = list(dict.fromkeys(str(u) for u in wanted if u in found_ids))
        matched_external = list(dict.fromkeys(e for e in external_ids if e in found_external))
        return matched_ids, matched_external

    async def _manual_events(
        self,
        conn: asyncpg.Connection,
        account: Account,
        calendar: asyncpg.Record,
        subscription_id: uuid.UUID,
        bodies: Sequence[EventBody],
        fields: Sequence[dict[str, Any]],
    ) -> None:
        for body, event_fields_ in zip(bodies, fields, strict=True):
            assert body.merchant_id is not None
            existing = await repo.manual_event(conn, subscription_id, body.merchant_id)
            await self._write_event(
                conn,
                existing,
                kind="manual",
                account=account,
                calendar_id=calendar["calendar_id"],
                subscription_id=subscription_id,
                external_id=body.merchant_id,
                fields=event_fields_,
                subscription_ids=[subscription_id],
            )

    async def subscribe(self, account: Account, code: str, body: SubscribeBody, *, webcal_only: bool) -> Subscribed:
        kind = "webcal" if webcal_only else subscription_type(body.subscription_method, body.user_agent)
        if kind == "google" and not body.redirect_to:
            raise InvalidRequest("redirectTo: required for a Google subscription")
        subscriber = body.subscriber
        time_zone_tag = require_windows_id(body.time_zone_id, "timeZoneId") if body.time_zone_id else None
        for i, event in enumerate(body.events):
            if not event.merchant_id:
                raise InvalidRequest(f"events[{i}].eventId: an event id is required")

        async def work(conn: asyncpg.Connection) -> Subscribed:
            calendar = await self._calendar(conn, account, code)
            if calendar["protected"] and not subscriber:
                raise InvalidRequest("subscriberId: a protected calendar needs the subscriber's username")
            tags = await self._resolve_tags(conn, calendar["calendar_id"], body.calendar_tags, "calendarTags")
            manual_fields = []
            for i, event in enumerate(body.events):
                event_tags = await self._resolve_tags(conn, calendar["calendar_id"], event.tags, f"events[{i}].tags")
                with _within(f"events[{i}]"):
                    manual_fields.append(
                        event_fields(
                            _draft(event),
                            default_timezone=calendar["timezone"],
                            tag_ids=[t["tag_id"] for t in event_tags],
                        )
                    )
            include_ids, include_external = await self._event_filters(
                conn, calendar["calendar_id"], body.request_event_ids, body.external_event_ids
            )
            details: dict[str, Any] = {
                "action_type": "SubscriptionWithEventsViaWebApi" if body.events else "SubscriptionViaWebApi",
                "tag_ids": [str(t["tag_id"]) for t in tags],
                "time_zone_tag": time_zone_tag,
                "request_event_ids": include_ids,
                "external_event_ids": include_external,
                "email_address": body.email_address,
                "additional_opt_in": body.additional_opt_in,
                "marketing_allowed": body.marketing_allowed,
                "ip_address": body.ip_address,
                "user_agent": body.user_agent,
                "url_referrer": body.referrer,
                "device_name": device_name(body.user_agent),
                "source": referrer_source(body.referrer),
                "utm_source": body.utm_source,
                "utm_medium": body.utm_medium,
                "utm_campaign": body.utm_campaign,
                "utm_content": body.utm_content,
                "redirect_to": body.redirect_to,
                "entered_post_code": body.entered_post_code or body.channel_finder_zip_code,
                "cable_provider": body.cable_provider or body.provider_name,
                "cable_provider_location": body.cable_provider_location or body.provider_location,
            }
            password = new_feed_password() if calendar["protected"] and kind == "webcal" else None
            feed_username = subscriber if password else None
            password_hash = hash_feed_password(password) if password else None
            existing = None
            if subscriber:
                same_type = None if calendar["single_subscription_per_subscriber"] else kind
                existing = await repo.active_subscription_of(conn, calendar["calendar_id"], subscriber, same_type)
            if existing is not None:
                kept = {
                    k: v
                    for k, v in existing["details"].items()
                    if k in ("exclude_request_event_ids", "exclude_external_event_ids")
                }
                row = await repo.save_subscription(
                    conn,
                    existing["subscription_id"],
                    subscription_type=kind,
                    feed_username=feed_username,
                    feed_password_hash=password_hash,
                    details={**details, **kept},
                )
                message_type = "subscription.updated"
            else:
                inserted = await repo.insert_subscription(
                    conn,
                    subscription_id=uuid.uuid4(),
                    account_id=account.account_id,
                    calendar_id=calendar["calendar_id"],
                    subscription_type=kind,
                    subscriber_id=subscriber,
                    feed_username=feed_username,
                    feed_password_hash=password_hash,
                    details=details,
                )
                if inserted is None:
                    raise _Retry
                row = inserted
                message_type = "subscription.created"
            await self._manual_events(conn, account, calendar, row["subscription_id"], body.events, manual_fields)
            message = await self._subscription_message(
                conn, row, calendar, account, may_have_events=existing is not None or bool(body.events)
            )
            await self._publish(conn, account, [(message_type, message)])
            url = None
            if kind == "webcal":
                url = webcal_url(
                    self._public_feed_url, row["subscription_id"], username=feed_username, password=password
                )
            return Subscribed(
                subscription_id=row["subscription_id"],
                subscriber_id=subscriber,
                subscription_type=kind,
                is_new=existing is None,
                subscription_url=url,
                redirect_to=body.redirect_to,
            )

        return await self._transaction(work)

    async def _view(self, conn: asyncpg.Connection, row: asyncpg.Record) -> SubscriptionView:
        calendar = await repo.calendar_by_id(conn, row["calendar_id"])
        assert calendar is not None
        details = row["details"]
        tag_ids = [uuid.UUID(t) for t in details.get("tag_ids", [])]
        tags = await repo.tags_by_ids(conn, tag_ids) if tag_ids else []
        view = SubscriptionView(row=row, calendar=calendar, tags=tags)
        view.included = await repo.calendar_events_matching(
            conn,
            row["calendar_id"],
            [uuid.UUID(i) for i in details.get("request_event_ids", [])],
            details.get("external_event_ids", []),
        )
        view.excluded = await repo.calendar_events_matching(
            conn,
            row["calendar_id"],
            [uuid.UUID(i) for i in details.get("exclude_request_event_ids", [])],
            details.get("exclude_external_event_ids", []),
        )
        view.manual_events = [m["data"] for m in await repo.manual_events(conn, row["subscription_id"])]
        return view

    async def get_subscription(self, account: Account, subscription_id: str) -> SubscriptionView:
        sid = _maybe_uuid(subscription_id)

        async def work(conn: asyncpg.Connection) -> SubscriptionView:
            row = await repo.subscription_by_id(conn, sid) if sid else None
            if row is None or row["account_id"] != account.account_id:
                raise NotFound(f"subscription '{subscription_id[:64]}' not found", code="SubscriptionNotFound")
            return await self._view(conn, row)

        return await self._read(work)

    async def subscriptions_of_username(self, account: Account, code: str, username: str) -> list[SubscriptionView]:
        async def work(conn: asyncpg.Connection) -> list[SubscriptionView]:
            calendar = await self._calendar(conn, account, code)
            rows = await repo.subscriptions_of_username(conn, calendar["calendar_id"], username)
            return [await self._view(conn, r) for r in rows]

        return await self._read(work)

    async def _owned_subscription(
        self, conn: asyncpg.Connection, account: Account, code: str, subscription_id: str, field_name: str
    ) -> tuple[asyncpg.Record, asyncpg.Record]:
        calendar = await self._calendar(conn, account, code)
        sid = _maybe_uuid(subscription_id)
        row = await repo.subscription_by_id(conn, sid, for_update=True) if sid else None
        if row is None or row["calendar_id"] != calendar["calendar_id"]:
            raise NotFound(
                f"{field_name}: subscription '{subscription_id[:64]}' not found on calendar '{code[:100]}'",
                code="SubscriptionNotFound",
            )
        return calendar, row

    async def update_subscription(
        self, account: Account, code: str, subscription_id: str, body: UpdateSubscriptionBody
    ) -> asyncpg.Record:
        given = body.model_fields_set
        time_zone_tag = require_windows_id(body.time_zone_id, "timeZoneId") if body.time_zone_id else None

        async def work(conn: asyncpg.Connection) -> asyncpg.Record:
            calendar, row = await self._owned_subscription(conn, account, code, subscription_id, "subscriptionId")
            if not row["active"]:
                raise Conflict("this subscription has been deactivated", code="SubscriptionInactive")
            details = dict(row["details"])
            calendar_id = calendar["calendar_id"]
            if "calendar_tags" in given:
                tags = await self._resolve_tags(conn, calendar_id, body.calendar_tags or [], "calendarTags")
                details["tag_ids"] = [str(t["tag_id"]) for t in tags]
            if "time_zone_id" in given:
                details["time_zone_tag"] = time_zone_tag
            for ids_name, external_name, given_external in (
                ("request_event_ids", "external_event_ids", body.external_event_ids),
                (
                    "exclude_request_event_ids",
                    "exclude_external_event_ids",
                    body.exclude_external_event_ids or body.exclud_external_event_ids,
                ),
            ):
                external_given = external_name in given or (
                    external_name == "exclude_external_event_ids" and "exclud_external_event_ids" in given
                )
                if ids_name in given or external_given:
                    ids, external = await self._event_filters(
                        conn,
                        calendar_id,
                        getattr(body, ids_name) or [] if ids_name in given else details.get(ids_name, []),
                        (given_external or []) if external_given else details.get(external_name, []),
                    )
                    details[ids_name], details[external_name] = ids, external
            for name in ("marketing_allowed", "additional_opt_in", "email_address", "redirect_to"):
                if name in given:
                    details[name] = getattr(body, name)
            if details == row["details"]:
                return row
            saved = await repo.save_subscription(
                conn,
                row["subscription_id"],
                subscription_type=row["subscription_type"],
                feed_username=row["feed_username"],
                feed_password_hash=row["feed_password_hash"],
                details=details,
            )
            message = await self._subscription_message(conn, saved, calendar, account)
            await self._publish(conn, account, [("subscription.updated", message)])
            return saved

        return await self._transaction(work)

    async def _deactivate(
        self,
        conn: asyncpg.Connection,
        account: Account,
        calendar: asyncpg.Record,
        row: asyncpg.Record,
        action_type: str,
        reason: str | None = None,
    ) -> asyncpg.Record:
        if not row["active"]:
            return row
        details = {**row["details"], "action_type": action_type, "unsubscribe_reason": reason}
        saved = await repo.deactivate_subscription(conn, row["subscription_id"], details)
        message = await self._subscription_message(conn, saved, calendar, account)
        await self._publish(conn, account, [("subscription.deactivated", message)])
        return saved

    async def deactivate(self, account: Account, code: str, body: DeactivateBody) -> list[asyncpg.Record]:
        async def work(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            if body.id:
                calendar, row = await self._owned_subscription(conn, account, code, body.id, "id")
                return [await self._deactivate(conn, account, calendar, row, "DeactivatedById")]
            assert body.username is not None
            calendar = await self._calendar(conn, account, code)
            rows = await repo.subscriptions_of_username(conn, calendar["calendar_id"], body.username)
            if not rows:
                raise NotFound(
                    f"username: no subscription of '{body.username[:64]}' on calendar '{code[:100]}'",
                    code="SubscriptionNotFound",
                )
            active = [r for r in rows if r["active"]]
            return [await self._deactivate(conn, account, calendar, r, "DeactivatedByUsername") for r in active]

        return await self._transaction(work)

    # --- the subscriber's unsubscribe page (no token: the subscription id is the capability) ------

    async def subscription_for_page(self, subscription_id: str) -> tuple[asyncpg.Record, asyncpg.Record, str] | None:
        """The subscription, its calendar and the merchant's name; None when there is no such one."""
        sid = _maybe_uuid(subscription_id)
        if sid is None:
            return None

        async def work(conn: asyncpg.Connection) -> tuple[asyncpg.Record, asyncpg.Record, str] | None:
            row = await repo.subscription_by_id(conn, sid)
            if row is None:
                return None
            calendar = await repo.calendar_by_id(conn, row["calendar_id"])
            account = await repo.account_of(conn, row["account_id"])
            assert calendar is not None and account is not None
            return row, calendar, account["name"] or account["account_code"]

        return await self._read(work)

    async def unsubscribe(self, subscription_id: str, reason: str | None) -> tuple[asyncpg.Record, asyncpg.Record]:
        sid = _maybe_uuid(subscription_id)
        if sid is None:
            raise NotFound("subscription not found", code="SubscriptionNotFound")

        async def work(conn: asyncpg.Connection) -> tuple[asyncpg.Record, asyncpg.Record]:
            row = await repo.subscription_by_id(conn, sid, for_update=True)
            if row is None:
                raise NotFound("subscription not found", code="SubscriptionNotFound")
            calendar = await repo.calendar_by_id(conn, row["calendar_id"])
            assert calendar is not None
            owner = await repo.account_of(conn, row["account_id"])
            assert owner is not None  # every subscription's account row is made when it is created
            account = Account(row["account_id"], owner["account_code"])
            saved = await self._deactivate(conn, account, calendar, row, "UnsubscribeUserAction", reason)
            return saved, calendar

        return await self._transaction(work)

    # --- subscription events ----------------------------------------------------------------------

    async def accept_subscription_event(self, account: Account, body: SubscriptionEventBody) -> EventData | None:
        """Validate at once, then store the event for the listed subscriptions of this account
        (others ignored) and publish it; None when no listed subscription is the account's."""
        event = body.event
        if not event.merchant_id:
            raise InvalidRequest("event.eventId: an event id is required")
        if event.tags:
            raise InvalidRequest("event.tags: a subscription event carries no calendar tags")
        wanted = [_uuid(s, f"subscriptionIds[{i}]") for i, s in enumerate(body.subscription_ids)]
        # Validated before anything is looked up, so a bad event is a 400 whatever the ids are.
        with _within("event"):
            event_fields(_draft(event), default_timezone="UTC", tag_ids=[])

        async def work(conn: asyncpg.Connection) -> EventData | None:
            owned = [r for r in await repo.subscriptions_of_account(conn, account.account_id, wanted) if r["active"]]
            assert event.merchant_id is not None
            existing = await repo.subscription_event(conn, account.account_id, event.merchant_id)
            if not owned and existing is None:
                return None
            before = EventData.model_validate(existing["data"]) if existing is not None else None
            calendar_id = owned[0]["calendar_id"] if owned or before is None else before.calendar_id
            calendar = await repo.calendar_by_id(conn, calendar_id)
            assert calendar is not None
            with _within("event"):
                fields = event_fields(_draft(event), default_timezone=calendar["timezone"], tag_ids=[])
            earlier = before.subscription_ids if before is not None else []
            targets = list(dict.fromkeys([*earlier, *(r["subscription_id"] for r in owned)]))
            stored, change = await self._write_event(
                conn,
                existing,
                kind="subscription",
                account=account,
                calendar_id=calendar_id,
                subscription_id=None,
                external_id=event.merchant_id,
                fields=fields,
                subscription_ids=targets,
            )
            if change is not None:
                accepted = SubscriptionEventAccepted(event=stored, subscription_ids=targets)
                await self._publish(conn, account, [("subscription_event.accepted", accepted)])
            return stored

        return await self._transaction(work)


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
