"""The seed's webhook objects (seed 002, "Object Data"): the Event Object and its Subscribe,
Unsubscribe and Test details, built field for field from what ingest published.

Wire decisions (documented in the README):
- Keys are spelled as in the seed's JSON examples, including `Referer` and `unsubscribeResonText`.
  The Unsubscribe example spells the subscription id `calendarSubscriptionid` while its table says
  `calendarSubscriptionId`; both keys are sent, with the same value, so code written against either
  works.
- "Always Present" keys are always sent (`userAgent` is "" when unknown; `deviceName` is derived
  from the user agent when ingest did not send one). "Sometimes Present" and "Optional" keys are
  left out when there is no value (null, or no tags), never sent as null.
- Times are UTC, `YYYY-MM-DD HH:MM:SS.ffffff`, as in the seed.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.messages import AttendeeReplied, SubscriptionData

SUBSCRIBE = "Subscribe"
UNSUBSCRIBE = "Unsubscribe"
TEST = "Test"
ATTENDEE_REPLIED = "AttendeeReplied"  # beyond the seed: an attendee answered a mail invitation
EVENT_TYPES = (SUBSCRIBE, UNSUBSCRIBE, ATTENDEE_REPLIED)

# Which broker message becomes which webhook event type.
MESSAGE_EVENT_TYPES = {
    "subscription.created": SUBSCRIBE,
    "subscription.deactivated": UNSUBSCRIBE,
    "attendee.replied": ATTENDEE_REPLIED,
}

SUBSCRIBE_ACTIONS = frozenset(
    {
        "Unknown",
        "SubscriptionViaOneClickLink",
        "SubscriptionViaSms",
        "SubscriptionViaShowsPage",
        "SubscriptionViaCalendarPage",
        "SubscriptionViaWebApi",
        "SubscriptionWithEventsViaWebApi",
        "SubscriptionViaCalReplyNotificationPage",
    }
)
UNSUBSCRIBE_ACTIONS = frozenset(
    {"UnsubscribeUserAction", "DeactivatedById", "DeactivatedByUsername", "RemovedViaSafariDeviceId"}
)
TEST_MESSAGE = "This is a test payload"


def seed_time(moment: datetime) -> str:
    """`2017-03-15 03:48:24.822495`: the seed's UTC timestamp format."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # isoformat with fixed microseconds writes the same text as strftime("%Y-%m-%d %H:%M:%S.%f") in
    # a tenth of the time (strftime goes through the C library's locale-aware formatter).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def device_name(user_agent: str | None) -> str:
    """The seed's `deviceName` (Desktop, Mobile, Tablet) guessed from a user agent."""
    ua = (user_agent or "").lower()
    if not ua:
        return "Unknown"
    if "ipad" in ua or "tablet" in ua or ("android" in ua and "mobile" not in ua):
        return "Tablet"
    if any(word in ua for word in ("mobile", "iphone", "ipod", "android", "windows phone")):
        return "Mobile"
    return "Desktop"


def _put(details: dict[str, Any], key: str, value: Any) -> None:
    """Add a "Sometimes Present" key only when it has a value."""
    if value is not None and value != []:
        details[key] = value


def _common_head(sub: SubscriptionData, action_type: str, id_key: str) -> dict[str, Any]:
    return {
        "actionType": action_type,
        id_key: str(sub.subscription_id),
        "merchantId": str(sub.account_id),
        "merchantName": sub.merchant_name,
        "calendarId": str(sub.calendar_id),
        "calendarTitle": sub.calendar_title,
    }


def _tags(sub: SubscriptionData) -> list[dict[str, str]]:
    return [{"tagId": str(tag.tag_id), "tagText": tag.tag_text} for tag in sub.calendar_tags]


def _time_zone_tag(sub: SubscriptionData) -> dict[str, str] | None:
    return {"windowsName": sub.time_zone_tag} if sub.time_zone_tag else None


def _method(sub: SubscriptionData) -> str:
    return {"google": "Google", "caldav": "CalDAV"}.get(sub.subscription_type, "Webcal")


def _subscriber_fields(details: dict[str, Any], sub: SubscriptionData) -> None:
    _put(details, "subscriberExternalId", sub.subscriber_id)
    _put(details, "emailAddress", sub.email_address)
    _put(details, "additionalOptIn", sub.additional_opt_in)
    _put(details, "isMarketingAllowed", sub.marketing_allowed)
    _put(details, "remoteIpAddress", sub.ip_address)
    details["userAgent"] = sub.user_agent or ""
    _put(details, "Referer", sub.url_referrer)


