"""Every message Kalends puts on RabbitMQ: the envelope of the contract and one schema per type.

Producers and consumers import types from here and nowhere else defines them. The routing key is
the message type (`<noun>.<past-tense verb>`). A schema change that is not backwards compatible
bumps `SCHEMA_VERSION` of that type; consumers read `envelope.version`.
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel


class MessageData(BaseModel):
    """Base of every message's `data`: camelCase on the wire, unknown fields kept for forward compat."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)


# --- auth ---------------------------------------------------------------------------------------


class AccountCreated(MessageData):
    account_id: uuid.UUID
    account_code: str
    name: str


class ApiKeyCreated(MessageData):
    """An account's API key (seed 001's `x-api-key`, seed 000's static bearer). Only its hex SHA-256
    travels: a consumer keeps the hashes and compares `sha256(presented key)` against them."""

    key_id: uuid.UUID
    account_id: uuid.UUID
    account_code: str
    key_hash: str
    created_at: datetime


class ApiKeyRevoked(MessageData):
    key_id: uuid.UUID
    account_id: uuid.UUID
    account_code: str
    key_hash: str
    revoked_at: datetime


# --- auth: revocations and account state (every service keeps a denylist from these) ------------


class AccessTokenRevoked(MessageData):
    """One access token revoked (RFC 7009): refuse its `jti` until `expires_at`, when it dies anyway."""

    jti: str
    client_id: str
    account_id: uuid.UUID
    expires_at: datetime


class TokenFamilyRevoked(MessageData):
    """Every token of one grant revoked (by the client, or because a spent refresh token came back).
    Access tokens name their family in the `sid` claim; the last one expires by `expires_at`."""

    family_id: uuid.UUID
    client_id: str
    account_id: uuid.UUID
    reason: str
    expires_at: datetime


class ClientStateChanged(MessageData):
    """`client.disabled` / `client.enabled`: while disabled, no token of the client is honoured.
    `changed_at` orders messages about one client that arrive out of order."""

    client_id: str
    account_id: uuid.UUID
    changed_at: datetime


class AccountStateChanged(MessageData):
    """`account.disabled` / `account.enabled`: while disabled, none of the account's tokens or API
    keys is honoured. `changed_at` orders messages about one account that arrive out of order."""

    account_id: uuid.UUID
    account_code: str
    changed_at: datetime


# --- ingest: catalog ----------------------------------------------------------------------------


class CalendarData(MessageData):
    """A calendar as it is after the change (created, updated)."""

    calendar_id: uuid.UUID
    account_id: uuid.UUID
    account_code: str
    account_name: str = ""
    code: str
    name: str
    description: str = ""
    image: str | None = None
    color: str | None = None
    timezone: str = "UTC"  # IANA
    protected: bool = False
    refresh_interval: str = "PT1H"  # ISO 8601 duration
    single_subscription_per_subscriber: bool = False
    version: int = 1
    changed_at: datetime


class CalendarDeleted(MessageData):
    calendar_id: uuid.UUID
    account_id: uuid.UUID
    code: str
    version: int
    changed_at: datetime


class TagData(MessageData):
    tag_id: uuid.UUID
    calendar_id: uuid.UUID
    name: str
    external_id: str | None = None
    version: int = 1
    changed_at: datetime


class TagDeleted(MessageData):
    tag_id: uuid.UUID
    calendar_id: uuid.UUID
    version: int
    changed_at: datetime


class Person(MessageData):
    name: str | None = None
    email: str
    role: str | None = None  # RFC 5545 ROLE, e.g. REQ-PARTICIPANT
    rsvp: bool | None = None
    # RFC 5545 PARTSTAT once the attendee has answered (ACCEPTED, DECLINED, TENTATIVE, ...); None: no answer.
    partstat: str | None = None


class EventData(MessageData):
    """An event as it is after the change. `start`/`end` are wall-clock ISO strings in `timezone`
    (IANA) for timed events, dates (`YYYY-MM-DD`) for all-day ones with `end` the last day inclusive.

    A calendar event has no `subscription_ids`. A subscriber's manual event travels as
    `event.created` / `event.updated` / `event.deleted` of its own, only when it changed, with
    `subscription_ids` naming its one subscription; a subscription event (inside
    `subscription_event.accepted`) lists every subscription it belongs to.
    """

    event_id: uuid.UUID
    calendar_id: uuid.UUID
    account_id: uuid.UUID
    external_id: str | None = None
    sequence: int
    changed_at: datetime
    created_at: datetime
    title: str
    description: str = ""
    location: str = ""
    start: str
    end: str
    timezone: str = "UTC"
    all_day: bool = False
    notify_before: int | None = None  # minutes
    tag_ids: list[uuid.UUID] = Field(default_factory=list)
    time_zone_tag: str | None = None  # Windows id, what a subscription's timeZoneId matches
    url: str | None = None
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    transparency: Literal["opaque", "transparent"] = "opaque"
    class_: Literal["public", "private", "confidential"] = Field("public", alias="class")
    categories: list[str] = Field(default_factory=list)
    color: str | None = None
    organizer: Person | None = None
    attendees: list[Person] = Field(default_factory=list)
    conference: str | None = None
    image: str | None = None
    recurrence: list[str] = Field(default_factory=list)  # RFC 5545 lines: RRULE:..., EXDATE:...
    subscription_ids: list[uuid.UUID] = Field(default_factory=list)
    deleted: bool = False
    # True: the mail service invites the attendees (iMIP REQUEST/CANCEL) on every change.
    notify: bool = False
    attendees_hidden: bool = False  # each invitation lists only its own attendee (Unipile)


