"""A subscriber's manual events: bounded per subscription, each published on its own when it changes.

Each manual event travels as `event.created` / `event.updated` with `subscriptionIds` naming its one
subscription, and only when it changed; subscription messages no longer carry them, so a message's
size does not grow with what the subscriber holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from services.ingest.adapters import repository as repo
from services.ingest.api.schemas import EventBody
from services.ingest.services._base import Account
from services.ingest.services.catalog import CatalogUseCases
from shared.errors import InvalidRequest
from shared.messages import EventData


class ManualEventUseCases(CatalogUseCases):
    """Writing a subscription's manual events and checking what one subscription may hold."""

    def _check_manual_count(self, bodies: Sequence[EventBody]) -> None:
        """A request that alone holds more manual events than a subscription may: 400 before any lookup."""
        limit = self._limits.manual_events_per_subscription
        distinct = len({b.merchant_id for b in bodies})
        if distinct > limit:
            raise InvalidRequest(
                f"events: a subscription holds at most {limit} manual events; this request has {distinct}",
                code="InvalidRequestParameter",
            )

    async def _check_manual_room(
        self, conn: asyncpg.Connection, subscription_id: uuid.UUID | None, bodies: Sequence[EventBody]
    ) -> None:
        """400 when the subscription's live manual events plus the new ones exceed the limit."""
        limit = self._limits.manual_events_per_subscription
        held = await repo.manual_event_ids(conn, subscription_id) if subscription_id is not None else set()
        new = {b.merchant_id for b in bodies} - held
        if len(held) + len(new) > limit:
            raise InvalidRequest(
                f"events: a subscription holds at most {limit} manual events; this one has {len(held)}"
                f" and the request adds {len(new)} new ones (re-sending an existing eventId updates it)",
                code="InvalidRequestParameter",
            )

    async def _manual_events(
        self,
        conn: asyncpg.Connection,
        account: Account,
        calendar: asyncpg.Record,
        subscription_id: uuid.UUID,
        bodies: Sequence[EventBody],
        fields: Sequence[dict[str, Any]],
    ) -> list[tuple[str, EventData]]:
        """Store the manual events; returns the messages of those that changed."""
        messages: list[tuple[str, EventData]] = []
        for body, event_fields_ in zip(bodies, fields, strict=True):
            assert body.merchant_id is not None
            existing = await repo.manual_event(conn, subscription_id, body.merchant_id)
            event, change = await self._write_event(
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
            if change is not None:
                messages.append((f"event.{change}", event))
        return messages
