"""The ingest app's HTTP surface: its OpenAPI document, token checks and time-zone handling."""

from __future__ import annotations

from tests.integration.ingest.conftest import Harness

CONTRACT_ROUTES = {
    ("post", "/v1/subscribe/{accountCode}/{calendarCode}"),
    ("post", "/v2/subscribe/{accountCode}/{calendarCode}"),
    ("get", "/v1/subscription/{subscriptionId}"),
    ("get", "/v1/subscription/{accountCode}/{calendarCode}/{username}"),
    ("put", "/v1/subscription/{accountCode}/{calendarCode}/{subscriptionId}"),
    ("delete", "/v1/subscription/{accountCode}/{calendarCode}"),
    ("post", "/v1/webcal/{merchantCode}/{calCode}"),
    ("post", "/v1/subscriptionevent/{accountCode}"),
    ("post", "/v1/calendars/{accountCode}"),
    ("get", "/v1/calendars/{accountCode}"),
    ("get", "/v1/calendars/{accountCode}/{calendarCode}"),
    ("put", "/v1/calendars/{accountCode}/{calendarCode}"),
    ("delete", "/v1/calendars/{accountCode}/{calendarCode}"),
    ("post", "/v1/calendars/{accountCode}/{calendarCode}/tags"),
    ("get", "/v1/calendars/{accountCode}/{calendarCode}/tags"),
    ("post", "/v1/calendars/{accountCode}/{calendarCode}/events"),
    ("get", "/v1/calendars/{accountCode}/{calendarCode}/events"),
    ("get", "/v1/calendars/{accountCode}/{calendarCode}/events/{eventId}"),
    ("put", "/v1/calendars/{accountCode}/{calendarCode}/events/{eventId}"),
    ("patch", "/v1/calendars/{accountCode}/{calendarCode}/events/{eventId}"),
    ("delete", "/v1/calendars/{accountCode}/{calendarCode}/events/{eventId}"),
    ("get", "/v1/unsubscribe/{subscriptionId}"),
    ("post", "/v1/unsubscribe/{subscriptionId}"),
}


async def test_the_openapi_document_lists_every_contract_route(harness: Harness) -> None:
    response = await harness.client.get("/openapi.json")
    document = await response.json()
    served = {(method, path) for path, item in document["paths"].items() for method in item}
    assert CONTRACT_ROUTES <= served
    assert "security" not in document["paths"]["/v1/unsubscribe/{subscriptionId}"]["get"]
    assert document["paths"]["/v1/subscription/{subscriptionId}"]["get"]["security"] == [{"bearer": []}]


async def test_requests_without_a_valid_token_are_401_and_another_accounts_are_403(harness: Harness) -> None:
    m = harness.merchant()
    assert (await harness.client.get(f"/v1/calendars/{m.code}")).status == 401
    expired = harness.issuer.token(m.account_id, m.code, expires_in=-3600)
    response = await harness.client.get(f"/v1/calendars/{m.code}", headers={"Authorization": f"Bearer {expired}"})
    assert response.status == 401
    response = await harness.client.get("/v1/calendars/someone-else", headers=m.headers)
    body = await response.json()
    assert response.status == 403 and body["errors"][0]["code"] == "Forbidden"


async def test_a_calendar_without_timezone_is_utc_and_its_events_take_it(harness: Harness) -> None:
    m = harness.merchant()
    response = await harness.client.post(f"/v1/calendars/{m.code}", json={"code": "c", "name": "C"}, headers=m.headers)
    assert (await response.json())["timezone"] == "UTC"
    event = {"title": "t", "start": "2026-03-29T01:30:00", "timezone": "W. Europe Standard Time"}
    response = await harness.client.post(f"/v1/calendars/{m.code}/c/events", json=event, headers=m.headers)
    body = await response.json()
    assert response.status == 201 and body["timezone"] == "Europe/Berlin" and body["externalId"] is None
    response = await harness.client.post(
        f"/v1/calendars/{m.code}/c/events", json={"title": "u", "start": "2026-01-01"}, headers=m.headers
    )
    assert (await response.json())["timezone"] == "UTC"
