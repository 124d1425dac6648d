"""CalDAV subscriptions end to end: ingest's public API in, a real Radicale calendar out, read back
with the `caldav` client library."""

from __future__ import annotations

import time

from shared.testing import Stack
from tests.e2e.sync.conftest import SYNC_ENV, Merchant, eventually


def summaries(remote: dict[str, dict[str, str]]) -> set[str]:
    return {event["summary"] for event in remote.values()}


async def test_a_caldav_subscription_gets_its_events_and_keeps_a_webcal_feed(merchant: Merchant) -> None:
    cal = await merchant.new_calendar()
    await merchant.add_event(cal, externalId="g1", title="Opening night")
    await merchant.add_event(
        cal, externalId="g2", title="Derby", allDayEvent=True, start="2026-04-12", end="2026-04-12"
    )
    fan = await merchant.subscribe_caldav(cal)
    assert fan.answer["success"] is True and fan.answer["subscriptionType"] == "caldav"
    assert fan.calendar_url.startswith(merchant.radicale.url) and fan.answer["isNewSubscription"] is True
    remote = await merchant.until(fan, lambda r: len(r) == 2)
    assert summaries(remote) == {"Opening night", "Derby"}
    # The webcal feed stays the subscriber's fallback and shows the same events.
    async with merchant.session.get(fan.answer["subscriptionUrl"].replace("webcal://", "http://")) as response:
        body = await response.text()
    assert response.status == 200 and "Opening night" in body and "Derby" in body
    details = await merchant.call("GET", f"/v1/subscription/{fan.answer['subscriptionId']}")
    assert details["subscriptionType"] == "caldav" and details["calendarUrl"] == fan.calendar_url


async def test_a_patched_event_is_updated_in_the_pushed_calendar_within_seconds(merchant: Merchant) -> None:
    cal = await merchant.new_calendar()
    await merchant.add_event(cal, externalId="final", title="Final 19:00")
    fan = await merchant.subscribe_caldav(cal)
    await merchant.until(fan, lambda r: len(r) == 1)
    started = time.monotonic()
    await merchant.call("PATCH", f"/v1/calendars/{merchant.code}/{cal}/events/final", {"title": "Final 20:00"})
    remote = await merchant.until(fan, lambda r: summaries(r) == {"Final 20:00"}, timeout=10)
    assert summaries(remote) == {"Final 20:00"}
    assert time.monotonic() - started < 5
    assert len(merchant.radicale.requests("PUT", fan.path)) == 2


async def test_a_filter_update_removes_the_events_it_no_longer_selects(merchant: Merchant) -> None:
    cal = await merchant.new_calendar()
    base = f"/v1/calendars/{merchant.code}/{cal}"
    home = await merchant.call("POST", base + "/tags", {"name": "Home"}, want=201)
    away = await merchant.call("POST", base + "/tags", {"name": "Away"}, want=201)
    await merchant.add_event(cal, externalId="h", title="Home game", tags=[home["id"]])
    await merchant.add_event(cal, externalId="a", title="Away game", tags=[away["id"]])
    fan = await merchant.subscribe_caldav(cal)
    await merchant.until(fan, lambda r: len(r) == 2)
    sid = fan.answer["subscriptionId"]
    await merchant.call("PUT", f"/v1/subscription/{merchant.code}/{cal}/{sid}", {"calendarTags": [home["id"]]})
    remote = await merchant.until(fan, lambda r: summaries(r) == {"Home game"})
    assert summaries(remote) == {"Home game"}


async def test_a_deactivated_subscription_gets_no_more_pushes_and_keeps_its_calendar(merchant: Merchant) -> None:
    cal = await merchant.new_calendar()
    await merchant.add_event(cal, externalId="x", title="Before")
    fan = await merchant.subscribe_caldav(cal)
    await merchant.until(fan, lambda r: len(r) == 1)
    await merchant.call("DELETE", f"/v1/subscription/{merchant.code}/{cal}", {"id": fan.answer["subscriptionId"]})
    await merchant.call("PATCH", f"/v1/calendars/{merchant.code}/{cal}/events/x", {"title": "After"})
    await merchant.add_event(cal, externalId="y", title="New after")
    # A control subscriber on the same calendar proves the changes went through sync meanwhile.
    control = await merchant.subscribe_caldav(cal)
    await merchant.until(control, lambda r: summaries(r) == {"After", "New after"})
    assert summaries(await merchant.remote(fan)) == {"Before"}
    assert len(merchant.radicale.requests("PUT", fan.path)) == 1
    assert merchant.radicale.requests("DELETE", fan.path) == []


async def test_a_wrong_caldav_password_is_a_clear_400_and_creates_nothing(merchant: Merchant) -> None:
    cal = await merchant.new_calendar()
    async with merchant.session.post(
        merchant.stack.url("ingest") + f"/v1/subscribe/{merchant.code}/{cal}",
        json={
            "subscriberId": "wrong-password",
            "subscriptionMethod": "caldav",
            "caldav": {"url": merchant.radicale.url, "username": "nobody", "password": "wrong"},
        },
        headers={"Authorization": f"Bearer {merchant.token}"},
    ) as response:
        body = await response.json()
    assert response.status == 400, body
    (error,) = body["errors"]
    assert error["code"] == "CalDavUnauthorized" and "refused the username and password" in error["reason"]
    listed = await merchant.call("GET", f"/v1/subscription/{merchant.code}/{cal}/wrong-password")
    assert listed == []


