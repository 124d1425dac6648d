"""The webhook use-cases: endpoint admin, events into deliveries, one attempt, the operator's record.

Each use-case owns its transaction (or, for the consumer's handler, runs in the consumer's).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from services.webhook.adapters import repository as repo
from services.webhook.adapters.sender import UnsafeDestination, check_destination
from services.webhook.domain import payloads
from services.webhook.domain.signing import new_secret
from services.webhook.messaging.timers import due_envelope
from shared import outbox
from shared.consumer import Handler
from shared.crypto import SecretBox
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.logging import get_logger
from shared.messages import AttendeeReplied, Envelope, SubscriptionData, typed_envelope

log = get_logger(__name__)

MAX_ENDPOINTS_PER_ACCOUNT = 50
MAX_URL_LENGTH = 2048
DEFAULT_ROTATION_GRACE = timedelta(hours=24)


# --- endpoints ---------------------------------------------------------------------------------


def normalise_event_types(requested: Sequence[str] | None) -> list[str]:
    """`["subscribe"]` -> `["Subscribe"]`; None means every type."""
    if requested is None:
        return list(payloads.EVENT_TYPES)
    known = {name.lower(): name for name in payloads.EVENT_TYPES}
    chosen: list[str] = []
    for name in requested:
        canonical = known.get(str(name).strip().lower())
        if canonical is None:
            raise InvalidRequest(f"eventTypes: unknown event type {name!r}; use {', '.join(payloads.EVENT_TYPES)}")
        if canonical not in chosen:
            chosen.append(canonical)
    if not chosen:
        raise InvalidRequest(f"eventTypes: choose at least one of {', '.join(payloads.EVENT_TYPES)}")
    return chosen


async def validate_url(url: str, *, allow_private: bool) -> str:
    url = url.strip()
    if not url:
        raise InvalidRequest("url: is required")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"url: must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"url: is not a valid URL ({exc})") from None
    schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme.lower() not in schemes:
        raise InvalidRequest("url: must be an https:// URL" if not allow_private else "url: must be http(s)://")
    if not parts.hostname or any(ch.isspace() for ch in url):
        raise InvalidRequest("url: must name a host, without spaces")
    if not allow_private:
        try:
            await check_destination(parts.hostname, port or 443)
        except UnsafeDestination as exc:
            raise InvalidRequest(f"url: {exc}", code="UnsafeWebhookUrl") from None
    return url


async def create_endpoint(
    pool: asyncpg.Pool,
    account_id: uuid.UUID,
    *,
    url: str,
    event_types: Sequence[str] | None,
    enabled: bool,
    description: str,
    allow_private: bool,
    box: SecretBox,
) -> repo.Endpoint:
    """The new endpoint, its signing secret (stored encrypted) shown in the clear this once."""
    types = normalise_event_types(event_types)
    url = await validate_url(url, allow_private=allow_private)
    async with pool.acquire() as conn, conn.transaction():
        # Serialise creations per account so the limit holds under concurrent requests.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"webhook.endpoints.{account_id}")
        if await repo.count_endpoints(conn, account_id) >= MAX_ENDPOINTS_PER_ACCOUNT:
            raise Conflict(
                f"an account may have at most {MAX_ENDPOINTS_PER_ACCOUNT} webhooks; delete one first",
                code="TooManyWebhooks",
            )
        return await repo.insert_endpoint(
            conn,
            box,
            account_id=account_id,
            url=url,
            description=description,
            event_types=types,
            enabled=enabled,
            secret=new_secret(),
        )


async def get_endpoint(pool: asyncpg.Pool, account_id: uuid.UUID, endpoint_id: uuid.UUID) -> repo.Endpoint:
    async with pool.acquire() as conn:
        endpoint = await repo.get_endpoint(conn, account_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook {endpoint_id} in this account", code="WebhookNotFound")
    return endpoint


async def list_endpoints(pool: asyncpg.Pool, account_id: uuid.UUID) -> list[repo.Endpoint]:
    async with pool.acquire() as conn:
        return await repo.list_endpoints(conn, account_id)


async def update_endpoint(
    pool: asyncpg.Pool, account_id: uuid.UUID, endpoint_id: uuid.UUID, changes: dict[str, Any], *, allow_private: bool
) -> repo.Endpoint:
    if "event_types" in changes:
        changes["event_types"] = normalise_event_types(changes["event_types"])
    if "url" in changes:
        changes["url"] = await validate_url(changes["url"], allow_private=allow_private)
    async with pool.acquire() as conn, conn.transaction():
        if await repo.get_endpoint(conn, account_id, endpoint_id, for_update=True) is None:
            raise NotFound(f"no webhook {endpoint_id} in this account", code="WebhookNotFound")
        return await repo.update_endpoint(conn, endpoint_id, changes)


async def delete_endpoint(pool: asyncpg.Pool, account_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    async with pool.acquire() as conn:
        if not await repo.delete_endpoint(conn, account_id, endpoint_id):
            raise NotFound(f"no webhook {endpoint_id} in this account", code="WebhookNotFound")


async def rotate_secret(
    pool: asyncpg.Pool,
    account_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    grace: timedelta = DEFAULT_ROTATION_GRACE,
    *,
    box: SecretBox,
) -> repo.Endpoint:
    """A new secret signs from now on; the current one also signs (a second `v1` signature) until
    the grace period ends, so receivers can switch over without dropping a webhook."""
    async with pool.acquire() as conn, conn.transaction():
        endpoint = await repo.get_endpoint(conn, account_id, endpoint_id, for_update=True, box=box)
        if endpoint is None:
            raise NotFound(f"no webhook {endpoint_id} in this account", code="WebhookNotFound")
        now = datetime.now(UTC)
        return await repo.update_endpoint(
            conn,
            endpoint_id,
            {
                "secret": new_secret(),
                "previous_secret": endpoint.secret if grace.total_seconds() > 0 else None,
                "previous_secret_expires_at": now + grace if grace.total_seconds() > 0 else None,
            },
            box,
        )


# --- events into deliveries --------------------------------------------------------------------


async def _fan_out(
    conn: asyncpg.Connection, events: Sequence[repo.NewEvent], *, announce: bool = False
) -> list[uuid.UUID]:
    """The events and their deliveries, due now. The worker's dispatcher claims due deliveries from
    PostgreSQL (the consumer in its process nudges it); with `announce` a `webhook.due` message also
    goes out through the outbox, for deliveries made where no dispatcher runs (the API)."""
    delivery_ids = await repo.insert_events(conn, events)
    if announce:
        await outbox.enqueue(conn, repo.SCHEMA, [due_envelope(d, 0) for d in delivery_ids])
    return delivery_ids


@dataclass(frozen=True)
class IncomingEvent:
    """A broker message that becomes a webhook event (subscription.created, .deactivated, attendee.replied)."""

    message_id: uuid.UUID  # the broker message's envelope id, which is also the event's id
    account_id: uuid.UUID
    event_type: str
    message: SubscriptionData | AttendeeReplied

    @property
    def subscription_id(self) -> uuid.UUID | None:
        return self.message.subscription_id if isinstance(self.message, SubscriptionData) else None

    def body(self) -> bytes:
        if isinstance(self.message, AttendeeReplied):
            details = payloads.attendee_replied_details(self.message)
        else:
            details = payloads.event_details(self.event_type, self.message)
        return payloads.encode(payloads.event_object(self.message_id, self.event_type, details))

    def to_store(self, endpoint_ids: Sequence[uuid.UUID]) -> repo.NewEvent:
        return repo.NewEvent(
            event_id=self.message_id,
            account_id=self.account_id,
            event_type=self.event_type,
            body=self.body(),
            endpoint_ids=endpoint_ids,
            source_message_id=self.message_id,
            subscription_id=self.subscription_id,
        )


def incoming_event(envelope: Envelope) -> IncomingEvent | None:
    """The webhook event a message becomes, or None for a message that becomes none."""
    event_type = payloads.MESSAGE_EVENT_TYPES.get(envelope.type)
    if event_type is None:
        return None
    message = envelope.parsed()
    assert isinstance(message, SubscriptionData | AttendeeReplied)
    return IncomingEvent(envelope.id, message.account_id, event_type, message)


def incoming_event_of(body: bytes, message_type: str | None = None) -> IncomingEvent | None:
    """The webhook event a message's bytes become, or None for a message that becomes none; raises
    (pydantic's ValidationError) on a malformed one. As `incoming_event(parse_envelope(body))` with
    the data validated once instead of twice. With the AMQP `type` property of a message that
    becomes an event, envelope and data are validated in one pass (`typed_envelope`); without it,
    or when the body disagrees with it, the envelope is read first to learn its type."""
    if message_type and (event_type := payloads.MESSAGE_EVENT_TYPES.get(message_type)):
        with contextlib.suppress(ValueError):  # pydantic's ValidationError is a ValueError
            typed = typed_envelope(body, message_type)
            return IncomingEvent(typed.id, typed.data.account_id, event_type, typed.data)
    return incoming_event(Envelope.model_validate_json(body))


def subscription_handler(on_deliveries: Callable[[], None] | None = None) -> Handler:
    """The consumer's handler (runs in the consumer's transaction): a subscription or reply message
    becomes one event and a delivery to every enabled endpoint of the account that wants its type;
    then `on_deliveries()` (the dispatcher's nudge) when it made any."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        if await make_deliveries(conn, envelope) and on_deliveries is not None:
            on_deliveries()

    return handle


async def handle_subscription_message(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """The handler without a dispatcher to nudge (the next poll finds the deliveries)."""
    await make_deliveries(conn, envelope)


async def make_deliveries(conn: asyncpg.Connection, envelope: Envelope) -> int:
    """The event and its deliveries for one message; returns how many deliveries."""
    event = incoming_event(envelope)
    return await make_deliveries_for(conn, [event]) if event is not None else 0


async def make_deliveries_for(conn: asyncpg.Connection, events: Sequence[IncomingEvent]) -> int:
    """The events and their deliveries, in the caller's transaction, a few statements for all of
    them; returns how many deliveries. An event no endpoint wants is not stored."""
    wanted = await repo.endpoints_wanting_many(conn, list({(e.account_id, e.event_type) for e in events}))
    stored = [
        event.to_store(endpoints) for event in events if (endpoints := wanted.get((event.account_id, event.event_type)))
    ]
    if not stored:
        return 0
    deliveries = await _fan_out(conn, stored)
    for event in stored:
        log.info(
            "webhook.event",
            event_type=event.event_type,
            event_id=str(event.event_id),
            deliveries=len(event.endpoint_ids),
        )
    return len(deliveries)


async def apply_incoming_events(
    conn: asyncpg.Connection, consumer: str, events: Sequence[IncomingEvent]
) -> dict[uuid.UUID, int]:
    """The consumer's batch (distinct message ids) in one statement, atomic on its own: the messages
    recorded as processed and, for the new ones, the events and their deliveries as make_deliveries_for
    makes them. Returns, per new message id, how many deliveries it made."""
    made = await repo.record_and_fan_out(
        conn,
        consumer,
        [
            repo.IncomingMessageEvent(e.message_id, e.account_id, e.event_type, e.subscription_id, e.body())
            for e in events
        ],
    )
    for event in events:
        if made.get(event.message_id):
            log.info(
                "webhook.event",
                event_type=event.event_type,
                event_id=str(event.message_id),
                deliveries=made[event.message_id],
            )
    return made


async def send_test_event(pool: asyncpg.Pool, account_id: uuid.UUID, endpoint_id: uuid.UUID) -> uuid.UUID:
    """The seed's Test Event Object, to this endpoint only, through the same pipeline."""
    event_id = uuid.uuid4()
    body = payloads.encode(payloads.event_object(event_id, payloads.TEST, payloads.test_details(datetime.now(UTC))))
    async with pool.acquire() as conn, conn.transaction():
        endpoint = await repo.get_endpoint(conn, account_id, endpoint_id)
        if endpoint is None:
            raise NotFound(f"no webhook {endpoint_id} in this account", code="WebhookNotFound")
        if not endpoint.enabled:
            raise Conflict("this webhook is disabled; enable it before sending a test", code="WebhookDisabled")
        (delivery_id,) = await _fan_out(
            conn,
            [
                repo.NewEvent(
                    event_id=event_id,
                    account_id=account_id,
                    event_type=payloads.TEST,
                    body=body,
                    endpoint_ids=[endpoint_id],
                )
            ],
            announce=True,
        )
    return delivery_id


async def retry_delivery(pool: asyncpg.Pool, account_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
    """One more attempt of a failed delivery, now, recorded like any other."""
    async with pool.acquire() as conn, conn.transaction():
        delivery = await repo.get_delivery(conn, account_id, delivery_id, for_update=True)
        if delivery is None:
            raise NotFound(f"no delivery {delivery_id} in this account", code="DeliveryNotFound")
        if delivery["status"] == "pending":
            raise Conflict(
                "this delivery is still pending (its retry window is open or an attempt is under way)",
                code="DeliveryPending",
            )
        if delivery["status"] == "succeeded":
            raise Conflict("this delivery already succeeded", code="DeliverySucceeded")
        if not delivery["endpoint_enabled"]:
            raise Conflict("this webhook is disabled; enable it before retrying", code="WebhookDisabled")
        await repo.request_manual_attempt(conn, delivery_id)
        await outbox.enqueue(conn, repo.SCHEMA, [due_envelope(delivery_id, delivery["attempts_made"])])


# --- the record --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[tuple[asyncpg.Record, list[asyncpg.Record]]]
    next_before: tuple[datetime, uuid.UUID] | None


async def list_deliveries(
    pool: asyncpg.Pool,
    account_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    limit: int,
    status: str | None,
    before: tuple[datetime, uuid.UUID] | None,
) -> DeliveryPage:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if await repo.get_endpoint(conn, account_id, endpoint_id) is None:
            raise NotFound(f"no webhook {endpoint_id} in this account", code="WebhookNotFound")
        rows = await repo.list_deliveries(conn, endpoint_id, limit=limit + 1, status=status, before=before)
        page = rows[:limit]
        attempts = await repo.attempts_of(conn, [r["id"] for r in page])
    following = (page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None
    return DeliveryPage([(r, attempts[r["id"]]) for r in page], following)


async def get_delivery(
    pool: asyncpg.Pool, account_id: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    # One snapshot, so the delivery's status and its attempts agree.
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await repo.get_delivery(conn, account_id, delivery_id)
        if row is None:
            raise NotFound(f"no delivery {delivery_id} in this account", code="DeliveryNotFound")
        attempts = await repo.attempts_of(conn, [delivery_id])
    return row, attempts[delivery_id]


async def wait_for_attempt(
    pool: asyncpg.Pool, account_id: uuid.UUID, delivery_id: uuid.UUID, *, attempts_before: int, timeout: float
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """The delivery once its next attempt has finished, or as it stands after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        row, attempts = await get_delivery(pool, account_id, delivery_id)
        done = [a for a in attempts if a["number"] > attempts_before and a["finished_at"] is not None]
        if done or time.monotonic() >= deadline:
            return row, attempts
        await asyncio.sleep(0.05)
