"""Invitations through a real SMTP server: what arrives (RFC 6047, parsed with email and icalendar),
retries on 4xx and outages, no retry on 5xx, nothing sent twice."""

from __future__ import annotations

import asyncio
import base64
import uuid
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from icalendar import Calendar

from services.mail.domain.imip import Party
from services.mail.services import EmailOptions, Requested, request_invitations
from services.mail.settings import DkimSettings
from shared.testing_smtp import SmtpServer
from tests.integration.mail.conftest import MAIL_FROM, Mailer, deliveries, settled

CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Paris:20261204T190000\r\n"
    "DTEND;TZID=Europe/Paris:20261204T210000\r\nSUMMARY:Board meeting\r\nLOCATION:Room 4\r\n"
    "SEQUENCE:{sequence}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


async def invite(
    pool: asyncpg.Pool,
    account_id: uuid.UUID,
    emails: list[str],
    *,
    uid: str = "board-1@kalends.test",
    sequence: int = 0,
    method: str = "REQUEST",
    options: EmailOptions | None = None,
    organizer: Party | None = Party("boss@merchant.test", "The Boss"),
) -> Requested:
    async with pool.acquire() as conn, conn.transaction():
        return await request_invitations(
            conn,
            account_id,
            calendar=CALENDAR.format(uid=uid, sequence=sequence),
            attendees=[Party(e, e.split("@")[0].title()) for e in emails],
            organizer=organizer,
            mail_from=MAIL_FROM,
            options=options,
            method=method,
        )


def calendar_part(message: EmailMessage, content_type: str = "text/calendar") -> Calendar:
    part = next(p for p in message.walk() if p.get_content_type() == content_type)
    return Calendar.from_ical(part.get_payload(decode=True))


async def test_each_attendee_receives_an_rfc6047_request_with_the_uid_sequence_organizer_and_attachment(
    mailer: Mailer, smtp: SmtpServer
) -> None:
    await mailer.start()
    account = uuid.uuid4()
    options = EmailOptions(locale="fr", attach=True, inline=True)
    await invite(mailer.pool, account, ["ann@example.com", "bob@example.com"], sequence=3, options=options)
    received = await smtp.wait_for(2)
    assert sorted(r.recipients[0] for r in received) == ["ann@example.com", "bob@example.com"]
    for item in received:
        message = item.parsed()
        assert item.sender == MAIL_FROM
        assert message.get_content_type() == "multipart/mixed"
        alternative = message.get_payload()[0]
        assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html", "text/calendar"]
        assert alternative.get_payload()[2].get_param("method") == "REQUEST"
        assert "Invitation mise à jour" in str(message["Subject"])  # French, and SEQUENCE > 0 says updated
        assert "Acceptez ou refusez" in alternative.get_payload()[0].get_content()
        calendar = calendar_part(message)
        assert str(calendar["method"]) == "REQUEST"
        event = calendar.walk("VEVENT")[0]
        assert str(event["uid"]) == "board-1@kalends.test"
        assert int(event["sequence"]) == 3
        assert str(event["organizer"]) == "mailto:boss@merchant.test"
        attendees = event.get("attendee")
        assert sorted(str(a) for a in attendees) == ["mailto:ann@example.com", "mailto:bob@example.com"]
        assert {a.params["PARTSTAT"] for a in attendees} == {"NEEDS-ACTION"}
        assert {a.params["RSVP"] for a in attendees} == {"TRUE"}
        attachment = next(p for p in message.walk() if p.get_filename() == "invite.ics")
        assert calendar_part(message, attachment.get_content_type()).walk("VEVENT")[0]["uid"] == event["uid"]
    rows = await settled(mailer.pool, account, 2)
    assert [(r["status"], r["smtp_code"], r["attempts_made"]) for r in rows] == [("sent", 250, 1)] * 2


async def test_an_unknown_locale_falls_back_to_english_and_a_cancel_is_sent_as_cancel(
    mailer: Mailer, smtp: SmtpServer
) -> None:
    await mailer.start()
    account = uuid.uuid4()
    await invite(mailer.pool, account, ["ann@example.com"], method="CANCEL", options=EmailOptions(locale="tlh"))
    (item,) = await smtp.wait_for(1)
    message = item.parsed()
    assert str(message["Subject"]) == "Cancelled: Board meeting"
    calendar = calendar_part(message)
    assert str(calendar["method"]) == "CANCEL"
    assert str(calendar.walk("VEVENT")[0]["status"]) == "CANCELLED"
    assert not any(p.get_filename() for p in message.walk())  # no attachment unless asked


