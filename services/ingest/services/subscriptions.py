"""Subscription use-cases: read, update, deactivate, and the subscriber's unsubscribe page (subscribe is in
`subscribing`)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.ingest.adapters import repository as repo
from services.ingest.adapters import tags as tags_repo
from services.ingest.api.schemas import (
    DeactivateBody,
    UpdateSubscriptionBody,
)
from services.ingest.domain.timezones import require_windows_id
from services.ingest.services._base import Account, SubscriptionView, _maybe_uuid
from services.ingest.services.subscribing import SubscribeUseCases
from shared.errors import Conflict, NotFound
from shared.messages import (
    PushStopped,
)

# The details that name events of the calendar to include or exclude; a read looks them up only when set.
_FILTER_KEYS = ("request_event_ids", "external_event_ids", "exclude_request_event_ids", "exclude_external_event_ids")


class SubscriptionUseCases(SubscribeUseCases):
    """Subscription use-cases: subscribe, read, update, deactivate, and the subscriber's unsubscribe page."""

    @staticmethod
    async def _filter_events(
        conn: asyncpg.Connection, calendar_id: uuid.UUID, details: dict[str, Any]
    ) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
        """The live calendar events the subscription's include and exclude filters name."""
        included = await repo.calendar_events_matching(
            conn,
            calendar_id,
            [uuid.UUID(i) for i in details.get("request_event_ids", [])],
            details.get("external_event_ids", []),
        )
        excluded = await repo.calendar_events_matching(
            conn,
            calendar_id,
            [uuid.UUID(i) for i in details.get("exclude_request_event_ids", [])],
            details.get("exclude_external_event_ids", []),
        )
        return included, excluded

    async def _view(self, conn: asyncpg.Connection, row: asyncpg.Record) -> SubscriptionView:
        calendar = await repo.calendar_by_id(conn, row["calendar_id"])
        assert calendar is not None
        details = row["details"]
        tag_ids = [uuid.UUID(t) for t in details.get("tag_ids", [])]
        tags = await tags_repo.tags_by_ids(conn, tag_ids) if tag_ids else []
        view = SubscriptionView(row=row, calendar=calendar, tags=tags)
        view.included, view.excluded = await self._filter_events(conn, row["calendar_id"], details)
        view.manual_events = [m["data"] for m in await repo.manual_events(conn, row["subscription_id"])]
        return view

    async def get_subscription(self, account: Account, subscription_id: str) -> SubscriptionView:
        """One statement reads the subscription, its calendar, tags and manual events; the event
        filters are looked up only when it has any."""
        sid = _maybe_uuid(subscription_id)

        row = await self._subscription_reads(sid) if sid else None
        if row is None or row["account_id"] != account.account_id:
            raise NotFound(f"subscription '{subscription_id[:64]}' not found", code="SubscriptionNotFound")
        calendar = {"code": row["calendar_code"], "name": row["calendar_name"], "image": row["calendar_image"]}
        view = SubscriptionView(row=row, calendar=calendar, tags=row["tags"])
        view.manual_events = row["manual"]
        details = row["details"]
        if any(details.get(k) for k in _FILTER_KEYS):
            view.included, view.excluded = await self._read(
                lambda conn: self._filter_events(conn, row["calendar_id"], details)
            )
        return view

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

    async def stop_pushed(self, conn: asyncpg.Connection, stopped: PushStopped) -> None:
        """sync gave up on a pushed subscription: deactivate it with sync's reason (in the consumer's
        transaction; an inactive or unknown subscription is left as it is)."""
        row = await repo.subscription_by_id(conn, stopped.subscription_id, for_update=True)
        if row is None or not row["active"]:
            return
        calendar = await repo.calendar_by_id(conn, row["calendar_id"])
        owner = await repo.account_of(conn, row["account_id"])
        assert calendar is not None and owner is not None
        account = Account(row["account_id"], owner["account_code"])
        await self._deactivate(
            conn, account, calendar, row, "DeactivatedByProvider", f"{stopped.code}: {stopped.reason}"
        )