def _channel_finder(details: dict[str, Any], sub: SubscriptionData, location_key: str) -> None:
    _put(details, "enteredPostCode", sub.entered_post_code)
    _put(details, "cableProvider", sub.cable_provider)
    _put(details, location_key, sub.cable_provider_location)


def _tail(details: dict[str, Any], sub: SubscriptionData) -> None:
    _put(details, "countryCode", sub.country_code)
    _put(details, "geoCountry", sub.geo_country)
    details["deviceName"] = sub.device_name or device_name(sub.user_agent)
    _put(details, "utmSource", sub.utm_source)
    _put(details, "utmMedium", sub.utm_medium)
    _put(details, "utmCampaign", sub.utm_campaign)
    _put(details, "utmContent", sub.utm_content)
    _put(details, "source", sub.source)


def subscribe_details(sub: SubscriptionData) -> dict[str, Any]:
    """The seed's Subscribe Event Object, keys in the order of its example."""
    action = sub.action_type if sub.action_type in SUBSCRIBE_ACTIONS else "Unknown"
    details = _common_head(sub, action, "calendarSubscriptionId")
    details["subscriptionMethod"] = _method(sub)
    _put(details, "calendarTags", _tags(sub))
    _put(details, "timeZoneTag", _time_zone_tag(sub))
    details["createdDateTimeUtc"] = seed_time(sub.created_at)
    _subscriber_fields(details, sub)
    _channel_finder(details, sub, "cableProviderLocation")
    _tail(details, sub)
    return details


def unsubscribe_details(sub: SubscriptionData) -> dict[str, Any]:
    """The seed's Unsubscribe Event Object, keys in the order of its example."""
    # Ingest names how the subscription ended; a deactivation through the API without one is "by id".
    action = sub.action_type if sub.action_type in UNSUBSCRIBE_ACTIONS else "DeactivatedById"
    details = _common_head(sub, action, "calendarSubscriptionid")
    details["calendarSubscriptionId"] = str(sub.subscription_id)
    details["subscriptionMethod"] = _method(sub)
    _put(details, "calendarTags", _tags(sub))
    _put(details, "timeZoneTag", _time_zone_tag(sub))
    details["createdDateTimeUtc"] = seed_time(sub.created_at)
    _subscriber_fields(details, sub)
    # The seed's Unsubscribe example spells the provider's location `providerLocation`.
    _channel_finder(details, sub, "providerLocation")
    _put(details, "removedDateTimeUtc", seed_time(sub.deactivated_at) if sub.deactivated_at else None)
    _put(details, "unsubscribeResonText", sub.unsubscribe_reason)
    _tail(details, sub)
    _put(details, "requestEventIds", ",".join(str(i) for i in sub.request_event_ids) or None)
    _put(details, "excludeRequestEventIds", ",".join(str(i) for i in sub.exclude_request_event_ids) or None)
    return details


def attendee_replied_details(replied: AttendeeReplied) -> dict[str, Any]:
    """Not in the seed; in its style: camelCase keys, the seed's UTC timestamps, absent when empty."""
    details: dict[str, Any] = {"merchantId": str(replied.account_id)}
    _put(details, "eventId", str(replied.event_id) if replied.event_id else None)
    details["uid"] = replied.uid
    details["attendeeEmail"] = replied.attendee_email
    details["partStat"] = replied.partstat
    details["method"] = replied.method
    _put(details, "comment", replied.comment)
    details["repliedDateTimeUtc"] = seed_time(replied.replied_at)
    return details


def test_details(now: datetime) -> dict[str, Any]:
    """The seed's Test Event Object."""
    return {"message": TEST_MESSAGE, "date": seed_time(now)}


def event_object(event_id: uuid.UUID, event_type: str, details: dict[str, Any]) -> dict[str, Any]:
    """The seed's Event Object: `{eventId, eventType, eventDetails}`."""
    return {"eventId": str(event_id), "eventType": event_type, "eventDetails": details}


def event_details(event_type: str, sub: SubscriptionData) -> dict[str, Any]:
    return subscribe_details(sub) if event_type == SUBSCRIBE else unsubscribe_details(sub)


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed) on every attempt."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
