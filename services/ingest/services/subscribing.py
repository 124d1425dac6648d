"""The subscribe use-case (seed 002's Create New Subscription) and the subscription message.

A new subscriber, the common case, costs two statements, each shared with concurrent requests
(shared.grouping): one finds the calendar, the merchant's name and any active subscription of the
subscriber (subscription_queries.subscribe_targets, grouped), and one inserts the subscription together with
its outbox row (atomic on its own; subscription_queries.NewSubscriptionWriter: one commit for many).
Everything else (an existing subscription to update, manual events, CalDAV, a concurrent insert of
the same subscriber) takes the general path: one transaction that locks the existing subscription
while it rewrites it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from services.ingest.adapters import repository as repo
from services.ingest.adapters import subscription_queries as queries
from services.ingest.adapters import tags as tags_repo
from services.ingest.adapters.credentials import store_feed_credentials
from services.ingest.adapters.sync_client import CalDavConnection
from services.ingest.api.schemas import SubscribeBody
from services.ingest.domain.credentials import for_subscribe
from services.ingest.domain.events import event_fields
from services.ingest.domain.subscriptions import device_name, referrer_source, subscription_type, webcal_url
from services.ingest.domain.timezones import require_windows_id
from services.ingest.services._base import Account, Subscribed, _draft, _maybe_uuid, _now, _Retry, _within
from services.ingest.services.manual_events import ManualEventUseCases
from shared.errors import InvalidRequest, NotFound, ServiceUnavailable
from shared.messages import SubscriptionData, SubscriptionTag, make_envelope

_MESSAGE_FIELDS = frozenset(SubscriptionData.model_fields)


def subscription_message(
    row: Mapping[str, Any],
    calendar: Mapping[str, Any],
    account: Account,
    merchant: str,
    tags: Sequence[Mapping[str, Any]],
) -> SubscriptionData:
    """The subscription as its messages carry it, from its row, its calendar and its tags' rows."""
    details = row["details"]
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
        **{k: v for k, v in details.items() if k in _MESSAGE_FIELDS and k != "tag_ids"},
    )


