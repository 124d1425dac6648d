# ruff: noqa: E501  (the seed's example bodies are kept as they are written)
"""Every subscription endpoint of seed 002, through HTTP with real tokens, using the seed's own
example bodies (mended only where they are not valid JSON: `False`, a missing or trailing comma)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from shared.testing import Stack

from .conftest import Merchant

pytestmark = pytest.mark.e2e

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

# "Create New Subscription", first example (mended: `False` -> false, comma after ipAddress).
SEED_CREATE_GOOGLE = """{
  "calendarTags": [
        {"internalId":"0000000-0000-0000-0000-000000000001"},
      {"internalId":"0000000-0000-0000-0000-000000000002"},
      {"externalId":"TeamA"}],
  "timeZoneId": "Eastern Standard Time",
  "additionalOptIn":false,
  "emailAddress": "jsmith@gmail.com",
  "marketingAllowed": false,
  "urlReferrer": "http://m.facebook.com/",
  "ipAddress": "64.64.64.64",
  "userAgent": "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/46.0.2490.76 Safari/537.36 [FB_IAB/FB4A;FBAV/55.0.0.18.66;]",
  "utmSource": "Facebook",
  "utmMedium": "Display",
  "utmCampaign": "2016",
  "utmContent": "Mobile_320x50",
  "requestEventIds": ["8e71077bc7f242b8acb9bda8f804c0d7"],
  "externalEventIds": ["90712","37818"],
  "subscriberId": "jsmith",
  "subscriptionMethod": "google",
  "redirectTo": "https://yourdomain.com/confirmation"
}"""

# "Create New Subscription", second example (valid JSON as it stands).
SEED_CREATE_WITH_EVENTS = """{
  "events": [
         {
         "eventId": "BookingId:12345678",
         "title":"The Lion King",
         "description": "2 tickets to the Lion King at The Capital Theatre. Customer Support: 01-2345-6789",
         "location":"13 Campbell St, Haymarket NSW 2000",
         "timezone": "AUS Eastern Standard Time",
         "start": "2016-06-04T19:00:00+10",
         "end": "2016-06-04T23:00:00+10",
         "allDayEvent": false,
         "notifyBefore": 60
        }
],
  "userAgent": "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/46.0.2490.76 Safari/537.36 [FB_IAB/FB4A;FBAV/55.0.0.18.66;]",
  "subscriberId": "jsmith",
  "redirectTo": "https://yourdomain.com/confirmation"
}"""

# "Create New Webcal Subscription" (mended: `False` -> false).
SEED_WEBCAL = """{
  "calendarTags": [
        {"internalId":"0000000-0000-0000-0000-000000000001"},
      {"internalId":"0000000-0000-0000-0000-000000000002"},
      {"externalId":"TeamA"}],
  "TimeZoneId": "Eastern Standard Time",
  "EmailAddress": "jsmith@gmail.com",
  "additionalOptIn":false,
  "MarketingAllowed": false,
  "Referer": "http://m.facebook.com/",
  "UserAgent": "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/46.0.2490.76 Safari/537.36 [FB_IAB/FB4A;FBAV/55.0.0.18.66;]",
  "ChannelFinderZipCode": "90210",
  "ChannelFinderLineUpId": "USA-CA00053-DEFAULT",
  "ClickId": "ada0c00e-835a-4638-bb38-0873478f0d38",
  "SourceId": 1,
  "NetworkDevice": "CABLE",
  "ProviderName": "Time Warner Cable",
  "ProviderLocation": "Beverly Hills",
  "StationNum": "10741",
  "StationName": "KTTV",
  "UtmSource": "Facebook",
  "UtmMedium": "Display",
  "UtmCampaign": "2016",
  "UtmContent": "Mobile_320x50",
  "RequestEventIds": ["8e71077bc7f242b8acb9bda8f804c0d7"],
  "ExternalEventIds": ["90712","37818"],
  "UserName": "jsmith",
  "SubscriptionPlatformType": "apple"
}"""

# "Update Subscription Details", both examples (valid JSON; the second spells excludExternalEventIds).
SEED_UPDATE_INCLUDE = """{
  "calendarTags": [
        {"internalId":"0000000-0000-0000-0000-000000000001"},
      {"internalId":"0000000-0000-0000-0000-000000000002"},
      {"externalId":"TeamA"}],
  "timeZoneId": "Eastern Standard Time",
  "additionalOptIn":false,
  "marketingAllowed": false,
  "requestEventIds": ["8e71077bc7f242b8acb9bda8f804c0d7"],
  "externalEventIds": ["90712","37818"]
}"""
SEED_UPDATE_EXCLUDE = """{
  "calendarTags": [
        {"internalId":"0000000-0000-0000-0000-000000000001"},
      {"internalId":"0000000-0000-0000-0000-000000000002"},
      {"externalId":"TeamA"}],
  "timeZoneId": "Eastern Standard Time",
  "additionalOptIn":false,
  "marketingAllowed": false,
  "excludeRequestEventIds": ["8e71077bc7f242b8acb9bda8f804c0d7"],
  "excludExternalEventIds": ["90712","37818"]
}"""

# "Deactivate an Existing Subscription", both examples.
SEED_DEACTIVATE_ID = '{ "id": "0000000-0000-0000-0000-000000000001" }'
SEED_DEACTIVATE_USERNAME = '{ "username": "john.doe@mymail.com" }'

# "Create New Subscription Event", both examples (mended: trailing comma in subscriptionIds).
SEED_SUBSCRIPTION_EVENT = """{
    "event":{
        "eventId":"my event",
        "title":"Title of my event",
        "description":"description of my event",
        "location":"location of my event",
        "start":"2018-10-24T16:33:00",
        "end":"2018-10-24T17:33:00",
        "timezone":"AUS Eastern Standard Time",
        "notifyBefore":"15"
    },
    "subscriptionIds":[
        "fcaf2d43-bcbd-4c5a-a7c0-2eb480bb4fd3",
        "46388f6f-5941-48da-914c-22fed81209dd"
    ]
}"""
SEED_SUBSCRIPTION_EVENT_ALL_DAY = """{
    "event":{
        "eventId":"my event",
        "title":"Title of my event",
        "description":"description of my event",
        "location":"location of my event",
        "start":"2018-10-24T00:00:00",
        "timezone":"AUS Eastern Standard Time",
    "allDayEvent":true
    },
    "subscriptionIds":[
        "fcaf2d43-bcbd-4c5a-a7c0-2eb480bb4fd3",
        "46388f6f-5941-48da-914c-22fed81209dd"
    ]
}"""

IMAGE = "//s3-us-west-1.amazonaws.com/buyreply-app-qa/Upload/2015-11/87bb3bd2-1807-4eff-95f2-bd8f6275f195_lrg.jpg"


def with_real_tags(seed: str, tag_ids: list[str]) -> str:
    """The seed body with its two placeholder internal ids replaced by real tag ids."""
    text = seed.replace("0000000-0000-0000-0000-000000000001", tag_ids[0])
    return text.replace("0000000-0000-0000-0000-000000000002", tag_ids[1])


async def calendar_with_tags(m: Merchant, code: str, **extra: Any) -> list[str]:
    status, body = await m.call(
        "POST",
        f"/v1/calendars/{m.code}",
        {"code": code, "name": f"Calendar {code}", "image": IMAGE, "timezone": "Eastern Standard Time", **extra},
    )
    assert status == 201, body
    ids = []
    for name, external in (("All Teams", "AllTeams"), ("Team B", "TeamB"), ("Team A", "TeamA")):
        status, tag = await m.call(
            "POST", f"/v1/calendars/{m.code}/{code}/tags", {"name": name, "externalId": external}
        )
        assert status == 201, tag
        ids.append(tag["id"])
    for external, title in (("90712", "Montreal Canadiens vs Toronto Maple Leafs"), ("37818", "Bruins vs Rangers")):
        event = {"eventId": external, "title": title, "start": "2026-11-01T19:00:00", "tags": [{"externalId": "TeamA"}]}
        status, body = await m.call("POST", f"/v1/calendars/{m.code}/{code}/events", event)
        assert status == 201, body
    return ids


async def test_without_a_google_client_the_seeds_google_examples_are_refused_or_routed_to_webcal(
    acme: Merchant,
) -> None:
    """This stack has no KALENDS_GOOGLE_CLIENT_ID: an explicit Google subscription is a clear 409, and a
    subscriber routed to Google by their device gets webcal, never a dead end. (The Google shapes, with
    a Google double, are in tests/e2e/google.)"""
    tag_ids = await calendar_with_tags(acme, "acmecal_1")
    status, refused = await acme.call(
        "POST", f"/v2/subscribe/{acme.code}/acmecal_1", raw=with_real_tags(SEED_CREATE_GOOGLE, tag_ids)
    )
    assert status == 409, refused
    assert refused["errors"][0]["code"] == "GoogleNotConfigured"
    assert "KALENDS_GOOGLE_CLIENT_ID" in refused["errors"][0]["reason"]

    # The second example names no method; its Android (FB4A) user agent would route to Google.
    status, created = await acme.call("POST", f"/v1/subscribe/{acme.code}/acmecal_1", raw=SEED_CREATE_WITH_EVENTS)
    assert status == 200, created
    assert created["subscriptionType"] == "webcal" and created["isNewSubscription"] is True
    assert created["subscriptionUrl"].startswith("webcal://") and "redirectTo" not in created
    status, details = await acme.call("GET", f"/v1/subscription/{created['subscriptionId']}")
    assert details["subscriptionType"] == "webcal" and details["isActive"] is True
    assert details["deviceName"] == "Android Phone"
    (manual,) = details["manualEvents"]
    assert manual["externalId"] == "BookingId:12345678" and manual["title"] == "The Lion King"
    assert (manual["start"], manual["end"], manual["timezone"]) == (
        "2016-06-04T19:00:00",
        "2016-06-04T23:00:00",
        "Australia/Sydney",
    )
    assert manual["notifyBefore"] == 60


async def test_webcal_seed_example_answers_the_webcal_url_as_text(acme: Merchant, stack: Stack) -> None:
    tag_ids = await calendar_with_tags(acme, "acmecal_2")
    status, body = await acme.call("POST", f"/v1/webcal/{acme.code}/acmecal_2", raw=SEED_WEBCAL)
    assert status == 400 and body["errors"][0]["reason"].startswith("calendarTags[0]")
    status, url = await acme.call("POST", f"/v1/webcal/{acme.code}/acmecal_2", raw=with_real_tags(SEED_WEBCAL, tag_ids))
    assert status == 200, url
    feed_host = stack.url("feed").removeprefix("http://")
    match = re.fullmatch(rf"webcal://{re.escape(feed_host)}/v1/webcal/({UUID_RE})", url)
    assert match, url

    status, listed = await acme.call("GET", f"/v1/subscription/{acme.code}/acmecal_2/jsmith")
    assert status == 200 and isinstance(listed, list) and len(listed) == 1
    (sub,) = listed
    assert sub["subscriptionId"] == match.group(1) and sub["subscriptionType"] == "webcal"
    assert sub["emailAddress"] == "jsmith@gmail.com" and sub["timezoneId"] == "Eastern Standard Time"
    assert sub["urlReferrer"] == "http://m.facebook.com/" and sub["enteredPostCode"] == "90210"
    assert sub["cableProvider"] == "Time Warner Cable" and sub["cableProviderLocation"] == "Beverly Hills"
    # The seed's channel-finder extras are kept with the analytics (camelCase, as every GET name is).
    assert (sub["clickId"], sub["sourceId"], sub["networkDevice"]) == (
        "ada0c00e-835a-4638-bb38-0873478f0d38",
        "1",
        "CABLE",
    )
    assert (sub["stationNum"], sub["stationName"]) == ("10741", "KTTV")
    assert sub["channelFinderLineUpId"] == "USA-CA00053-DEFAULT" and sub["subscriptionPlatformType"] == "apple"
    assert "countryCode" not in sub  # this stack has no KALENDS_GEOIP_DB


async def test_update_seed_examples_set_include_and_exclude_lists(acme: Merchant) -> None:
    tag_ids = await calendar_with_tags(acme, "acmecal_3")
    status, created = await acme.call(
        "POST", f"/v1/subscribe/{acme.code}/acmecal_3", {"subscriberId": "ann", "userAgent": "Mozilla/5.0 (X11)"}
    )
    assert status == 200 and created["subscriptionType"] == "webcal" and created["isNewSubscription"] is True
    path = f"/v1/subscription/{acme.code}/acmecal_3/{created['subscriptionId']}"

    status, body = await acme.call("PUT", path, raw=SEED_UPDATE_INCLUDE)
    assert status == 400 and body["errors"][0]["reason"].startswith("calendarTags[0].internalId")
    for seed in (SEED_UPDATE_INCLUDE, SEED_UPDATE_EXCLUDE):
        status, body = await acme.call("PUT", path, raw=with_real_tags(seed, tag_ids))
        assert status == 200, body
        assert body["success"] is True and body["message"] == "Subscription updated"
        assert body["statusCode"] == 200 and body["errors"] == []
        assert body["subscriptionId"] == created["subscriptionId"] and body["subscriptionType"] == "webcal"
    status, details = await acme.call("GET", f"/v1/subscription/{created['subscriptionId']}")
    flags = {(e["externalId"], e["isExcluded"]) for e in details["events"]}
    assert flags == {("90712", False), ("37818", False), ("90712", True), ("37818", True)}
    assert details["timezoneId"] == "Eastern Standard Time" and len(details["tags"]) == 3
    assert details["marketingAllowed"] is False


async def test_deactivate_seed_examples_by_id_and_by_username(acme: Merchant) -> None:
    await calendar_with_tags(acme, "acmecal_4")
    status, body = await acme.call("DELETE", f"/v1/subscription/{acme.code}/acmecal_4/", raw=SEED_DEACTIVATE_ID)
    assert status == 404 and body["errors"][0]["reason"].startswith("id:")

    # One active subscription per subscriber and type, and this stack has no Google client: one webcal
    # subscription here. (A webcal and a Google subscription of one username: tests/e2e/google.)
    ids = []
    status, created = await acme.call(
        "POST",
        f"/v1/subscribe/{acme.code}/acmecal_4",
        {"subscriberId": "john.doe@mymail.com", "subscriptionMethod": "WebCal"},
    )
    assert status == 200, created
    ids.append(created["subscriptionId"])
    status, body = await acme.call("DELETE", f"/v1/subscription/{acme.code}/acmecal_4/", raw=SEED_DEACTIVATE_USERNAME)
    assert status == 200, body
    assert sorted(s["subscriptionId"] for s in body["subscriptions"]) == sorted(ids)
    assert all(s["isActive"] is False and s["deactivatedDate"] for s in body["subscriptions"])
    status, listed = await acme.call("GET", f"/v1/subscription/{acme.code}/acmecal_4/john.doe@mymail.com")
    assert status == 200 and len(listed) == 1
    assert all(s["isActive"] is False and s["deactivatedDate"] for s in listed)

    status, single = await acme.call(
        "POST", f"/v1/subscribe/{acme.code}/acmecal_4", {"subscriberId": "solo", "subscriptionMethod": "WebCal"}
    )
    status, body = await acme.call(
        "DELETE", f"/v1/subscription/{acme.code}/acmecal_4", {"id": single["subscriptionId"]}
    )
    assert status == 200 and body["subscriptions"][0]["isActive"] is False
    status, details = await acme.call("GET", f"/v1/subscription/{single['subscriptionId']}")
    assert details["isActive"] is False and details["actionType"] == "DeactivatedById"
    assert details["deactivatedDate"] >= details["createdAt"]


async def test_subscription_event_seed_examples_are_accepted_with_202(acme: Merchant) -> None:
    for seed in (SEED_SUBSCRIPTION_EVENT, SEED_SUBSCRIPTION_EVENT_ALL_DAY):
        status, body = await acme.call("POST", f"/v1/subscriptionevent/{acme.code}", raw=seed)
        assert status == 202, body
        assert body == ""
    broken = json.loads(SEED_SUBSCRIPTION_EVENT)
    broken["subscriptionIds"].append("not-a-guid")
    status, body = await acme.call("POST", f"/v1/subscriptionevent/{acme.code}", broken)
    assert status == 400 and body["errors"][0]["reason"].startswith("subscriptionIds[2]")
    del broken["event"]["eventId"]
    broken["subscriptionIds"].pop()
    status, body = await acme.call("POST", f"/v1/subscriptionevent/{acme.code}", broken)
    assert status == 400 and body["errors"][0]["reason"].startswith("event.eventId")


async def test_protected_calendars_give_webcal_urls_with_the_username_and_a_random_password(acme: Merchant) -> None:
    status, _ = await acme.call("POST", f"/v1/calendars/{acme.code}", {"code": "vip", "name": "VIP", "protected": True})
    assert status == 201
    status, body = await acme.call("POST", f"/v1/webcal/{acme.code}/vip", {})
    assert status == 400 and body["errors"][0]["reason"].startswith("subscriberId")
    urls = []
    for _ in range(2):
        status, url = await acme.call("POST", f"/v1/webcal/{acme.code}/vip", {"UserName": "fan@example.com"})
        assert status == 200, url
        urls.append(url)
    pattern = rf"webcal://fan%40example.com:([A-Za-z0-9_\-]{{32,}})@[^/]+/v1/webcal/({UUID_RE})"
    first, second = (re.fullmatch(pattern, u) for u in urls)
    assert first and second
    assert first.group(2) == second.group(2)  # the same subscription...
    assert first.group(1) == second.group(1)  # ...with the same password: re-subscribing gives the same URL
    assert uuid.UUID(first.group(2))


async def test_the_seeds_deactivation_curl_is_a_post_with_a_body(acme: Merchant) -> None:
    await calendar_with_tags(acme, "acmecal_5")
    status, body = await acme.call("POST", f"/v1/subscription/{acme.code}/acmecal_5/", raw=SEED_DEACTIVATE_ID)
    assert status == 404 and body["errors"][0]["reason"].startswith("id:")
    subscribe = {"subscriberId": "john.doe@mymail.com", "userAgent": "Mozilla/5.0 (Windows NT 10.0)"}
    status, created = await acme.call("POST", f"/v1/subscribe/{acme.code}/acmecal_5", subscribe)
    assert status == 200, created
    status, body = await acme.call("POST", f"/v1/subscription/{acme.code}/acmecal_5/", raw=SEED_DEACTIVATE_USERNAME)
    assert status == 200, body
    assert body["success"] is True and body["statusCode"] == 200 and body["errors"] == []
    assert [s["subscriptionId"] for s in body["subscriptions"]] == [created["subscriptionId"]]
    status, details = await acme.call("GET", f"/v1/subscription/{created['subscriptionId']}")
    assert details["isActive"] is False and details["actionType"] == "DeactivatedByUsername"


async def test_without_user_agent_or_subscription_method_the_seeds_subscribe_is_a_400(acme: Merchant) -> None:
    await calendar_with_tags(acme, "acmecal_6")
    seed = json.loads(SEED_CREATE_WITH_EVENTS)
    del seed["userAgent"]
    status, body = await acme.call("POST", f"/v1/subscribe/{acme.code}/acmecal_6", seed)
    assert status == 400, body
    reason = body["errors"][0]["reason"]
    assert reason.startswith("userAgent:") and "subscriptionMethod" in reason