# --- ingest: subscriptions ----------------------------------------------------------------------


class SubscriptionTag(MessageData):
    tag_id: uuid.UUID
    tag_text: str
    external_id: str | None = None


class SubscriptionData(MessageData):
    """A subscription as it is after the change, with everything a feed filter and the webhook
    payloads of seed 002 ("Object Data") need. Its manual events are not in it: each travels as
    an `event.*` message of its own (see EventData); a message from before that change may still
    carry an `events` list, kept as an extra field."""

    subscription_id: uuid.UUID
    account_id: uuid.UUID
    account_code: str
    merchant_name: str
    calendar_id: uuid.UUID
    calendar_code: str
    calendar_title: str
    subscription_type: Literal["webcal", "google", "caldav"]
    subscriber_id: str | None = None
    active: bool = True
    created_at: datetime
    deactivated_at: datetime | None = None
    action_type: str = "SubscriptionViaWebApi"
    unsubscribe_reason: str | None = None
    calendar_tags: list[SubscriptionTag] = Field(default_factory=list)
    time_zone_tag: str | None = None  # Windows id
    request_event_ids: list[uuid.UUID] = Field(default_factory=list)
    external_event_ids: list[str] = Field(default_factory=list)
    exclude_request_event_ids: list[uuid.UUID] = Field(default_factory=list)
    exclude_external_event_ids: list[str] = Field(default_factory=list)
    email_address: str | None = None
    additional_opt_in: bool | None = None
    marketing_allowed: bool | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    url_referrer: str | None = None
    device_name: str | None = None
    source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    redirect_to: str | None = None
    # Seed 002's channel-finder fields (webhook payload: enteredPostCode, cableProvider, ...).
    entered_post_code: str | None = None
    cable_provider: str | None = None
    cable_provider_location: str | None = None
    # From ipAddress when ingest has a GeoIP database (webhook payload: countryCode, geoCountry).
    country_code: str | None = None
    geo_country: str | None = None
    # Protected calendars: the feed checks HTTP Basic credentials against this hash. The username
    # is the subscriber id ("subscriber" when there is none); the password itself never travels
    # (ingest keeps it encrypted, so a re-subscribe answers the same URL). The hash is "sha256:" +
    # hex SHA-256 of the UTF-8 password (a random 192-bit secret, so one fast hash suffices; compare
    # with hmac.compare_digest).
    feed_username: str | None = None
    feed_password_hash: str | None = None
    # Pushed subscriptions (caldav, google): the sync service's connection and the calendar pushed into.
    sync_connection_id: uuid.UUID | None = None
    sync_calendar_url: str | None = None
    version: int = 1


class SubscriptionEventAccepted(MessageData):
    """A subscription event (seed 002, "Create New Subscription Event") for the listed subscriptions."""

    event: EventData
    subscription_ids: list[uuid.UUID]


# --- sync ---------------------------------------------------------------------------------------


class PushStopped(MessageData):
    """The sync service stopped pushing a subscription for good (the user deleted our calendar, the
    provider refuses the credentials): ingest deactivates it with `reason` (Unsubscribe webhook)."""

    subscription_id: uuid.UUID
    account_id: uuid.UUID
    code: str  # CalendarGone | Unauthorized
    reason: str
    stopped_at: datetime


# --- webhook ------------------------------------------------------------------------------------


class WebhookDeliveryDue(MessageData):
    """Internal to the webhook service: a delivery whose next attempt is due now."""

    delivery_id: uuid.UUID
    attempt: int


# --- mail ---------------------------------------------------------------------------------------


class AttendeeReplied(MessageData):
    """An attendee answered an invitation (iMIP REPLY, or COUNTER): published by mail, applied by
    ingest to the event's attendee and sent by webhook as `AttendeeReplied`."""

    account_id: uuid.UUID
    event_id: uuid.UUID | None = None  # the catalog event, when the invitation came from one
    uid: str
    attendee_email: str
    partstat: str  # ACCEPTED, DECLINED, TENTATIVE, DELEGATED, NEEDS-ACTION
    method: Literal["REPLY", "COUNTER"] = "REPLY"
    comment: str | None = None
    replied_at: datetime