async def test_the_same_request_twice_sends_one_message_per_attendee(mailer: Mailer, smtp: SmtpServer) -> None:
    await mailer.start()
    account = uuid.uuid4()
    first = await invite(mailer.pool, account, ["ann@example.com"])
    second = await invite(mailer.pool, account, ["ann@example.com"])
    assert len(first.delivery_ids) == 1 and second.delivery_ids == []
    await smtp.wait_for(1)
    await asyncio.sleep(0.5)
    assert len(smtp.received) == 1


async def test_a_451_answer_is_retried_and_the_invitation_delivered_once(mailer: Mailer, smtp: SmtpServer) -> None:
    smtp.handler.answers.extend(["451 4.3.0 greylisted, try later"])
    await mailer.start()
    account = uuid.uuid4()
    await invite(mailer.pool, account, ["ann@example.com"])
    (row,) = await settled(mailer.pool, account, 1)
    assert (row["status"], row["attempts_made"], row["smtp_code"]) == ("sent", 2, 250)
    assert len(smtp.received) == 1
    attempts = await mailer.pool.fetch("SELECT * FROM mail.attempts WHERE delivery_id = $1 ORDER BY number", row["id"])
    assert [(a["smtp_code"], a["succeeded"]) for a in attempts] == [(451, False), (250, True)]
    assert "greylisted" in attempts[0]["smtp_answer"]


async def test_a_550_answer_fails_the_delivery_without_a_retry(mailer: Mailer, smtp: SmtpServer) -> None:
    smtp.handler.answers.extend(["550 5.1.1 no such mailbox"])
    await mailer.start()
    account = uuid.uuid4()
    await invite(mailer.pool, account, ["ghost@example.com", "ann@example.com"])
    await settled(mailer.pool, account, 2)
    await asyncio.sleep(1.5)  # past the first retry step: nothing more happens
    rows = await deliveries(mailer.pool, account)
    refused = [r for r in rows if r["status"] == "failed"]  # whichever attendee was sent first
    assert len(refused) == 1 and (refused[0]["smtp_code"], refused[0]["attempts_made"]) == (550, 1)
    assert "no such mailbox" in refused[0]["smtp_answer"]
    assert [r["status"] for r in rows if r is not refused[0]] == ["sent"]
    assert len(smtp.received) == 1
    assert smtp.handler.rcpt_answers[0].startswith("550") and len(smtp.handler.rcpt_answers) == 2


async def test_an_smtp_outage_delays_every_invitation_which_then_arrives_once(mailer: Mailer, smtp: SmtpServer) -> None:
    smtp.stop()
    await mailer.start(retry_schedule=(0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0))
    account = uuid.uuid4()
    emails = [f"guest{i}@example.com" for i in range(20)]
    await invite(mailer.pool, account, emails)
    await asyncio.sleep(3.5)
    assert all(r["status"] == "queued" for r in await deliveries(mailer.pool, account))
    smtp.start()
    rows = await settled(mailer.pool, account, 20, timeout=20)
    assert {r["status"] for r in rows} == {"sent"}
    assert min(r["attempts_made"] for r in rows) >= 2
    await asyncio.sleep(0.5)
    assert sorted(r.recipients[0] for r in smtp.received) == sorted(emails)


async def test_a_dkim_signature_verifies_against_the_public_key(
    mailer: Mailer, smtp: SmtpServer, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    await mailer.start(dkim=DkimSettings(selector="cal2026", domain="kalends.test", private_key=pem))
    await invite(mailer.pool, uuid.uuid4(), ["ann@example.com"])
    (item,) = await smtp.wait_for(1)
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return record if name == b"cal2026._domainkey.kalends.test." else b""

    assert item.parsed()["DKIM-Signature"] is not None
    assert dkim.verify(item.data, dnsfunc=dns)
    assert looked_up == [b"cal2026._domainkey.kalends.test."]
    tampered = item.data.replace(b"Board meeting", b"Bored meeting")
    assert not dkim.verify(tampered, dnsfunc=dns)
