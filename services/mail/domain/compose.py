"""One iMIP message (RFC 6047) per attendee, built with the standard library's `email` package.

    multipart/mixed
      multipart/alternative
        text/plain; charset=utf-8
        text/html; charset=utf-8
        text/calendar; method=REQUEST; charset=UTF-8      (unless `inline` is off)
      application/ics; name=invite.ics (attachment)       (when `attach`)

DKIM (RFC 6376, `dkimpy`) signs the finished bytes when a key is configured.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

import dkim

from services.mail.domain.texts import texts_for

SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version", b"content-type")


@dataclass(frozen=True)
class Letter:
    """Everything one delivery's message is made of."""

    method: str
    calendar: bytes  # the iTIP VCALENDAR for this recipient
    sender: str  # the envelope and From address
    sender_name: str | None
    recipient: str
    recipient_name: str | None
    reply_to: str
    message_id: str
    subject: str | None
    body: str | None
    locale: str
    attach: bool
    inline: bool
    sequence: int
    summary: str
    when: str
    where: str
    organizer: str


def _subject(letter: Letter) -> str:
    if letter.subject:
        return letter.subject
    words = texts_for(letter.locale)
    prefix = words.cancelled if letter.method == "CANCEL" else words.updated if letter.sequence > 0 else words.invited
    return f"{prefix}: {letter.summary}" if letter.summary else prefix


def _plain(letter: Letter) -> str:
    words = texts_for(letter.locale)
    lines = [letter.body] if letter.body else [letter.summary]
    if letter.when:
        lines.append(f"{words.when}: {letter.when}")
    if letter.where:
        lines.append(f"{words.where}: {letter.where}")
    lines.append(f"{words.organizer}: {letter.organizer}")
    lines.append("")
    lines.append(words.cancel_note if letter.method == "CANCEL" else words.answer)
    return "\n".join(lines) + "\n"


def _html(letter: Letter) -> str:
    rows = "".join(f"<p>{html.escape(line)}</p>" for line in _plain(letter).splitlines() if line)
    return f'<!DOCTYPE html><html lang="{html.escape(letter.locale)}"><body>{rows}</body></html>\n'


def compose(letter: Letter, *, date: str | None = None) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr((letter.sender_name or "", letter.sender))
    message["To"] = formataddr((letter.recipient_name or "", letter.recipient))
    message["Reply-To"] = letter.reply_to
    message["Subject"] = _subject(letter)
    message["Date"] = date or format_datetime_now()
    message["Message-ID"] = letter.message_id
    message.set_content(_plain(letter), subtype="plain", charset="utf-8")
    message.add_alternative(_html(letter), subtype="html", charset="utf-8")
    if letter.inline or not letter.attach:
        calendar_text = letter.calendar.decode("utf-8")
        message.add_alternative(calendar_text, subtype="calendar", charset="UTF-8", params={"method": letter.method})
    message.make_mixed()  # multipart/mixed around the multipart/alternative, always
    if letter.attach:
        message.add_attachment(letter.calendar, maintype="application", subtype="ics", filename="invite.ics")
    message["Content-Language"] = letter.locale
    return message


def format_datetime_now() -> str:
    return format_datetime(datetime.now(UTC))


def to_bytes(message: EmailMessage, *, dkim_selector: str | None, dkim_domain: str, dkim_key: bytes | None) -> bytes:
    """The wire bytes (CRLF), DKIM-signed when a selector and key are given."""
    raw = message.as_bytes(policy=SMTP)
    if dkim_selector and dkim_key:
        headers = [h for h in SIGNED_HEADERS if message.get(h.decode()) is not None]
        signature = dkim.sign(
            raw,
            dkim_selector.encode(),
            dkim_domain.encode(),
            dkim_key,
            include_headers=headers,
            linesep=b"\r\n",
        )
        raw = signature + raw
    return raw
