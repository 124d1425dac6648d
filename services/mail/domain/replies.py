"""Attendees' answers (iTIP REPLY and COUNTER over iMIP): what a received mail says, checked.

A reply names one ATTENDEE, whose PARTSTAT is the answer; it must come from that attendee (the
From address), so nobody answers for someone else by writing their address into a calendar.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr

from icalendar import Calendar

from services.mail.domain.imip import COMPONENTS, address_of

PARTSTATS = ("ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED", "NEEDS-ACTION")
_TOKEN = re.compile(r"\+([0-9a-f]{32})$")


class NotAReply(ValueError):
    """A mail the reply listener refuses; the text is the SMTP answer's reason."""


@dataclass(frozen=True)
class Reply:
    method: str  # REPLY or COUNTER
    uid: str
    attendee: str  # lower-cased address
    partstat: str
    sequence: int
    comment: str | None


def invitation_of(recipient: str, mail_from: str) -> uuid.UUID | None:
    """The invitation a reply address names (`calendar+<hex>@domain`); None for our plain address."""
    local = recipient.strip().strip("<>").rpartition("@")[0].lower()
    base = mail_from.rpartition("@")[0].lower()
    match = _TOKEN.search(local)
    if match is None or local[: match.start()] != base:
        return None
    return uuid.UUID(match.group(1))


def accepts(recipient: str, mail_from: str) -> bool:
    """Whether the listener takes mail for this address (ours, plain or with an invitation token)."""
    address = recipient.strip().strip("<>").lower()
    return address == mail_from.lower() or (
        invitation_of(address, mail_from) is not None and address.endswith("@" + mail_from.rpartition("@")[2].lower())
    )


def _calendar_parts(message: EmailMessage) -> list[bytes]:
    found = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("text/calendar", "application/ics") or (part.get_filename() or "").lower().endswith(".ics"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found.append(payload)
    return found


def parse_reply(data: bytes) -> Reply:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    sender = parseaddr(str(message.get("From", "")))[1].lower()
    for raw in _calendar_parts(message):
        try:
            calendar = Calendar.from_ical(raw)
        except ValueError:
            continue
        method = str(calendar.get("method", "")).upper()
        if method not in ("REPLY", "COUNTER"):
            continue
        component = next((c for c in calendar.subcomponents if c.name in COMPONENTS), None)
        if component is None or not component.get("uid"):
            raise NotAReply("the reply's calendar has no component with a UID")
        attendees = component.get("attendee")
        attendees = attendees if isinstance(attendees, list) else [attendees] if attendees else []
        if len(attendees) != 1:
            raise NotAReply("a reply names exactly one ATTENDEE")
        attendee = attendees[0]
        who = address_of(attendee)
        if who != sender:
            raise NotAReply(f"the reply's ATTENDEE {who} is not its sender {sender or '(none)'}")
        partstat = str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
        if partstat not in PARTSTATS:
            raise NotAReply(f"PARTSTAT {partstat} is not one of {', '.join(PARTSTATS)}")
        comment = component.get("comment")
        return Reply(
            method=method,
            uid=str(component["uid"]),
            attendee=who,
            partstat=partstat,
            sequence=int(component.get("sequence", 0)),
            comment=str(comment) if comment else None,
        )
    raise NotAReply("no text/calendar part with METHOD:REPLY or METHOD:COUNTER")
