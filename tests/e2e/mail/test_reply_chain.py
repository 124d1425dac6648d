"""The reply chain end to end: auth, ingest, mail, webhook and feed as processes. A merchant creates
an event with attendees through the Unipile route with `notify`; the invitation arrives at a real
SMTP server; the attendee answers it as a calendar client does (a METHOD:REPLY or COUNTER built with
icalendar from the received invitation, sent over SMTP to its Reply-To at mail's reply listener);
the answer then shows in mail's deliveries, in ingest's catalog, in the subscriber's feed, and
reaches the merchant's webhook receiver, signed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, TypeVar

import aio_pika
import aiohttp
import aiosmtplib
import pytest
from icalendar import Calendar, Event
from standardwebhooks.webhooks import Webhook

from services.webhook.messaging.topology import delete_topology
from services.webhook.settings import parse_retry_schedule
from shared.amqp import Names
from shared.testing import Stack, free_port
from shared.testing_smtp import SmtpServer
from tests.e2e.ingest.test_with_feed import http_url
from tests.e2e.webhook.conftest import E2E_WEBHOOK_ENV
from tests.integration.webhook.receiver import Receiver

pytestmark = pytest.mark.e2e

MAIL_FROM = "calendar@kalends.test"
T = TypeVar("T")


@dataclass
class Chain:
    stack: Stack
    smtp: SmtpServer
    inbound_port: int
    code: str
    session: aiohttp.ClientSession  # carries the merchant's bearer token


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def chain(stack: Stack, smtp: SmtpServer, amqp_url: str, e2e_names: Names) -> AsyncIterator[Chain]:
    inbound_port = free_port()
    await stack.start("auth")
    await stack.start("ingest")  # before the account exists, so it learns the account's name
    await stack.start("webhook", env=E2E_WEBHOOK_ENV)
    mail_env = {
        "KALENDS_SMTP_URL": smtp.url,
        "KALENDS_MAIL_FROM": MAIL_FROM,
        "KALENDS_MAIL_INBOUND_PORT": str(inbound_port),
        "KALENDS_MAIL_INBOUND_HOST": "127.0.0.1",
    }
    await stack.start("mail", env=mail_env)
    await stack.start("feed")
    account = await stack.new_account(name="Reply Chain Ltd")
    token = await stack.token(account)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        yield Chain(stack, smtp, inbound_port, str(account["accountCode"]), session)
    stack.processes["webhook"].stop()
    connection = await aio_pika.connect(amqp_url)
    try:
        await delete_topology(await connection.channel(), e2e_names, parse_retry_schedule("0,1,2,3"))
    finally:
        await connection.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def call(chain: Chain, method: str, service: str, path: str, body: Any = None, want: int = 200) -> Any:
    async with chain.session.request(method, chain.stack.url(service) + path, json=body) as response:
        payload = await response.json() if response.content_type == "application/json" else await response.text()
        assert response.status == want, (method, path, response.status, payload)
        return payload


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 20.0) -> T:
    """The probe's first truthy answer (the chain is asynchronous: outboxes, queues, projections)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(0.2)


async def invitation_to(smtp: SmtpServer, address: str) -> EmailMessage:
    async def probe() -> EmailMessage | None:
        return next((r.parsed() for r in smtp.received if r.recipients == [address]), None)

    return await eventually(probe, f"an invitation to {address}", timeout=30)


def calendar_of(message: EmailMessage) -> Calendar:
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    return Calendar.from_ical(part.get_payload(decode=True))


def answer_to(invitation: EmailMessage, attendee: str, partstat: str, method: str, comment: str | None = None) -> Any:
    """What a calendar client sends when its user answers (RFC 5546 3.2.3 REPLY, 3.2.7 COUNTER): the
    invitation's VEVENT with the same UID and SEQUENCE, the ORGANIZER, only the answering ATTENDEE
    with their PARTSTAT, a fresh DTSTAMP; a COUNTER proposes other times."""
    request = calendar_of(invitation)
    assert str(request["METHOD"]) == "REQUEST"
    invited = request.walk("VEVENT")[0]
    attendees = invited.get("ATTENDEE")
    mine = next(a for a in (attendees if isinstance(attendees, list) else [attendees]) if attendee in str(a).lower())
    mine.params["PARTSTAT"] = partstat
    mine.params.pop("RSVP", None)
    answer = Calendar()
    answer.add("PRODID", "-//Test Calendar Client//EN")
    answer.add("VERSION", "2.0")
    answer.add("METHOD", method)
    event = Event()
    for name in ("UID", "SEQUENCE", "ORGANIZER", "SUMMARY", "DTSTART", "DTEND"):
        if name in invited:
            event[name] = invited[name]
    event.add("DTSTAMP", datetime.now(UTC))
    event.add("ATTENDEE", mine)
    if method == "COUNTER":
        start = invited.decoded("DTSTART") + timedelta(days=1)
        event.pop("DTSTART"), event.pop("DTEND", None)
        event.add("DTSTART", start)
        event.add("DTEND", start + timedelta(hours=1))
    if comment:
        event.add("COMMENT", comment)
    answer.add_component(event)

    message = EmailMessage()
    message["From"] = attendee
    message["To"] = str(invitation["Reply-To"])
    message["Subject"] = f"{partstat.title()}: {invited['SUMMARY']}"
    message["In-Reply-To"] = str(invitation["Message-ID"])
    message.set_content(f"{attendee} answered {partstat}.")
    message.add_alternative(answer.to_ical(), maintype="text", subtype="calendar", params={"method": method})
    return message