async def test_caldav_without_its_server_or_to_a_private_address_is_refused_clearly(merchant: Merchant) -> None:
    cal = await merchant.new_calendar()
    missing = await merchant.call(
        "POST", f"/v1/subscribe/{merchant.code}/{cal}", {"subscriptionMethod": "caldav"}, want=400
    )
    assert "caldav" in missing["errors"][0]["reason"]
    bad_url = await merchant.call(
        "POST",
        f"/v1/subscribe/{merchant.code}/{cal}",
        {"subscriptionMethod": "caldav", "caldav": {"url": "file:///etc/passwd", "username": "u", "password": "p"}},
        want=400,
    )
    assert "caldav.url" in bad_url["errors"][0]["reason"]


async def test_a_password_changed_on_the_server_deactivates_the_subscription_with_a_reason(
    merchant: Merchant,
) -> None:
    cal = await merchant.new_calendar()
    fan = await merchant.subscribe_caldav(cal)
    users = merchant.radicale.users_path
    kept = [line for line in users.read_text().splitlines() if not line.startswith(f"{fan.username}:")]
    users.write_text("\n".join([*kept, f"{fan.username}:changed-on-the-server"]) + "\n")
    await merchant.add_event(cal, externalId="z", title="Cannot be pushed")

    async def inactive() -> bool:
        details = await merchant.call("GET", f"/v1/subscription/{fan.answer['subscriptionId']}")
        return details["isActive"] is False

    assert await eventually(inactive)
    details = await merchant.call("GET", f"/v1/subscription/{fan.answer['subscriptionId']}")
    assert details["actionType"] == "DeactivatedByProvider"
    assert details["unsubscribeReason"].startswith("Unauthorized: ")
    assert "refused the stored credentials" in details["unsubscribeReason"]


async def test_restarting_sync_mid_fan_out_pushes_nothing_twice_and_misses_nothing(
    merchant: Merchant, sync_stack: Stack
) -> None:
    cal = await merchant.new_calendar()
    fans = [await merchant.subscribe_caldav(cal) for _ in range(16)]
    await sync_stack.start("sync", env={**SYNC_ENV, "KALENDS_SYNC_CONCURRENCY": "2"})
    for i in range(3):
        day = f"2026-05-0{i + 1}"
        await merchant.add_event(
            cal, externalId=f"f{i}", title=f"Fan-out {i}", start=f"{day}T10:00:00", end=f"{day}T11:00:00"
        )
    # Stop the worker while the fan-out is under way (SIGTERM: in-flight pushes finish and are recorded).
    assert await eventually(lambda: _some_pushed(merchant, fans), timeout=60)
    # SIGTERM, with time for the pushes in flight to finish and be recorded (a busy machine is slow).
    sync_stack.processes["sync"].stop(timeout=60)
    assert sync_stack.processes["sync"].process is not None
    assert sync_stack.processes["sync"].process.returncode == 0, sync_stack.processes["sync"].log_tail()
    before_restart = sum(len(merchant.radicale.requests("PUT", fan.path)) for fan in fans)
    assert 0 < before_restart < 3 * len(fans), before_restart  # the restart did cut the fan-out
    await sync_stack.start("sync", env=SYNC_ENV)
    for fan in fans:
        remote = await merchant.until(fan, lambda r: len(r) == 3, timeout=30)
        assert summaries(remote) == {"Fan-out 0", "Fan-out 1", "Fan-out 2"}, fan.username
        assert len(merchant.radicale.requests("PUT", fan.path)) == 3, merchant.radicale.requests("PUT", fan.path)


async def _some_pushed(merchant: Merchant, fans: list) -> bool:  # type: ignore[type-arg]
    return any(merchant.radicale.requests("PUT", fan.path) for fan in fans)


async def test_sync_serves_the_common_routes_and_its_connect_route_needs_the_accounts_token(
    merchant: Merchant, sync_stack: Stack
) -> None:
    from openapi_spec_validator import validate

    base = sync_stack.url("sync")
    async with merchant.session.get(base + "/openapi.json") as response:
        document = await response.json()
    validate(document)
    assert "post" in document["paths"]["/v1/caldav/{accountCode}/connections"]
    async with merchant.session.get(base + "/readyz") as response:
        assert response.status == 200
    async with merchant.session.get(base + "/metrics") as response:
        assert "sync_pushes_total" in await response.text()
    connect = base + f"/v1/caldav/{merchant.code}/connections"
    body = {"url": merchant.radicale.url, "username": "x", "password": "y"}
    async with merchant.session.post(connect, json=body) as response:
        assert response.status == 401
    async with merchant.session.post(
        base + "/v1/caldav/someone-else/connections", json=body, headers={"Authorization": f"Bearer {merchant.token}"}
    ) as response:
        assert response.status == 403


async def test_with_sync_down_a_caldav_subscribe_is_a_503_and_creates_nothing(
    merchant: Merchant, sync_stack: Stack
) -> None:
    cal = await merchant.new_calendar()
    sync_stack.processes["sync"].stop()
    try:
        body = {
            "subscriberId": "while-down",
            "subscriptionMethod": "caldav",
            "caldav": {"url": merchant.radicale.url, "username": "u", "password": "p"},
        }
        answer = await merchant.call("POST", f"/v1/subscribe/{merchant.code}/{cal}", body, want=503)
        assert "sync service" in answer["errors"][0]["reason"]
        assert await merchant.call("GET", f"/v1/subscription/{merchant.code}/{cal}/while-down") == []
    finally:
        await sync_stack.start("sync", env=SYNC_ENV)
