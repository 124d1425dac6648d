"""Seed 000 (Convier) end to end: auth and mail as processes, a real aiosmtpd server receiving the
invitations, the seed's curl body byte for byte, updates by UID, and Convier's error codes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
from icalendar import Calendar

from shared.testing import Stack
from shared.testing_smtp import SmtpServer

pytestmark = pytest.mark.e2e

# The seed's example as `curl -d` sends it: the -d values joined by '&', not URL-encoded, with
# Content-Type application/x-www-form-urlencoded. Only USER_EMAIL is replaced.
SEED_CURL_DATA = [
    "event[start][date]=04/26/2019 09:00 PM",
    "event[end][date]=04/26/2019 11:00 PM",
    "event[organizer][name]=Tony Stark",
    "event[organizer][email]=ironman@avengers.com",
    "event[summary][value]=Endgame premiere",
    "event[description][value]=Bring the popcorn.",
    "email[subject]=Yo!",
    "email[body]=This the premiere of Endgame movie. Bring the popcon.",
    "event[attendees][0][email]=USER_EMAIL",
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="module")
async def api_key(stack: Stack, smtp: SmtpServer, http: aiohttp.ClientSession) -> str:
    await stack.start("auth")
    await stack.start("mail", env={"KALENDS_SMTP_URL": smtp.url, "KALENDS_MAIL_FROM": "calendar@kalends.test"})
    account = await stack.new_account(name="Avengers")
    key = str((await stack.admin("create-api-key", account["accountCode"]))["apiKey"])
    deadline = time.monotonic() + 20  # api_key.created reaches mail through auth's outbox
    while True:
        status, _ = await post(stack, http, "event", b"", key)
        if status != 401 or time.monotonic() > deadline:
            assert status == 400
            return key
        await asyncio.sleep(0.2)


async def post(
    stack: Stack, http: aiohttp.ClientSession, component: str, body: bytes | dict[str, Any], token: str | None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"data": body, "headers": FORM | headers}
    kwargs.setdefault("headers", headers)
    async with http.post(stack.url("mail") + f"/api/{component}", **kwargs) as response:
        return response.status, await response.json()


async def mail_to(smtp: SmtpServer, address: str, count: int = 1, timeout: float = 20.0) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while True:
        found = [r.parsed() for r in smtp.received if address in r.recipients]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} of {count} messages to {address} arrived")
        await asyncio.sleep(0.1)


def calendar_of(message: EmailMessage) -> Any:
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    return Calendar.from_ical(part.get_content())


async def test_the_seeds_curl_example_sends_the_attendee_an_invitation(
    stack: Stack, smtp: SmtpServer, http: aiohttp.ClientSession, api_key: str
) -> None:
    body = "&".join(SEED_CURL_DATA).replace("USER_EMAIL", "peter@example.com").encode()
    status, answer = await post(stack, http, "event", body, api_key)
    assert status == 200, answer
    assert answer["error"] is False and answer["uid"] and answer["data"] is None
    (message,) = await mail_to(smtp, "peter@example.com")
    assert message["Subject"] == "Yo!"
    calendar = calendar_of(message)
    event = calendar.walk("VEVENT")[0]
    assert calendar["METHOD"] == "REQUEST" and str(event["UID"]) == answer["uid"]
    assert event["SUMMARY"] == "Endgame premiere" and int(event["SEQUENCE"]) == 0
    assert str(event["ORGANIZER"]).lower() == "mailto:ironman@avengers.com"
    assert str(event["ATTENDEE"]).lower() == "mailto:peter@example.com"
    assert event["ATTENDEE"].params["PARTSTAT"] == "NEEDS-ACTION"


async def test_posting_the_same_uid_again_raises_sequence_and_cancels_removed_attendees(
    stack: Stack, smtp: SmtpServer, http: aiohttp.ClientSession, api_key: str
) -> None:
    first = {
        "download": True,
        "event": {
            "uid": "standup-1@acme",
            "summary": {"value": "Standup"},
            "start": {"date": "2026-05-04T09:00:00", "timezone": "Europe/Paris"},
            "attendees": [{"email": "ann@example.com"}, {"email": "bob@example.com"}],
        },
    }
    status, answer = await post(stack, http, "event", first, api_key)
    assert status == 200, answer
    assert "DTSTART;TZID=Europe/Paris:20260504T090000" in answer["data"] and "BEGIN:VTIMEZONE" in answer["data"]
    await mail_to(smtp, "bob@example.com")
    second = {"event": {**first["event"], "summary": "Standup (moved)", "attendees": [{"email": "ann@example.com"}]}}
    status, answer = await post(stack, http, "event", second, api_key)
    assert status == 200 and answer["uid"] == "standup-1@acme", answer
    to_ann = await mail_to(smtp, "ann@example.com", 2)
    updated = calendar_of(to_ann[-1])
    assert updated["METHOD"] == "REQUEST" and int(updated.walk("VEVENT")[0]["SEQUENCE"]) == 1
    to_bob = await mail_to(smtp, "bob@example.com", 2)
    cancel = calendar_of(to_bob[-1])
    assert cancel["METHOD"] == "CANCEL" and str(cancel.walk("VEVENT")[0]["UID"]) == "standup-1@acme"


async def test_a_todo_in_json_comes_back_as_data_when_download_is_true(
    stack: Stack, http: aiohttp.ClientSession, api_key: str
) -> None:
    body = {
        "download": "true",
        "todo": {"summary": "Pay", "due": "2026-06-01", "priority": 2, "status": "needs-action"},
    }
    status, answer = await post(stack, http, "todo", body, api_key)
    assert status == 200, answer
    assert "BEGIN:VTODO" in answer["data"] and "PRIORITY:2" in answer["data"]


async def test_errors_are_400_for_missing_402_for_unusable_and_401_without_a_token(
    stack: Stack, http: aiohttp.ClientSession, api_key: str
) -> None:
    status, answer = await post(stack, http, "event", b"event[summary][value]=x", api_key)
    assert (status, answer["error"]) == (400, True) and "event[start][date]" in answer["message"]
    bad_date = b"event[start][date]=02/30/2026 09:00 PM&event[attendees][0][email]=a@example.com"
    status, answer = await post(stack, http, "event", bad_date, api_key)
    assert (status, answer["error"]) == (402, True) and "event[start]" in answer["message"]
    bad_address = b"event[start][date]=04/26/2019 09:00 PM&event[attendees][0][email]=not-an-address"
    status, answer = await post(stack, http, "event", bad_address, api_key)
    assert status == 402 and "event[attendees][0][email]" in answer["message"]
    status, answer = await post(stack, http, "journal", b"journal[summary][value]=x", None)
    assert (status, answer["error"]) == (401, True)
    status, answer = await post(stack, http, "journal", b"journal[summary][value]=x", "wrong-key")
    assert status == 401


async def test_an_attendee_address_the_smtp_server_refuses_is_402_with_its_answer_and_nothing_is_sent(
    stack: Stack, smtp: SmtpServer, http: aiohttp.ClientSession, api_key: str
) -> None:
    smtp.handler.refuse["ghost@example.com"] = "550 5.1.1 <ghost@example.com>: recipient unknown"
    body = {
        "event": {
            "uid": "refused-1@acme",
            "summary": "Launch",
            "start": {"date": "2026-05-06T09:00:00", "timezone": "Europe/Paris"},
            "attendees": [{"email": "eve@example.com"}, {"email": "ghost@example.com"}],
        }
    }
    status, answer = await post(stack, http, "event", body, api_key)
    assert (status, answer["error"]) == (402, True), answer
    assert "ghost@example.com" in answer["message"] and "550 5.1.1" in answer["message"]
    assert "recipient unknown" in answer["message"] and "eve@example.com" not in answer["message"]
    assert "event[attendees][1][email]" in answer["message"]
    # Nothing recorded: the same uid without the refused address is a new request (SEQUENCE 0),
    # and Eve gets exactly that one invitation.
    body["event"]["attendees"] = [{"email": "eve@example.com"}]
    status, answer = await post(stack, http, "event", body, api_key)
    assert status == 200 and answer["message"].startswith("Request created"), answer
    (message,) = await mail_to(smtp, "eve@example.com")
    assert int(calendar_of(message).walk("VEVENT")[0]["SEQUENCE"]) == 0
    await asyncio.sleep(0.5)
    assert not [r for r in smtp.received if "ghost@example.com" in r.recipients]