async def send_answer(chain: Chain, message: EmailMessage) -> None:
    reply_to = parseaddr(str(message["To"]))[1]
    await aiosmtplib.send(
        message, sender=str(message["From"]), recipients=[reply_to], hostname="127.0.0.1", port=chain.inbound_port
    )


async def test_an_accepted_invitation_shows_in_deliveries_catalog_feed_and_reaches_the_webhook_signed(
    chain: Chain, receiver: Receiver
) -> None:
    code, calendar = chain.code, f"replies{uuid.uuid4().hex[:6]}"
    await call(chain, "POST", "ingest", f"/v1/calendars/{code}", {"code": calendar, "name": "Replies"}, 201)
    webhook = await call(
        chain,
        "POST",
        "webhook",
        f"/v1/webhooks/{code}",
        {"url": receiver.url("/replies"), "eventTypes": ["AttendeeReplied"]},
        201,
    )
    assert webhook["eventTypes"] == ["AttendeeReplied"]  # the subscription below sends it nothing
    subscribed = await call(
        chain,
        "POST",
        "ingest",
        f"/v1/subscribe/{code}/{calendar}",
        {"subscriberId": "s1", "subscriptionMethod": "WebCal"},
    )
    event = {
        "title": "Board meeting",
        "start": {"date_time": "2026-12-09T10:00:00", "time_zone": "Europe/Paris"},
        "end": {"date_time": "2026-12-09T11:00:00", "time_zone": "Europe/Paris"},
        "attendees": [{"email": "ann@example.com", "display_name": "Ann"}, {"email": "bob@example.com"}],
        "notify": True,
    }
    created = await call(chain, "POST", "ingest", f"/api/v1/calendars/{calendar}/events?account_id={code}", event, 201)
    event_id = created["event_id"]

    invitation = await invitation_to(chain.smtp, "ann@example.com")
    reply_to = parseaddr(str(invitation["Reply-To"]))[1]
    assert reply_to.startswith("calendar+") and reply_to.endswith("@kalends.test")
    uid = str(calendar_of(invitation).walk("VEVENT")[0]["UID"])
    assert event_id in uid
    await send_answer(chain, answer_to(invitation, "ann@example.com", "ACCEPTED", "REPLY"))

    # Mail's record: Ann's delivery carries her answer, Bob's does not.
    async def deliveries() -> dict[str, Any] | None:
        page = await call(chain, "GET", "mail", f"/v1/mail/{code}/deliveries?uid={uid}")
        found = {d["attendee"]["email"]: d for d in page["deliveries"]}
        return found if found.get("ann@example.com", {}).get("partstat") == "ACCEPTED" else None

    record = await eventually(deliveries, "Ann's ACCEPTED in mail's deliveries")
    assert record["ann@example.com"]["repliedAt"] and record["ann@example.com"]["status"] == "sent"
    assert record["bob@example.com"]["partstat"] == "NEEDS-ACTION"

    # Ingest's catalog: the event's attendee took the answer (through attendee.replied).
    path = f"/v1/calendars/{code}/{calendar}/events/{event_id}"

    async def catalog() -> dict[str, Any] | None:
        stored = await call(chain, "GET", "ingest", path)
        people = {a["email"]: a for a in stored["attendees"]}
        return people if people["ann@example.com"].get("partstat") == "ACCEPTED" else None

    people = await eventually(catalog, "Ann's ACCEPTED in the catalog")
    assert people["bob@example.com"].get("partstat") in (None, "NEEDS-ACTION")

    # The subscriber's feed: Ann's ATTENDEE line says ACCEPTED (parsed with icalendar).
    feed_url, feed_auth = http_url(subscribed["subscriptionUrl"])

    async def feed() -> Any:
        async with aiohttp.ClientSession() as subscriber, subscriber.get(feed_url, auth=feed_auth) as response:
            if response.status != 200:
                return None
            parsed = Calendar.from_ical(await response.text())
        vevent = next((e for e in parsed.walk("VEVENT") if str(e["SUMMARY"]) == "Board meeting"), None)
        attendees = vevent.get("ATTENDEE") if vevent is not None else None
        if not attendees:
            return None
        by_address = {str(a).lower().removeprefix("mailto:"): a for a in attendees}
        return by_address if by_address["ann@example.com"].params.get("PARTSTAT") == "ACCEPTED" else None

    lines = await eventually(feed, "PARTSTAT=ACCEPTED on Ann's ATTENDEE in the feed")
    assert lines["bob@example.com"].params.get("PARTSTAT") == "NEEDS-ACTION"

    # The merchant's webhook: one AttendeeReplied, signed with the endpoint's secret.
    (request,) = await receiver.wait_for("/replies", 1, timeout=20)
    assert Webhook(webhook["secret"]).verify(request.body, request.headers)
    body = request.json
    assert body["eventType"] == "AttendeeReplied"
    details = body["eventDetails"]
    assert (details["eventId"], details["uid"], details["attendeeEmail"]) == (event_id, uid, "ann@example.com")
    assert (details["partStat"], details["method"]) == ("ACCEPTED", "REPLY")

    # The same answer again changes nothing and fires nothing.
    await send_answer(chain, answer_to(invitation, "ann@example.com", "ACCEPTED", "REPLY"))
    await asyncio.sleep(1.5)
    assert len(receiver.at("/replies")) == 1


