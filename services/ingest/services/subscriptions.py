"""Subscription use-cases: subscribe, read, update, deactivate, and the subscriber's unsubscribe page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from services.ingest.adapters import repository as repo
from services.ingest.adapters.credentials import store_feed_credentials
from services.ingest.adapters.sync_client import CalDavConnection
from services.ingest.api.schemas import (
    DeactivateBody,
    SubscribeBody,
    UpdateSubscriptionBody,
)
from services.ingest.domain.credentials import for_subscribe
from services.ingest.domain.events import event_fields
from services.ingest.domain.subscriptions import (
    device_name,
    referrer_source,
    subscription_type,
    webcal_url,
)
from services.ingest.domain.timezones import require_windows_id
from services.ingest.services._base import Account, Subscribed, SubscriptionView, _draft, _maybe_uuid, _Retry, _within
from services.ingest.services.manual_events import ManualEventUseCases
from shared.errors import Conflict, InvalidRequest, NotFound, ServiceUnavailable
from shared.messages import (
    PushStopped,
    SubscriptionData,
    SubscriptionTag,
)


class SubscriptionUseCases(ManualEventUseCases):
    """Subscription use-cases: subscribe, read, update, deactivate, and the subscriber's unsubscribe page."""

    # --- subscriptions ----------------------------------------------------------------------------

    async def _subscription_message(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        calendar: asyncpg.Record,
        account: Account,
    ) -> SubscriptionData:
        details = dict(row["details"])
        merchant = await repo.merchant_name(conn, account.account_id, account.account_code)
        tag_ids = [uuid.UUID(t) for t in details.get("tag_ids", [])]
        tags = await repo.tags_by_ids(conn, tag_ids) if tag_ids else []
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

    async def _connect_caldav(
        self, account: Account, calendar: asyncpg.Record, body: SubscribeBody, authorization: str | None
    ) -> CalDavConnection:
        """sync discovers the subscriber's server, makes the collection and keeps the credentials."""
        assert body.caldav is not None
        if self._sync is None or authorization is None:
            raise ServiceUnavailable("CalDAV subscriptions are not available on this deployment")
        return await self._sync.connect_caldav(
            authorization,
            account.account_code,
            {
                "url": body.caldav.url,
                "username": body.caldav.username,
                "password": body.caldav.password,
                "calendarId": str(calendar["calendar_id"]),
                "name": calendar["name"],
                "description": calendar["description"] or "",
                "color": calendar["color"],
                "timezone": calendar["timezone"] or "UTC",
            },
        )

    async def subscribe(
        self,
        account: Account,
        code: str,
        body: SubscribeBody,
        *,
        webcal_only: bool,
        authorization: str | None = None,
    ) -> Subscribed:
        kind = "webcal" if webcal_only else subscription_type(body.subscription_method, body.user_agent)
        if kind == "google" and not body.redirect_to:
            raise InvalidRequest("redirectTo: required for a Google subscription")
        if kind == "caldav" and body.caldav is None:
            raise InvalidRequest(
                "caldav: the subscriber's CalDAV server is required with subscriptionMethod CalDAV:"
                ' {"url", "username", "password"} (an app password)'
            )
        # Connected once, after every other check passed, even if the transaction is retried.
        caldav: list[CalDavConnection] = []
        subscriber = body.subscriber
        time_zone_tag = require_windows_id(body.time_zone_id, "timeZoneId") if body.time_zone_id else None
        for i, event in enumerate(body.events):
            if not event.merchant_id:
                raise InvalidRequest(f"events[{i}].eventId: an event id is required")
        self._check_manual_count(body.events)

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
            details.update({**body.extras(), **self._country(body.ip_address)})
            if kind == "caldav":
                if not caldav:
                    caldav.append(await self._connect_caldav(account, calendar, body, authorization))
                details["sync_connection_id"] = str(caldav[0].connection_id)
                details["sync_calendar_url"] = caldav[0].calendar_url
            existing = None
            if subscriber:
                same_type = None if calendar["single_subscription_per_subscriber"] else kind
                existing = await repo.active_subscription_of(conn, calendar["calendar_id"], subscriber, same_type)
            if existing is not None and body.events:
                await self._check_manual_room(conn, existing["subscription_id"], body.events)
            credentials = for_subscribe(
                self._secrets,
                protected=calendar["protected"],
                subscription_type=kind,
                subscriber=subscriber,
                existing=existing,
            )
            feed_username, password_hash = credentials.username, credentials.password_hash
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
                    active=kind != "google",  # a Google subscription is active once the user consented
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
            if credentials.issued or row["feed_password_encrypted"]:
                row = await store_feed_credentials(conn, row["subscription_id"], credentials, new_version=False)
            manual = await self._manual_events(
                conn, account, calendar, row["subscription_id"], body.events, manual_fields
            )
            message = await self._subscription_message(conn, row, calendar, account)
            pending = not row["active"]  # a Google subscription is announced once the user consented
            await self._publish(conn, account, [*([] if pending else [(message_type, message)]), *manual])
            url = None
            if kind != "google":
                url = webcal_url(
                    self._public_feed_url,
                    row["subscription_id"],
                    username=credentials.username,
                    password=credentials.password,
                )
            return Subscribed(
                subscription_id=row["subscription_id"],
                subscriber_id=subscriber,
                subscription_type=kind,
                is_new=existing is None,
                subscription_url=url,
                redirect_to=body.redirect_to,
                calendar_url=caldav[0].calendar_url if caldav else None,
                pending=message if pending else None,
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