def _details(
    body: SubscribeBody,
    time_zone_tag: str | None,
    tags: Sequence[Mapping[str, Any]],
    include: tuple[list[str], list[str]],
    country: dict[str, str],
) -> dict[str, Any]:
    """What a subscribe stores in the subscription's `details`: filters, opt-ins and analytics."""
    details: dict[str, Any] = {
        "action_type": body.action_type
        or ("SubscriptionWithEventsViaWebApi" if body.events else "SubscriptionViaWebApi"),
        "tag_ids": [str(t["tag_id"]) for t in tags],
        "time_zone_tag": time_zone_tag,
        "request_event_ids": include[0],
        "external_event_ids": include[1],
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
    details.update({**body.extras(), **country})
    return details


class SubscribeUseCases(ManualEventUseCases):
    """Creating (or re-creating) a subscription, and the message every subscription change sends."""

    async def _subscription_message(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        calendar: asyncpg.Record,
        account: Account,
    ) -> SubscriptionData:
        merchant = await repo.merchant_name(conn, account.account_id, account.account_code)
        tag_ids = [uuid.UUID(t) for t in row["details"].get("tag_ids", [])]
        tags = await tags_repo.tags_by_ids(conn, tag_ids) if tag_ids else []
        return subscription_message(row, calendar, account, merchant, tags)

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

    def _webcal_url(
        self, kind: str, subscription_id: uuid.UUID, username: str | None, password: str | None
    ) -> str | None:
        if kind == "google":
            return None
        return webcal_url(self._public_feed_url, subscription_id, username=username, password=password)

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
        time_zone_tag = require_windows_id(body.time_zone_id, "timeZoneId") if body.time_zone_id else None
        for i, event in enumerate(body.events):
            if not event.merchant_id:
                raise InvalidRequest(f"events[{i}].eventId: an event id is required")
        self._check_manual_count(body.events)
        if not body.events and kind != "caldav":
            created = await self._subscribe_new(account, code, body, kind, time_zone_tag)
            if created is not None:
                return created
        return await self._subscribe_any(account, code, body, kind, time_zone_tag, authorization)

    async def _subscribe_new(
        self, account: Account, code: str, body: SubscribeBody, kind: str, time_zone_tag: str | None
    ) -> Subscribed | None:
        """A new subscription in two statements; None when the subscriber has one already (or got one
        while this ran): the general path then updates that one."""
        subscriber = body.subscriber
        target = queries.SubscribeTarget(account.account_id, account.account_code, code, subscriber, kind)
        calendar = await self._subscribe_targets(target)
        if calendar is None:
            raise NotFound(f"calendar '{code[:100]}' not found", code="CalendarNotFound")
        if calendar["protected"] and not subscriber:
            raise InvalidRequest("subscriberId: a protected calendar needs the subscriber's username")
        if calendar["existing_id"] is not None:
            return None
        tags: list[asyncpg.Record] = []
        include: tuple[list[str], list[str]] = ([], [])
        if body.calendar_tags or body.request_event_ids or body.external_event_ids:
            async with self._pool.acquire() as conn:
                tags = await self._resolve_tags(conn, calendar["calendar_id"], body.calendar_tags, "calendarTags")
                include = await self._event_filters(
                    conn, calendar["calendar_id"], body.request_event_ids, body.external_event_ids
                )
        details = _details(body, time_zone_tag, tags, include, self._country(body.ip_address))
        credentials = for_subscribe(
            self._secrets,
            protected=calendar["protected"],
            subscription_type=kind,
            subscriber=subscriber,
            existing=None,
        )
        row: dict[str, Any] = {
            "subscription_id": uuid.uuid4(),
            "account_id": account.account_id,
            "subscription_type": kind,
            "subscriber_id": subscriber,
            "active": kind != "google",  # a Google subscription is active once the user consented
            "created_at": _now(),
            "deactivated_at": None,
            "feed_username": credentials.username,
            "feed_password_hash": credentials.password_hash,
            "version": 1,
            "details": details,
        }
        merchant = calendar["merchant_name"] or account.account_code
        message = subscription_message(row, calendar, account, merchant, tags)
        # A Google subscription is announced once the user consented; until then it is pending.
        envelopes = (
            [make_envelope("subscription.created", message, account_id=account.account_id)] if row["active"] else []
        )
        # The connection is back in the pool: the writer groups concurrent requests' inserts on a
        # connection of its own, and a request must not hold one of the pool's while it waits.
        inserted = await self._new_subscriptions.insert(
            queries.NewSubscription(
                subscription_id=row["subscription_id"],
                account_id=account.account_id,
                calendar_id=calendar["calendar_id"],
                subscription_type=kind,
                subscriber_id=subscriber,
                feed_username=credentials.username,
                feed_password_hash=credentials.password_hash,
                feed_password_encrypted=credentials.password_encrypted,
                details=details,
                active=row["active"],
                created_at=row["created_at"],
                envelopes=envelopes,
            )
        )
        if not inserted:
            return None
        return Subscribed(
            subscription_id=row["subscription_id"],
            subscriber_id=subscriber,
            subscription_type=kind,
            is_new=True,
            subscription_url=self._webcal_url(kind, row["subscription_id"], credentials.username, credentials.password),
            redirect_to=body.redirect_to,
            pending=None if row["active"] else message,
        )

    async def _subscribe_any(
        self,
        account: Account,
        code: str,
        body: SubscribeBody,
        kind: str,
        time_zone_tag: str | None,
        authorization: str | None,
    ) -> Subscribed:
        # Connected once, after every other check passed, even if the transaction is retried.
        caldav: list[CalDavConnection] = []
        subscriber = body.subscriber

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
            include = await self._event_filters(
                conn, calendar["calendar_id"], body.request_event_ids, body.external_event_ids
            )
            details = _details(body, time_zone_tag, tags, include, self._country(body.ip_address))
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
            return Subscribed(
                subscription_id=row["subscription_id"],
                subscriber_id=subscriber,
                subscription_type=kind,
                is_new=existing is None,
                subscription_url=self._webcal_url(
                    kind, row["subscription_id"], credentials.username, credentials.password
                ),
                redirect_to=body.redirect_to,
                calendar_url=caldav[0].calendar_url if caldav else None,
                pending=message if pending else None,
            )

        return await self._transaction(work)