async def test_a_counter_proposal_sets_its_partstat_and_reaches_the_webhook_with_its_comment(
    chain: Chain, receiver: Receiver
) -> None:
    code, calendar = chain.code, f"counter{uuid.uuid4().hex[:6]}"
    await call(chain, "POST", "ingest", f"/v1/calendars/{code}", {"code": calendar, "name": "Counter"}, 201)
    webhook = await call(chain, "POST", "webhook", f"/v1/webhooks/{code}", {"url": receiver.url("/counter")}, 201)
    event = {
        "title": "Design review",
        "start": "2026-12-10T15:00:00Z",
        "end": "2026-12-10T16:00:00Z",
        "attendees": [{"email": "carl@example.com"}],
        "notify": True,
    }
    created = await call(chain, "POST", "ingest", f"/api/v1/calendars/{calendar}/events?account_id={code}", event, 201)
    invitation = await invitation_to(chain.smtp, "carl@example.com")
    counter = answer_to(invitation, "carl@example.com", "TENTATIVE", "COUNTER", comment="Could we do Friday?")
    await send_answer(chain, counter)

    (request,) = await receiver.wait_for("/counter", 1, timeout=20)
    assert Webhook(webhook["secret"]).verify(request.body, request.headers)
    details = request.json["eventDetails"]
    assert (details["method"], details["partStat"], details["attendeeEmail"]) == (
        "COUNTER",
        "TENTATIVE",
        "carl@example.com",
    )
    assert details["comment"] == "Could we do Friday?" and details["eventId"] == created["event_id"]
    page = await call(chain, "GET", "mail", f"/v1/mail/{code}/deliveries?uid={details['uid']}")
    assert [(d["attendee"]["email"], d["partstat"]) for d in page["deliveries"]] == [("carl@example.com", "TENTATIVE")]


async def test_the_listener_refuses_an_answer_from_someone_else_than_the_attendee(chain: Chain) -> None:
    code, calendar = chain.code, f"forged{uuid.uuid4().hex[:6]}"
    await call(chain, "POST", "ingest", f"/v1/calendars/{code}", {"code": calendar, "name": "Forged"}, 201)
    event = {
        "title": "Private",
        "start": "2026-12-11T15:00:00Z",
        "attendees": [{"email": "dan@example.com"}],
        "notify": True,
    }
    await call(chain, "POST", "ingest", f"/api/v1/calendars/{calendar}/events?account_id={code}", event, 201)
    invitation = await invitation_to(chain.smtp, "dan@example.com")
    forged = answer_to(invitation, "dan@example.com", "DECLINED", "REPLY")
    forged.replace_header("From", "mallory@example.com")
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send_answer(chain, forged)
    assert refused.value.code == 554 and "not its sender" in refused.value.message
    uid = str(calendar_of(invitation).walk("VEVENT")[0]["UID"])
    page = await call(chain, "GET", "mail", f"/v1/mail/{code}/deliveries?uid={uid}")
    assert [d["partstat"] for d in page["deliveries"]] == ["NEEDS-ACTION"]
