"""Subscription events (seed 002): one event for a list of subscriptions."""

from __future__ import annotations

import asyncpg

from services.ingest.adapters import repository as repo
from services.ingest.api.schemas import (
    SubscriptionEventBody,
)
from services.ingest.domain.events import event_fields
from services.ingest.services._base import Account, _draft, _uuid, _within
from services.ingest.services.subscriptions import SubscriptionUseCases
from shared.errors import InvalidRequest
from shared.messages import (
    EventData,
    SubscriptionEventAccepted,
)


class SubscriptionEventUseCases(SubscriptionUseCases):
    """Subscription events (seed 002): one event for a list of subscriptions."""

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
