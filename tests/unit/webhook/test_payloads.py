"""The seed's webhook objects built from a subscription message."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

from services.webhook.domain import payloads
from shared.messages import SubscriptionData


def minimal(**overrides: object) -> SubscriptionData:
    values: dict[str, object] = {
        "subscription_id": uuid.UUID(int=10),
        "account_id": uuid.UUID(int=11),
        "account_code": "acme",
        "merchant_name": "Acme",
        "calendar_id": uuid.UUID(int=12),
        "calendar_code": "games",
        "calendar_title": "Games",
        "subscription_type": "webcal",
        "created_at": datetime(2026, 5, 1, 8, 30, 0, 123000, tzinfo=UTC),
    }
    values.update(overrides)
    return SubscriptionData(**values)  # type: ignore[arg-type]


def test_a_subscribe_object_with_nothing_optional_has_exactly_the_always_present_keys() -> None:
    details = payloads.subscribe_details(minimal())
    assert details == {
        "actionType": "SubscriptionViaWebApi",
        "calendarSubscriptionId": str(uuid.UUID(int=10)),
        "merchantId": str(uuid.UUID(int=11)),
        "merchantName": "Acme",
        "calendarId": str(uuid.UUID(int=12)),
        "calendarTitle": "Games",
        "subscriptionMethod": "Webcal",
        "createdDateTimeUtc": "2026-05-01 08:30:00.123000",
        "userAgent": "",
        "deviceName": "Unknown",
    }


def test_the_unsubscribe_object_carries_both_spellings_of_the_subscription_id_and_the_seeds_reason_key() -> None:
    details = payloads.unsubscribe_details(
        minimal(active=False, deactivated_at=datetime(2026, 5, 2, tzinfo=UTC), unsubscribe_reason="Too many")
    )
    assert details["calendarSubscriptionid"] == details["calendarSubscriptionId"] == str(uuid.UUID(int=10))
    assert details["unsubscribeResonText"] == "Too many"
    assert details["removedDateTimeUtc"] == "2026-05-02 00:00:00.000000"
    assert details["actionType"] == "DeactivatedById"
    assert "requestEventIds" not in details


def test_an_unsubscribe_action_named_by_ingest_is_kept_and_a_subscribe_action_is_not_used_for_it() -> None:
    assert payloads.unsubscribe_details(minimal(action_type="UnsubscribeUserAction"))["actionType"] == (
        "UnsubscribeUserAction"
    )
    assert payloads.subscribe_details(minimal(action_type="DeactivatedById"))["actionType"] == "Unknown"


def test_times_are_utc_in_the_seeds_format_whatever_the_offset() -> None:
    moment = datetime(2026, 5, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert payloads.seed_time(moment) == "2026-05-01 08:00:00.000005"


def test_the_device_name_is_guessed_from_the_user_agent_when_ingest_sent_none() -> None:
    iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
    ipad = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"
    assert payloads.subscribe_details(minimal(user_agent=iphone))["deviceName"] == "Mobile"
    assert payloads.subscribe_details(minimal(user_agent=ipad))["deviceName"] == "Tablet"
    assert payloads.subscribe_details(minimal(user_agent="Mozilla/5.0 (Windows NT 10.0)"))["deviceName"] == "Desktop"
    assert payloads.subscribe_details(minimal(user_agent="x", device_name="Watch"))["deviceName"] == "Watch"


def test_the_event_object_wraps_the_details_and_encodes_to_compact_utf8_json() -> None:
    event_id = uuid.UUID(int=99)
    body = payloads.encode(
        payloads.event_object(event_id, "Test", payloads.test_details(datetime(2026, 1, 1, tzinfo=UTC)))
    )
    assert json.loads(body) == {
        "eventId": str(event_id),
        "eventType": "Test",
        "eventDetails": {"message": "This is a test payload", "date": "2026-01-01 00:00:00.000000"},
    }
    assert b" " not in body.replace(b"This is a test payload", b"").replace(b"2026-01-01 00", b"")


def test_the_country_ingest_found_is_sent_as_the_seeds_country_code_and_geo_country() -> None:
    sub = minimal(country_code="US", geo_country="United States", deactivated_at=datetime(2026, 5, 2, tzinfo=UTC))
    for details in (payloads.subscribe_details(sub), payloads.unsubscribe_details(sub)):
        assert (details["countryCode"], details["geoCountry"]) == ("US", "United States")
        keys = list(details)
        assert keys.index("geoCountry") == keys.index("countryCode") + 1 == keys.index("deviceName") - 1
    assert "countryCode" not in payloads.subscribe_details(minimal())


def test_the_subscription_method_names_pushed_subscriptions_by_their_provider() -> None:
    assert payloads.subscribe_details(minimal(subscription_type="google"))["subscriptionMethod"] == "Google"
    assert payloads.subscribe_details(minimal(subscription_type="caldav"))["subscriptionMethod"] == "CalDAV"
    assert payloads.unsubscribe_details(minimal(subscription_type="caldav"))["subscriptionMethod"] == "CalDAV"
