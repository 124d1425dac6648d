"""Request models and response bodies of the ingest API: the only place its wire names live.

Request names are matched case-insensitively (shared.http.CaseInsensitiveModel) and follow seed 002
and the contract's "Catalog bodies"; a few aliases of the seed's own examples are accepted too
(`eventId` for `externalId`, `UserName` for `subscriberId`, `Referer` for `urlReferrer`...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from services.ingest.api.analytics import EXTRA_ANALYTICS_NAMES, WebcalExtras
from shared.http import CaseInsensitiveModel, ignored_fields
from shared.messages import EventData

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COLOR = re.compile(r"^(#[0-9A-Fa-f]{6}|[A-Za-z]{3,32})$")
URL_SCHEMES = ("http://", "https://")

ShortText = Field(default=None, max_length=255)


def _find_bad_text(value: Any, path: str) -> str | None:
    """The path of the first string PostgreSQL cannot store (NUL, lone surrogates), if any."""
    if isinstance(value, str):
        if "\x00" in value:
            return path
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_bad_text(key, path) or _find_bad_text(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _find_bad_text(item, f"{path}[{i}]")
            if found:
                return found
    return None


class IngestModel(CaseInsensitiveModel):
    """camelCase wire names, numbers accepted where text is expected (merchants send ids as numbers)."""

    model_config = ConfigDict(
        populate_by_name=True, extra="ignore", alias_generator=to_camel, coerce_numbers_to_str=True
    )

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        bad = _find_bad_text(data, "")
        if bad is not None:
            raise ValueError(f"{bad or 'body'} contains a NUL character or invalid Unicode")
        return data


def with_warnings(body: dict[str, Any], model: CaseInsensitiveModel) -> dict[str, Any]:
    """A catalog write's answer: the object, and `warnings` naming each field the body sent that
    was ignored (`["unknown field 'body' ignored"]`), so a misspelt name does not go unnoticed."""
    return {**body, "warnings": [f"unknown field {name!r} ignored" for name in ignored_fields(model)]}


def check_url(value: str | None, field: str, *, protocol_relative: bool = False) -> str | None:
    if value is None or value == "":
        return None
    text = value.strip()
    if text.lower().startswith(URL_SCHEMES) or (protocol_relative and text.startswith("//")):
        if any(c.isspace() for c in text):
            raise ValueError(f"{field} must not contain spaces")
        return text
    raise ValueError(f"{field} must be an http(s) URL")


def check_email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    text = value.strip()
    if not EMAIL.match(text):
        raise ValueError("not an email address")
    return text


# --- catalog ------------------------------------------------------------------------------------


class CalendarBody(IngestModel):
    code: str | None = Field(default=None, pattern=CODE_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    image: str | None = Field(default=None, max_length=2048)
    color: str | None = Field(default=None, max_length=32)
    timezone: str | None = Field(default=None, max_length=64)
    protected: bool | None = None
    refresh_interval: str | None = Field(default=None, max_length=32)
    single_subscription_per_subscriber: bool | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return check_url(value, "image", protocol_relative=True)

    @field_validator("color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not COLOR.match(value):
            raise ValueError("use #RRGGBB or a CSS color name")
        return value


class TagBody(IngestModel):
    name: str = Field(min_length=1, max_length=255)
    external_id: str | None = Field(default=None, min_length=1, max_length=255)


class PersonBody(IngestModel):
    name: str | None = Field(default=None, max_length=255)
    email: str = Field(max_length=254)
    role: str | None = Field(default=None, max_length=32)
    rsvp: bool | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        checked = check_email(value)
        if checked is None:
            raise ValueError("an email address is required")
        return checked

    @field_validator("role")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is None:
            return None
        role = value.strip().upper().replace("_", "-")
        if role not in ("CHAIR", "REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT"):
            raise ValueError("must be CHAIR, REQ-PARTICIPANT, OPT-PARTICIPANT or NON-PARTICIPANT")
        return role


class TagRef(IngestModel):
    """A tag named by its id (`internalId`, or `id`) or by the merchant's `externalId`."""

    internal_id: str | None = Field(default=None, max_length=255)
    id: str | None = Field(default=None, max_length=255)
    external_id: str | None = Field(default=None, max_length=255)

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, data: Any) -> Any:
        # A bare string is a tag id: `"tags": ["<uuid>", ...]`.
        return {"internalId": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_name(self) -> TagRef:
        if not (self.internal_id or self.id or self.external_id):
            raise ValueError("name the tag by internalId or externalId")
        return self


class EventBody(IngestModel):
    external_id: str | None = Field(default=None, min_length=1, max_length=255)
    event_id: str | None = Field(default=None, min_length=1, max_length=255)
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=20_000)
    # Unipile's and Outlook's name for the description; `description` wins when both are sent.
    body: str | None = Field(default=None, max_length=20_000, exclude=True)
    location: str = Field(default="", max_length=1000)
    start: str = Field(max_length=40)
    end: str | None = Field(default=None, max_length=40)
    timezone: str | None = Field(default=None, max_length=64)
    all_day_event: bool = False
    notify_before: int | None = Field(default=None, ge=0, le=40_320)
    tags: list[TagRef] = Field(default_factory=list, max_length=100)
    time_zone_tag: str | None = Field(default=None, max_length=64)
    url: str | None = Field(default=None, max_length=2048)
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    transparency: Literal["opaque", "transparent"] = "opaque"
    class_: Literal["public", "private", "confidential"] = Field(default="public", alias="class")
    categories: list[str] = Field(default_factory=list, max_length=50)
    color: str | None = Field(default=None, max_length=32)
    organizer: PersonBody | None = None
    attendees: list[PersonBody] = Field(default_factory=list, max_length=500)
    conference: str | None = Field(default=None, max_length=2048)
    image: str | None = Field(default=None, max_length=2048)
    recurrence: list[str] = Field(default_factory=list, max_length=50)
    # True: the mail service sends the attendees iMIP invitations (and updates, cancellations).
    notify: bool = False

    @field_validator("status", "transparency", "class_", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        for i, category in enumerate(value):
            if not category.strip() or len(category) > 255:
                raise ValueError(f"categories[{i}] must be 1 to 255 characters")
        return value

    @field_validator("url", "conference")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return check_url(value, "the value")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return check_url(value, "image", protocol_relative=True)

    @field_validator("color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not COLOR.match(value):
            raise ValueError("use #RRGGBB or a CSS color name")
        return value

    @property
    def merchant_id(self) -> str | None:
        """The merchant's id of the event: `externalId`, or the seed's `eventId`."""
        return self.external_id or self.event_id


# --- subscriptions ------------------------------------------------------------------------------


class CalDavParams(IngestModel):
    """The subscriber's CalDAV server (`subscriptionMethod: "caldav"`): its URL and an app password."""

    url: str = Field(min_length=1, max_length=2048)
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value, "caldav.url") or value


class SubscribeBody(IngestModel, WebcalExtras):
    """Seed 002's subscriptionParams and the webcal variant's calendarParams."""

    subscriber_id: str | None = Field(default=None, min_length=1, max_length=255)
    user_name: str | None = Field(default=None, min_length=1, max_length=255)
    email_address: str | None = Field(default=None, max_length=254)
    additional_opt_in: bool | None = None
    marketing_allowed: bool | None = None
    redirect_to: str | None = Field(default=None, max_length=2048)
    calendar_tags: list[TagRef] = Field(default_factory=list, max_length=100)
    time_zone_id: str | None = Field(default=None, max_length=64)
    request_event_ids: list[str] = Field(default_factory=list, max_length=1000)
    external_event_ids: list[str] = Field(default_factory=list, max_length=1000)
    utm_source: str | None = ShortText
    utm_medium: str | None = ShortText
    utm_content: str | None = ShortText
    utm_campaign: str | None = ShortText
    user_agent: str | None = Field(default=None, max_length=1000)
    url_referrer: str | None = Field(default=None, max_length=2048)
    referer: str | None = Field(default=None, max_length=2048)
    ip_address: str | None = Field(default=None, max_length=64)
    subscription_method: str | None = Field(default=None, max_length=32)
    caldav: CalDavParams | None = None
    events: list[EventBody] = Field(default_factory=list, max_length=100)
    channel_finder_zip_code: str | None = Field(default=None, max_length=32)
    entered_post_code: str | None = Field(default=None, max_length=32)
    provider_name: str | None = ShortText
    cable_provider: str | None = ShortText
    provider_location: str | None = ShortText
    cable_provider_location: str | None = ShortText

    @field_validator("email_address")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return check_email(value)

    @field_validator("redirect_to")
    @classmethod
    def _redirect(cls, value: str | None) -> str | None:
        return check_url(value, "redirectTo")

    @field_validator("request_event_ids", "external_event_ids")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        return [v.strip() for v in value if v.strip() and len(v) <= 255]

    @property
    def subscriber(self) -> str | None:
        return self.subscriber_id or self.user_name

    @property
    def referrer(self) -> str | None:
        return self.url_referrer or self.referer


class UpdateSubscriptionBody(IngestModel):
    """Seed 002's subscriptionUpdateParameters; only the names present change."""

    calendar_tags: list[TagRef] | None = Field(default=None, max_length=100)
    time_zone_id: str | None = Field(default=None, max_length=64)
    request_event_ids: list[str] | None = Field(default=None, max_length=1000)
    external_event_ids: list[str] | None = Field(default=None, max_length=1000)
    exclude_request_event_ids: list[str] | None = Field(default=None, max_length=1000)
    exclude_external_event_ids: list[str] | None = Field(default=None, max_length=1000)
    # The seed's own example spells it so.
    exclud_external_event_ids: list[str] | None = Field(default=None, max_length=1000)
    marketing_allowed: bool | None = None
    additional_opt_in: bool | None = None
    email_address: str | None = Field(default=None, max_length=254)
    redirect_to: str | None = Field(default=None, max_length=2048)

    @field_validator("email_address")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return check_email(value)

    @field_validator("redirect_to")
    @classmethod
    def _redirect(cls, value: str | None) -> str | None:
        return check_url(value, "redirectTo")

    @field_validator(
        "request_event_ids",
        "external_event_ids",
        "exclude_request_event_ids",
        "exclude_external_event_ids",
        "exclud_external_event_ids",
    )
    @classmethod
    def _ids(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [v.strip() for v in value if v.strip() and len(v) <= 255]


class DeactivateBody(IngestModel):
    id: str | None = Field(default=None, max_length=255)
    username: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _one(self) -> DeactivateBody:
        if bool(self.id) == bool(self.username):
            raise ValueError("send either id (one subscription) or username (all of that username's)")
        return self


class SubscriptionEventBody(IngestModel):
    event: EventBody
    subscription_ids: list[str] = Field(default_factory=list, max_length=10_000)


# --- response bodies ----------------------------------------------------------------------------


def utc_text(moment: datetime | None) -> str | None:
    """Seed 002's timestamps: UTC, milliseconds, no zone suffix (`2016-11-09T17:30:11.933`)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def calendar_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["calendar_id"]),
        "code": row["code"],
        "name": row["name"],
        "description": row["description"],
        "image": row["image"],
        "color": row["color"],
        "timezone": row["timezone"],
        "protected": row["protected"],
        "refreshInterval": row["refresh_interval"],
        "singleSubscriptionPerSubscriber": row["single_subscription_per_subscriber"],
        "version": row["version"],
        "createdAt": utc_text(row["created_at"]),
        "updatedAt": utc_text(row["updated_at"]),
    }


def tag_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": str(row["tag_id"]), "name": row["name"], "externalId": row["external_id"], "version": row["version"]}


def event_request_body(event: EventData) -> dict[str, Any]:
    """The stored event in request form: what PATCH merges its changes into."""
    return {
        "externalId": event.external_id,
        "title": event.title,
        "description": event.description,
        "location": event.location,
        "start": event.start,
        "end": event.end,
        "timezone": event.timezone,
        "allDayEvent": event.all_day,
        "notifyBefore": event.notify_before,
        "tags": [str(t) for t in event.tag_ids],
        "timeZoneTag": event.time_zone_tag,
        "url": event.url,
        "status": event.status,
        "transparency": event.transparency,
        "class": event.class_,
        "categories": event.categories,
        "color": event.color,
        "organizer": event.organizer.model_dump(exclude_none=True) if event.organizer else None,
        "attendees": [a.model_dump(exclude_none=True) for a in event.attendees],
        "conference": event.conference,
        "image": event.image,
        "recurrence": event.recurrence,
        "notify": event.notify,
    }


def event_body(event: EventData) -> dict[str, Any]:
    return {
        "id": str(event.event_id),
        **event_request_body(event),
        "sequence": event.sequence,
        "createdAt": utc_text(event.created_at),
        "updatedAt": utc_text(event.changed_at),
    }


def subscribed_body(outcome: Any) -> dict[str, Any]:
    """Seed 002's create responses: the webcal shape, or the google one (new / existing)."""
    body: dict[str, Any] = {
        "success": True,
        "statusCode": 200,
        "errors": [],
        "subscriptionType": outcome.subscription_type,
        "subscriptionId": str(outcome.subscription_id),
        "subscriberId": outcome.subscriber_id,
    }
    if outcome.subscription_type in ("webcal", "caldav"):
        body["subscriptionUrl"] = outcome.subscription_url
        body["isNewSubscription"] = outcome.is_new
        if outcome.calendar_url:
            body["calendarUrl"] = outcome.calendar_url
    elif outcome.is_new:
        body["redirectTo"] = outcome.redirect_to
    else:
        body["isNewSubscription"] = False
    return body


def _listed_event(row: Mapping[str, Any], excluded: bool) -> dict[str, Any]:
    return {
        "id": str(row["event_id"]),
        "name": row["title"],
        "externalId": row["external_id"],
        "isExcluded": excluded,
    }


def subscription_body(view: Any) -> dict[str, Any]:
    """Seed 002's Get Subscription Details, plus the stored analytics and the manual events."""
    row, calendar, details = view.row, view.calendar, view.row["details"]
    body: dict[str, Any] = {
        "subscriptionId": str(row["subscription_id"]),
        "calendar": {"code": calendar["code"], "name": calendar["name"], "image": calendar["image"]},
        "tags": [{"id": str(t["tag_id"]), "name": t["name"]} for t in view.tags],
        "timezoneId": details.get("time_zone_tag"),
        "subscriptionType": row["subscription_type"],
        "subscriberId": row["subscriber_id"],
        "emailAddress": details.get("email_address"),
        "createdAt": utc_text(row["created_at"]),
        "isActive": row["active"],
        "events": [_listed_event(e, False) for e in view.included] + [_listed_event(e, True) for e in view.excluded],
    }
    if row["deactivated_at"] is not None:
        body["deactivatedDate"] = utc_text(row["deactivated_at"])
        body["actionType"] = details.get("action_type")
        body["unsubscribeReason"] = details.get("unsubscribe_reason")
    if details.get("sync_calendar_url"):
        body["calendarUrl"] = details["sync_calendar_url"]
    for wire, name in ANALYTICS_NAMES + EXTRA_ANALYTICS_NAMES:
        if details.get(name) is not None:
            body[wire] = details[name]
    if view.manual_events:
        body["manualEvents"] = [event_body(EventData.model_validate(e)) for e in view.manual_events]
    return body


ANALYTICS_NAMES = (
    ("additionalOptIn", "additional_opt_in"),
    ("marketingAllowed", "marketing_allowed"),
    ("ipAddress", "ip_address"),
    ("userAgent", "user_agent"),
    ("deviceName", "device_name"),
    ("urlReferrer", "url_referrer"),
    ("source", "source"),
    ("utmSource", "utm_source"),
    ("utmMedium", "utm_medium"),
    ("utmCampaign", "utm_campaign"),
    ("utmContent", "utm_content"),
    ("redirectTo", "redirect_to"),
    ("enteredPostCode", "entered_post_code"),
    ("cableProvider", "cable_provider"),
    ("cableProviderLocation", "cable_provider_location"),
)
