"""The reply listener: an attendee's REPLY (sent with aiosmtplib to the invitation's Reply-To)
sets their partstat and publishes attendee.replied; forged and unrelated mail is refused."""

from __future__ import annotations

import asyncio
import json
import uuid
from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib
import pytest
from icalendar import Calendar

from services.mail.domain.imip import Party
from shared.testing import free_port
from shared.testing_smtp import SmtpServer
from tests.integration.mail.conftest import Mailer, deliveries
from tests.integration.mail.test_sending import invite


def reply_mail(to: str, sender: str, uid: str, partstat: str, *, method: str = "REPLY") -> EmailMessage:
    calendar = (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Attendee//EN\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261201T000000Z\r\nSEQUENCE:0\r\n"
        f"ATTENDEE;PARTSTAT={partstat}:mailto:{sender}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, f"{partstat.title()}: Board meeting"
    message.set_content("See the calendar part.")
    message.add_alternative(calendar, subtype="calendar", params={"method": method})
    return message


async def test_a_reply_to_the_reply_to_address_sets_the_partstat_and_publishes_attendee_replied(
    mailer: Mailer, smtp: SmtpServer
) -> None:
    port = free_port()
    await mailer.start(inbound_port=port, inbound_host="127.0.0.1")
    account = uuid.uuid4()
    await invite(mailer.pool, account, ["ann@example.com", "bob@example.com"], organizer=None)
    received = await smtp.wait_for(2)
    to_ann = next(r for r in received if r.recipients == ["ann@example.com"]).parsed()
    reply_to = parseaddr(str(to_ann["Reply-To"]))[1]
    part = next(p for p in to_ann.walk() if p.get_content_type() == "text/calendar")
    organizer = str(Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")[0]["organizer"])
    assert organizer == f"mailto:{reply_to}"  # no organizer of the merchant's: ours stands there
    assert reply_to.startswith("calendar+") and reply_to.endswith("@kalends.test")

    await aiosmtplib.send(
        reply_mail(reply_to, "ann@example.com", "board-1@kalends.test", "ACCEPTED"), hostname="127.0.0.1", port=port
    )
    rows = {r["attendee_email"]: r for r in await deliveries(mailer.pool, account)}
    assert rows["ann@example.com"]["partstat"] == "ACCEPTED" and rows["ann@example.com"]["replied_at"] is not None
    assert rows["bob@example.com"]["partstat"] == "NEEDS-ACTION"
    published = await mailer.pool.fetch("SELECT body FROM mail.outbox WHERE routing_key = 'attendee.replied'")
    assert len(published) == 1
    data = json.loads(published[0]["body"])["data"]
    assert (data["accountId"], data["uid"], data["attendeeEmail"], data["partstat"]) == (
        str(account),
        "board-1@kalends.test",
        "ann@example.com",
        "ACCEPTED",
    )

    # The same answer again changes nothing and publishes nothing more; a new answer does.
    await aiosmtplib.send(
        reply_mail(reply_to, "ann@example.com", "board-1@kalends.test", "ACCEPTED"), hostname="127.0.0.1", port=port
    )
    await aiosmtplib.send(
        reply_mail(reply_to, "ann@example.com", "board-1@kalends.test", "DECLINED"), hostname="127.0.0.1", port=port
    )
    await asyncio.sleep(0.1)
    rows = {r["attendee_email"]: r for r in await deliveries(mailer.pool, account)}
    assert rows["ann@example.com"]["partstat"] == "DECLINED"
    assert await mailer.pool.fetchval("SELECT count(*) FROM mail.outbox WHERE routing_key = 'attendee.replied'") == 2


async def test_a_reply_for_someone_else_or_for_no_invitation_is_refused_in_the_smtp_session(
    mailer: Mailer, smtp: SmtpServer
) -> None:
    port = free_port()
    await mailer.start(inbound_port=port, inbound_host="127.0.0.1")
    account = uuid.uuid4()
    await invite(mailer.pool, account, ["ann@example.com"], organizer=Party("boss@merchant.test"))
    (item,) = await smtp.wait_for(1)
    reply_to = parseaddr(str(item.parsed()["Reply-To"]))[1]

    with pytest.raises(aiosmtplib.SMTPDataError) as forged:
        await aiosmtplib.send(
            _forged(reply_to),
            hostname="127.0.0.1",
            port=port,
        )
    assert forged.value.code == 554 and "is not its sender" in forged.value.message
    with pytest.raises(aiosmtplib.SMTPDataError) as unrelated:
        await aiosmtplib.send(
            reply_mail(reply_to, "ann@example.com", "other-uid", "ACCEPTED"), hostname="127.0.0.1", port=port
        )
    assert unrelated.value.code == 554
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await aiosmtplib.send(
            reply_mail("postmaster@kalends.test", "ann@example.com", "board-1@kalends.test", "ACCEPTED"),
            hostname="127.0.0.1",
            port=port,
        )
    assert {r["partstat"] for r in await deliveries(mailer.pool, account)} == {"NEEDS-ACTION"}


def _forged(reply_to: str) -> EmailMessage:
    """Mallory sends a reply naming Ann as the attendee."""
    message = reply_mail(reply_to, "ann@example.com", "board-1@kalends.test", "DECLINED")
    message.replace_header("From", "mallory@example.com")
    return message
