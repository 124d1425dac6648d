"""Property: arbitrary JSON bodies on every ingest route never give a 500 (or a non-JSON error)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Merchant

pytestmark = pytest.mark.e2e

# Every name any ingest body knows, in the spellings the seeds use, so generated bodies reach
# deep validation rather than stopping at "unknown field".
NAMES = [
    "code", "name", "description", "image", "color", "timezone", "protected", "refreshInterval",
    "singleSubscriptionPerSubscriber", "externalId", "eventId", "title", "location", "start", "end",
    "allDayEvent", "notifyBefore", "tags", "timeZoneTag", "url", "status", "transparency", "class",
    "categories", "organizer", "attendees", "conference", "recurrence", "subscriberId", "UserName",
    "emailAddress", "additionalOptIn", "marketingAllowed", "redirectTo", "calendarTags", "timeZoneId",
    "TimeZoneId", "requestEventIds", "externalEventIds", "excludeRequestEventIds", "excludExternalEventIds",
    "utmSource", "userAgent", "urlReferrer", "Referer", "ipAddress", "subscriptionMethod", "events",
    "event", "subscriptionIds", "id", "username", "internalId", "email", "role", "rsvp",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "2026-01-01",
            "2026-01-01T10:00:00+10",
            "RRULE:FREQ=DAILY;COUNT=2",
            "EXDATE:20260101T100000",
            "Eastern Standard Time",
            "Europe/Paris",
            "google",
            "webcal",
            "\x00",
            "\ud800",
            "9999-12-31T23:59:59",
            "0001-01-01",
            str(uuid.uuid4()),
            "x" * 3000,
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=8), inner),
    max_leaves=25,
)
bodies = (
    json_values
    | st.dictionaries(st.sampled_from(NAMES), json_values, max_size=10)
    | st.builds(
        lambda extra: {"eventId": "e", "title": "t", "start": "2026-01-01T10:00:00", **extra},
        st.dictionaries(st.sampled_from(NAMES), json_values, max_size=4),
    )
    | st.builds(
        lambda event, ids: {"event": event, "subscriptionIds": ids},
        st.dictionaries(st.sampled_from(NAMES), json_values, max_size=8),
        st.lists(st.uuids().map(str) | st.text(max_size=10), max_size=3),
    )
)


@dataclass(frozen=True)
class Target:
    base: str
    token: str
    code: str
    subscription_id: str
    event_id: str


@pytest.fixture(scope="module")
async def target(acme: Merchant) -> Target:
    status, _ = await acme.call("POST", f"/v1/calendars/{acme.code}", {"code": "fuzz", "name": "Fuzz"})
    assert status == 201
    status, _ = await acme.call("POST", f"/v1/calendars/{acme.code}/fuzz/tags", {"name": "T", "externalId": "T"})
    status, event = await acme.call(
        "POST", f"/v1/calendars/{acme.code}/fuzz/events", {"eventId": "e", "title": "t", "start": "2026-01-01"}
    )
    assert status == 201
    status, sub = await acme.call(
        "POST", f"/v1/subscribe/{acme.code}/fuzz", {"subscriberId": "fuzzer", "subscriptionMethod": "webcal"}
    )
    assert status == 200
    return Target(acme.base, acme.token, acme.code, sub["subscriptionId"], event["id"])


ROUTES = [
    ("POST", "/v1/calendars/{a}"),
    ("PUT", "/v1/calendars/{a}/fuzz"),
    ("POST", "/v1/calendars/{a}/fuzz/tags"),
    ("POST", "/v1/calendars/{a}/fuzz/events"),
    ("PUT", "/v1/calendars/{a}/fuzz/events/{e}"),
    ("PATCH", "/v1/calendars/{a}/fuzz/events/e"),
    ("DELETE", "/v1/calendars/{a}/fuzz/events/nothing-here"),
    ("POST", "/v1/subscribe/{a}/fuzz"),
    ("POST", "/v2/subscribe/{a}/fuzz"),
    ("PUT", "/v1/subscription/{a}/fuzz/{s}"),
    ("DELETE", "/v1/subscription/{a}/fuzz"),
    ("POST", "/v1/subscription/{a}/fuzz"),
    ("POST", "/v1/subscription/{a}/fuzz/{s}/rotate-credentials"),
    ("POST", "/v1/webcal/{a}/fuzz"),
    ("POST", "/v1/subscriptionevent/{a}"),
    ("GET", "/v1/subscription/{s}"),
    ("GET", "/v1/subscription/{a}/fuzz/fuzzer"),
    ("GET", "/v1/calendars/{a}/fuzz/events"),
    ("POST", "/v1/unsubscribe/{u}"),
]


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_arbitrary_json_bodies_never_give_a_500(target: Target, method: str, template: str) -> None:
    path = template.format(a=target.code, s=target.subscription_id, e=target.event_id, u=uuid.uuid4())
    with httpx.Client(base_url=target.base, headers={"Authorization": f"Bearer {target.token}"}, timeout=30) as client:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(body=bodies)
        def check(body: Any) -> None:
            response = client.request(
                method, path, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )
            assert response.status_code < 500, (response.status_code, response.text[:500], body)
            if response.status_code >= 400 and "unsubscribe" not in path:
                error = response.json()
                assert error["success"] is False and error["errors"][0]["reason"], error

        check()