# --- sync: Google ---------------------------------------------------------------------------------


class GoogleConsentGranted(MessageData):
    """A subscriber consented on Google's screen and sync filled their calendar: ingest activates
    the subscription (`is_new`) or records the re-authorization, and announces it."""

    subscription_id: uuid.UUID
    account_id: uuid.UUID
    connection_id: uuid.UUID
    google_email: str
    is_new: bool
    granted_at: datetime


MESSAGE_TYPES: dict[str, type[MessageData]] = {
    "account.created": AccountCreated,
    "api_key.created": ApiKeyCreated,
    "api_key.revoked": ApiKeyRevoked,
    "access_token.revoked": AccessTokenRevoked,
    "token_family.revoked": TokenFamilyRevoked,
    "client.disabled": ClientStateChanged,
    "client.enabled": ClientStateChanged,
    "account.disabled": AccountStateChanged,
    "account.enabled": AccountStateChanged,
    "calendar.created": CalendarData,
    "calendar.updated": CalendarData,
    "calendar.deleted": CalendarDeleted,
    "tag.created": TagData,
    "tag.updated": TagData,
    "tag.deleted": TagDeleted,
    "event.created": EventData,
    "event.updated": EventData,
    "event.deleted": EventData,
    "subscription.created": SubscriptionData,
    "subscription.updated": SubscriptionData,
    "subscription.deactivated": SubscriptionData,
    "subscription_event.accepted": SubscriptionEventAccepted,
    "push.stopped": PushStopped,
    "webhook_delivery.due": WebhookDeliveryDue,
    "attendee.replied": AttendeeReplied,
    "consent.granted": GoogleConsentGranted,
}

SCHEMA_VERSION = 1


class UnknownMessageType(ValueError):
    """A message whose type no schema here describes."""


class _EnvelopeFields(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    id: uuid.UUID
    type: str
    version: int = SCHEMA_VERSION
    occurred_at: datetime
    account_id: uuid.UUID | None = None
    correlation_id: str | None = None


class Envelope(_EnvelopeFields):
    """The contract's envelope: `{"id", "type", "version", "occurredAt", "accountId", "correlationId", "data"}`."""

    data: dict[str, Any]

    def parsed(self) -> MessageData:
        """The `data` as its type's schema; raises ValidationError or UnknownMessageType."""
        try:
            model = MESSAGE_TYPES[self.type]
        except KeyError:
            raise UnknownMessageType(self.type) from None
        return model.model_validate(self.data)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


DataT = TypeVar("DataT", bound=MessageData)


class TypedEnvelope(_EnvelopeFields, Generic[DataT]):
    """An envelope whose `data` is validated as its type's schema in the same pass as the envelope:
    one JSON parse and no intermediate dict, where `Envelope` + `parsed()` build the data twice.
    For hot consumers that know the type before parsing (`typed_envelope`)."""

    data: DataT


@functools.cache
def _typed_model(message_type: str) -> type[TypedEnvelope[Any]] | None:
    model = MESSAGE_TYPES.get(message_type)
    return TypedEnvelope[model] if model is not None else None  # type: ignore[valid-type]


def typed_envelope(body: bytes, message_type: str) -> TypedEnvelope[Any]:
    """`body` parsed as a message of `message_type` (the AMQP `type` property, which is the routing
    key): raises ValidationError when it is malformed, ValueError when its envelope names another
    type, and UnknownMessageType for a type no schema here describes (all three are ValueErrors)."""
    model = _typed_model(message_type)
    if model is None:
        raise UnknownMessageType(message_type)
    envelope = model.model_validate_json(body)
    if envelope.type != message_type:
        raise ValueError(f"the envelope says {envelope.type!r}, the message's type {message_type!r}")
    return envelope


def make_envelope(
    message_type: str,
    data: MessageData,
    *,
    account_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    expected = MESSAGE_TYPES.get(message_type)
    if expected is None:
        raise UnknownMessageType(message_type)
    if not isinstance(data, expected):
        raise TypeError(f"{message_type} carries {expected.__name__}, not {type(data).__name__}")
    return Envelope(
        id=uuid.uuid4(),
        type=message_type,
        version=SCHEMA_VERSION,
        occurred_at=occurred_at or datetime.now(UTC),
        account_id=account_id,
        correlation_id=correlation_id,
        data=data.model_dump(mode="json", by_alias=True),
    )


def parse_envelope(body: bytes) -> Envelope:
    """Parse and validate an envelope and its data; raises ValueError on anything malformed."""
    try:
        envelope = Envelope.model_validate_json(body)
        envelope.parsed()
    except ValidationError as exc:
        raise ValueError(f"malformed message: {exc.errors()[:3]}") from exc
    return envelope
