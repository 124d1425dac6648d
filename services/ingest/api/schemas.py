"""Request models of the ingest API (bodies.py builds the answers): with it, the only place its wire names live.

Request names are matched case-insensitively (shared.http.CaseInsensitiveModel) and follow seed 002
and the contract's "Catalog bodies"; a few aliases of the seed's own examples are accepted too
(`eventId` for `externalId`, `UserName` for `subscriberId`, `Referer` for `urlReferrer`...).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from services.ingest.api.analytics import WebcalExtras
from shared.http import CaseInsensitiveModel, ignored_fields

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


class SubscribePageBody(IngestModel):
    """What the calendar's public page asks visitors: their email (off, optional or required) and the
    opt-in checkboxes, each shown with the merchant's label when one is given."""

    email: Literal["off", "optional", "required"] = "off"
    marketing_opt_in: str | None = Field(default=None, min_length=1, max_length=500)
    additional_opt_in: str | None = Field(default=None, min_length=1, max_length=500)


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
    subscribe_page: SubscribePageBody | None = None

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


class TagRenameBody(IngestModel):
    name: str = Field(min_length=1, max_length=255)


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


# How a subscription came about (seed 002's Subscribe actionType), as a caller may state it; unset:
# SubscriptionViaWebApi (SubscriptionWithEventsViaWebApi with manual events). The calendar pages of the
# web service send SubscriptionViaCalendarPage.
SubscribeAction = Literal[
    "SubscriptionViaOneClickLink",
    "SubscriptionViaSms",
    "SubscriptionViaShowsPage",
    "SubscriptionViaCalendarPage",
    "SubscriptionViaWebApi",
    "SubscriptionWithEventsViaWebApi",
    "SubscriptionViaCalReplyNotificationPage",
]


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
    action_type: SubscribeAction | None = None
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
