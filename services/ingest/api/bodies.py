"""The ingest API's response bodies, built from stored rows and messages (the request models are in
schemas.py). Timestamps follow seed 002: UTC, milliseconds, no zone suffix.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.ingest.api.analytics import EXTRA_ANALYTICS_NAMES
from shared.messages import EventData


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
        "subscribePage": {"email": "off", "marketingOptIn": None, "additionalOptIn": None, **row["subscribe_page"]},
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


# What a calendar page may show of an event: the platform token of the web service (scope
# `calendar-pages`) acts for any account, so it reads public events only, without the people
# (attendees, organizer), the merchant's own ids or links that were never meant for visitors.
PAGE_EVENT_FIELDS = (
    "id",
    "title",
    "description",
    "location",
    "start",
    "end",
    "timezone",
    "allDayEvent",
    "tags",
    "timeZoneTag",
    "recurrence",
    "status",
    "class",
    "categories",
    "color",
    "image",
    "url",
)


def page_event_body(event: EventData) -> dict[str, Any] | None:
    """The event as a public calendar page sees it; None for one that is not public."""
    body = event_body(event)
    if body.get("class", "public") != "public" or body.get("status") == "cancelled":
        return None
    return {name: body[name] for name in PAGE_EVENT_FIELDS if name in body}


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
    # How it began (SubscriptionViaWebApi, SubscriptionViaCalendarPage...) or, once ended, how it ended.
    body["actionType"] = details.get("action_type")
    if row["deactivated_at"] is not None:
        body["deactivatedDate"] = utc_text(row["deactivated_at"])
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
