"""Seed 002 as written: always-present statusCode/errors, userAgent's rule, POST deactivation, webcal extras."""

from __future__ import annotations

from typing import Any

from tests.integration.ingest.conftest import Harness, Merchant

UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15"
# The seed's webcal calendarParams extras, spelled as its example spells them.
EXTRAS = {
    "ChannelFinderLineUpId": "USA-CA00053-DEFAULT",
    "ClickId": "ada0c00e-835a-4638-bb38-0873478f0d38",
    "SourceId": 1,
    "NetworkDevice": "CABLE",
    "StationNum": "10741",
    "StationName": "KTTV",
    "SubscriptionPlatformType": "apple",
}


async def _call(h: Harness, m: Merchant, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    response = await h.client.request(method, path, json=body, headers=m.headers)
    payload = await response.json() if response.content_type == "application/json" else await response.text()
    assert response.status == status, payload
    return payload


async def _calendar(h: Harness, m: Merchant, code: str = "season") -> None:
    await _call(h, m, "POST", f"/v1/calendars/{m.code}", {"code": code, "name": "Season"}, 201)


async def test_success_bodies_carry_status_code_and_an_empty_error_list(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    path = f"/v1/subscribe/{m.code}/season"
    # This stack has no Google client: the chosen-method path is webcal here (Google's answers are in tests/e2e/google).
    chosen = {"subscriberId": "g", "subscriptionMethod": "WebCal"}
    answers = [
        await _call(h, m, "POST", path, {"subscriberId": "w", "userAgent": UA}),  # webcal, new
        await _call(h, m, "POST", path, {"subscriberId": "w", "userAgent": UA}),  # webcal, existing
        await _call(h, m, "POST", path, chosen),  # chosen method, new
        await _call(h, m, "POST", path, chosen),  # chosen method, existing
    ]
    sid = answers[0]["subscriptionId"]
    answers.append(await _call(h, m, "PUT", f"/v1/subscription/{m.code}/season/{sid}", {"marketingAllowed": True}))
    answers.append(await _call(h, m, "DELETE", f"/v1/subscription/{m.code}/season", {"id": sid}))
    for answer in answers:
        assert answer["success"] is True and answer["statusCode"] == 200 and answer["errors"] == [], answer


async def test_user_agent_is_required_when_no_subscription_method_is_given(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    for body in ({"subscriberId": "a"}, {"subscriberId": "a", "userAgent": "  ", "subscriptionMethod": ""}, None):
        answer = await _call(h, m, "POST", f"/v1/subscribe/{m.code}/season", body, status=400)
        reason = answer["errors"][0]["reason"]
        assert reason.startswith("userAgent:") and "subscriptionMethod" in reason, reason
    assert (await _call(h, m, "POST", f"/v1/subscribe/{m.code}/season", {"userAgent": UA}))["success"]
    chosen = await _call(h, m, "POST", f"/v2/subscribe/{m.code}/season", {"subscriptionMethod": "WebCal"})
    assert chosen["subscriptionType"] == "webcal"
    # The webcal-only route picks its path itself: userAgent stays optional there.
    url = await _call(h, m, "POST", f"/v1/webcal/{m.code}/season", {"UserName": "b"})
    assert url.startswith("webcal://")


async def test_the_seeds_deactivation_curl_posts_its_body_and_deactivates(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    by_id = await _call(h, m, "POST", f"/v1/subscribe/{m.code}/season", {"subscriberId": "one", "userAgent": UA})
    named = [
        await _call(h, m, "POST", f"/v1/subscribe/{m.code}/season", {"subscriberId": "john", **method})
        for method in ({"userAgent": UA},)
    ]
    answer = await _call(h, m, "POST", f"/v1/subscription/{m.code}/season/", {"id": by_id["subscriptionId"]})
    assert [s["subscriptionId"] for s in answer["subscriptions"]] == [by_id["subscriptionId"]]
    answer = await _call(h, m, "POST", f"/v1/subscription/{m.code}/season", {"username": "john"})
    assert sorted(s["subscriptionId"] for s in answer["subscriptions"]) == sorted(n["subscriptionId"] for n in named)
    for sid in [by_id["subscriptionId"], *(n["subscriptionId"] for n in named)]:
        details = await _call(h, m, "GET", f"/v1/subscription/{sid}")
        assert details["isActive"] is False and details["deactivatedDate"]
    answer = await _call(h, m, "POST", f"/v1/subscription/{m.code}/season", {}, status=400)
    assert "id" in answer["errors"][0]["reason"] and "username" in answer["errors"][0]["reason"]


async def test_webcal_extras_are_kept_with_the_analytics_and_returned(harness: Harness) -> None:
    h, m = harness, harness.merchant()
    await _calendar(h, m)
    await _call(h, m, "POST", f"/v1/webcal/{m.code}/season", {"UserName": "x", "ipAddress": "64.64.64.64", **EXTRAS})
    (details,) = await _call(h, m, "GET", f"/v1/subscription/{m.code}/season/x")
    assert details["clickId"] == EXTRAS["ClickId"] and details["sourceId"] == "1"
    assert (details["networkDevice"], details["stationNum"], details["stationName"]) == ("CABLE", "10741", "KTTV")
    assert details["channelFinderLineUpId"] == "USA-CA00053-DEFAULT"
    assert details["subscriptionPlatformType"] == "apple"
    # Without KALENDS_GEOIP_DB there is no country: the keys are left out, not null.
    assert "countryCode" not in details and "geoCountry" not in details
    plain = await _call(h, m, "POST", f"/v1/subscribe/{m.code}/season", {"subscriberId": "y", "userAgent": UA})
    details = await _call(h, m, "GET", f"/v1/subscription/{plain['subscriptionId']}")
    assert not {"clickId", "stationName", "subscriptionPlatformType"} & set(details)
