"""Catalog use-cases: calendars, tags and events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from services.ingest.adapters import repository as repo
from services.ingest.adapters import tags as tags_repo
from services.ingest.api.schemas import (
    CalendarBody,
    EventBody,
    SubscribePageBody,
    TagBody,
    TagRef,
)
from services.ingest.domain.calendars import refresh_interval
from services.ingest.domain.events import event_fields
from services.ingest.domain.timezones import to_iana
from services.ingest.services._base import _IDENTITY, Account, UseCaseBase, _draft, _now, _Retry, _uuid
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.messages import (
    AttendeeReplied,
    CalendarData,
    CalendarDeleted,
    EventData,
    TagData,
    TagDeleted,
)


class CatalogUseCases(UseCaseBase):
    """Catalog use-cases: calendars, tags and events."""

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
        if "subscribe_page" in body.model_fields_set:
            page = body.subscribe_page or SubscribePageBody()
            values["subscribe_page"] = page.model_dump(by_alias=True)
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

    async def account_by_code(self, account_code: str) -> Account:
        """The account a platform token acts for (a calendar page); NotFound when ingest knows none."""
        row = await self._read(lambda conn: repo.account_by_code(conn, account_code))
        if row is None:
            raise NotFound(f"account '{account_code[:64]}' not found", code="AccountNotFound")
        return Account(row["account_id"], row["account_code"])

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
                existing = await tags_repo.tag_by_external_id(conn, calendar["calendar_id"], body.external_id)
                if existing is not None:
                    return await self._renamed(conn, account, existing, body.name), False
            created = await tags_repo.insert_tag(
                conn, calendar["calendar_id"], account.account_id, body.name, body.external_id
            )
            if created is None:
                raise _Retry
            await self._publish(conn, account, [("tag.created", self.tag_message(created))])
            return created, True

        return await self._transaction(work)

    async def _renamed(
        self, conn: asyncpg.Connection, account: Account, existing: asyncpg.Record, name: str
    ) -> asyncpg.Record:
        """The tag under `name`: unchanged (no message) when it has it already, else renamed and announced."""
        if existing["name"] == name:
            return existing
        row = await tags_repo.rename_tag(conn, existing["tag_id"], name)
        await self._publish(conn, account, [("tag.updated", self.tag_message(row))])
        return row

    async def _existing_tag(
        self, conn: asyncpg.Connection, account: Account, code: str, key: str
    ) -> tuple[asyncpg.Record, asyncpg.Record]:
        calendar = await self._calendar(conn, account, code)
        row = await tags_repo.calendar_tag(conn, calendar["calendar_id"], key)
        if row is None:
            raise NotFound(f"tag '{key[:100]}' not found on calendar '{code[:100]}'", code="TagNotFound")
        return calendar, row

    async def rename_tag(self, account: Account, code: str, key: str, name: str) -> asyncpg.Record:
        """The tag by id or external id, renamed (feeds and pages show the new name)."""

        async def work(conn: asyncpg.Connection) -> asyncpg.Record:
            _, existing = await self._existing_tag(conn, account, code, key)
            return await self._renamed(conn, account, existing, name)

        return await self._transaction(work)

    async def delete_tag(self, account: Account, code: str, key: str) -> None:
        """Delete a tag no live event and no active subscription names; a 409 saying how many do."""

        async def work(conn: asyncpg.Connection) -> None:
            calendar, existing = await self._existing_tag(conn, account, code, key)
            events, subscriptions = await tags_repo.tag_usage(conn, calendar["calendar_id"], existing["tag_id"])
            if events or subscriptions:
                raise Conflict(
                    f"tag '{existing['name'][:100]}' is on {events} event(s) and in the filter of {subscriptions}"
                    " active subscription(s); take it off them (or cancel them) first",
                    code="TagInUse",
                )
            row = await tags_repo.delete_tag(conn, existing["tag_id"])
            deleted = TagDeleted(
                tag_id=row["tag_id"],
                calendar_id=row["calendar_id"],
                version=row["deleted_version"],
                changed_at=row["deleted_at"],
            )
            await self._publish(conn, account, [("tag.deleted", deleted)])

        await self._transaction(work)

    async def list_tags(self, account: Account, code: str) -> list[asyncpg.Record]:
        async def work(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            calendar = await self._calendar(conn, account, code)
            return await tags_repo.list_tags(conn, calendar["calendar_id"])

        return await self._read(work)

    @staticmethod
    async def _resolve_tags(
        conn: asyncpg.Connection, calendar_id: uuid.UUID, refs: Sequence[TagRef], field_name: str
    ) -> list[asyncpg.Record]:
        """The calendar's tags the refs name, in order, without repeats; a 400 for any other."""
        if not refs:
            return []
        tags = await tags_repo.list_tags(conn, calendar_id)
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

    async def _check_calendar_room(self, conn: asyncpg.Connection, calendar: asyncpg.Record) -> None:
        """400 when the calendar already holds its cap of live events (counted under its row lock)."""
        await repo.lock_calendar(conn, calendar["calendar_id"])
        limit = self._limits.events_per_calendar
        held = await repo.count_calendar_events(conn, calendar["calendar_id"])
        if held >= limit:
            raise InvalidRequest(
                f"eventId: calendar '{calendar['code']}' holds {held} events, the most one calendar may hold is"
                f" {limit}; delete events that are over, or update an existing one by its eventId",
                code="InvalidRequestParameter",
            )

    async def save_event(
        self, account: Account, code: str, body: EventBody, *, attendees_hidden: bool = False
    ) -> tuple[EventData, bool]:
        """POST: create the event, or update the one of the same external id; True when created.
        `attendees_hidden`: each attendee's invitation lists only them (EventData.attendees_hidden)."""

        async def work(conn: asyncpg.Connection) -> tuple[EventData, bool]:
            calendar = await self._calendar(conn, account, code)
            fields = await self._calendar_event_fields(conn, calendar, body)
            if attendees_hidden:
                fields["attendees_hidden"] = True
            key = body.merchant_id
            existing = await repo.calendar_event(conn, calendar["calendar_id"], key, for_update=True) if key else None
            if existing is not None and existing["external_id"] != key:
                existing = None  # the key matched an id, but a POST names events by external id only
            if existing is None:
                await self._check_calendar_room(conn, calendar)
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

    async def apply_reply(self, conn: asyncpg.Connection, replied: AttendeeReplied) -> EventData | None:
        """An attendee's answer (in the consumer's transaction): their PARTSTAT on the event,
        published as event.updated. An unknown event or attendee, or the same answer again, changes nothing."""
        if replied.event_id is None:
            return None
        row = await conn.fetchrow(
            f"SELECT * FROM {repo.SCHEMA}.events WHERE event_id = $1 AND account_id = $2 FOR UPDATE",
            replied.event_id,
            replied.account_id,
        )
        if row is None or row["deleted_at"] is not None:
            return None
        before = EventData.model_validate(row["data"])
        who = replied.attendee_email.lower()
        if not any(p.email.lower() == who for p in before.attendees):
            return None
        attendees = [
            p.model_copy(update={"partstat": replied.partstat}) if p.email.lower() == who else p
            for p in before.attendees
        ]
        event, change = await self._write_event(
            conn,
            row,
            kind=row["kind"],
            account=Account(row["account_id"], ""),
            calendar_id=row["calendar_id"],
            subscription_id=row["subscription_id"],
            external_id=row["external_id"],
            fields={"attendees": [p.model_dump() for p in attendees]},
            subscription_ids=before.subscription_ids,
        )
        if change is not None:
            await self._publish(conn, Account(row["account_id"], ""), [("event.updated", event)])
        return event
