"""The mail use-cases: invitations into deliveries, catalog events into invitations, one sending
round, and the operator's record.

`request_invitations` is what other modules call (Convier's routes, the event consumer); it runs in
the caller's transaction, so deliveries exist exactly when the caller's own change commits.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from icalendar import Calendar

from services.mail.adapters import repository as repo
from services.mail.domain.imip import (
    COMPONENTS,
    InvalidInvitation,
    Party,
    address_of,
    calendar_uid,
    itip,
    parse_calendar,
)
from services.mail.domain.replies import Reply
from services.mail.domain.texts import resolve_locale
from shared import outbox
from shared.ical import event_uid, render_single
from shared.logging import get_logger
from shared.messages import AttendeeReplied, EventData, Person, make_envelope

log = get_logger(__name__)

MAX_ATTENDEES = 1000


@dataclass(frozen=True)
class EmailOptions:
    """Convier's `email[...]`: the mail's own subject and body (else a localised default), its
    locale (en, fr, de, es; anything else falls back to en), `attach` an invite.ics attachment,
    `inline` the text/calendar part inside multipart/alternative."""

    subject: str | None = None
    body: str | None = None
    locale: str | None = None
    attach: bool = False
    inline: bool = True
    hide_attendees: bool = False  # each attendee's calendar lists only them


@dataclass(frozen=True)
class Requested:
    invitation_id: uuid.UUID | None  # None when every delivery already existed (a replay)
    delivery_ids: list[uuid.UUID] = field(default_factory=list)


def _parties(people: Sequence[Party | Person]) -> list[Party]:
    seen: dict[str, Party] = {}
    for person in people:
        email = address_of(person.email)
        if "@" not in email or any(ch.isspace() for ch in email):
            raise InvalidInvitation(f"attendee {person.email!r} is not an email address")
        seen.setdefault(email, Party(email, person.name))
    return list(seen.values())


async def request_invitations(
    conn: asyncpg.Connection,
    account_id: uuid.UUID,
    *,
    calendar: Calendar | str | bytes,
    attendees: Sequence[Party | Person],
    organizer: Party | Person | None,
    mail_from: str,
    options: EmailOptions | None = None,
    method: str = "REQUEST",
    sequence: int | None = None,
    event_id: uuid.UUID | None = None,
    fingerprint: str | None = None,
) -> Requested:
    """Record one queued delivery per attendee of an iMIP `method` (REQUEST or CANCEL) for the
    calendar's UID, due now; the mail workers send them (and retry them on the schedule).

    - `calendar`: a VCALENDAR (an icalendar.Calendar or its text) with one UID; METHOD, ORGANIZER
      and ATTENDEE lines are set here (attendees NEEDS-ACTION, RSVP=TRUE).
    - `organizer`: who the invitation is from (ORGANIZER); None puts ours there (the invitation's
      reply address, `local+<invitation id>@domain` of `mail_from`), so replies come back to the
      reply listener. Every message also names that address in Reply-To.
    - `sequence`: the SEQUENCE to send; None keeps the calendar's own (0 when absent). Raise it
      on every significant change: an invitation with the same (UID, method, SEQUENCE) to the
      same attendee is recorded once, so a replay sends nothing twice.
    - Runs in the caller's transaction (`conn`). Raises InvalidInvitation on a calendar or an
      address that cannot be sent; nothing is written then.
    """
    options = options or EmailOptions()
    parsed = parse_calendar(calendar.to_ical() if isinstance(calendar, Calendar) else calendar)
    uid = calendar_uid(parsed)
    parties = _parties(attendees)
    if not parties:
        raise InvalidInvitation("an invitation needs at least one attendee")
    if len(parties) > MAX_ATTENDEES:
        raise InvalidInvitation(f"an invitation reaches at most {MAX_ATTENDEES} attendees")
    invitation_id = uuid.uuid4()
    reply_to = reply_address(mail_from, invitation_id)
    # Without an organizer of the merchant's, ours stands there: clients send their REPLY to it.
    owner = Party(address_of(organizer.email), organizer.name) if organizer and organizer.email else Party(reply_to)
    if sequence is None:
        component = next(c for c in parsed.subcomponents if c.name in COMPONENTS)
        sequence = int(component.get("sequence", 0))
    text = itip(parsed, method, owner, parties, sequence=sequence).decode("utf-8")
    await repo.insert_invitation(
        conn,
        id=invitation_id,
        account_id=account_id,
        uid=uid,
        event_id=event_id,
        method=method,
        sequence=sequence,
        calendar=text,
        organizer_email=owner.email,
        organizer_name=owner.name,
        subject=options.subject,
        body=options.body,
        locale=resolve_locale(options.locale),
        attach=options.attach,
        inline=options.inline,
        hide_attendees=options.hide_attendees,
        fingerprint=fingerprint,
    )
    domain = mail_from.rpartition("@")[2] or "localhost"
    delivery_ids = []
    for party in parties:
        delivery_id = await repo.insert_delivery(
            conn,
            invitation_id=invitation_id,
            account_id=account_id,
            uid=uid,
            method=method,
            sequence=sequence,
            email=party.email,
            name=party.name,
            message_id=f"<{uuid.uuid4()}@{domain}>",
        )
        if delivery_id is not None:
            delivery_ids.append(delivery_id)
    if not delivery_ids:
        await repo.delete_invitation(conn, invitation_id)
        return Requested(None, [])
    log.info("mail.requested", uid=uid, method=method, sequence=sequence, deliveries=len(delivery_ids))
    return Requested(invitation_id, delivery_ids)


def reply_address(mail_from: str, invitation_id: uuid.UUID) -> str:
    """`calendar@example.com` -> `calendar+<invitation id hex>@example.com`: where answers come back."""
    local, _, domain = mail_from.partition("@")
    return f"{local}+{invitation_id.hex}@{domain}"


# --- catalog events ---------------------------------------------------------------------------------


def significant(event: EventData) -> str:
    """What makes a new request worth sending (RFC 5546 2.1.4: times, recurrence; and what people
    read: title, place, description, link). Attendees' answers are not part of it."""
    content = {
        name: getattr(event, name)
        for name in ("title", "description", "location", "start", "end", "timezone", "all_day", "url", "conference")
    }
    content["recurrence"] = list(event.recurrence)
    content["status"] = event.status
    content["organizer"] = event.organizer.email.lower() if event.organizer else None
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


async def handle_event(conn: asyncpg.Connection, event: EventData, mail_from: str) -> None:
    """An event with `notify`: REQUEST to its attendees at its SEQUENCE (to all on a significant
    change, else only to attendees not invited yet), CANCEL to attendees removed since, CANCEL to
    everyone invited when it is cancelled or deleted. What was recorded decides: nothing is sent twice."""
    if not event.notify:
        return
    uid = event_uid(event.event_id)  # the feed's UID for this event
    previous = await repo.last_sent(conn, event.account_id, uid)
    invited = {email for email, (method, _) in previous.items() if method == "REQUEST"}
    current = {address_of(p.email): p for p in event.attendees if p.email}
    cancelled = event.deleted or event.status == "cancelled"
    removed = sorted(invited if cancelled else invited - current.keys())
    fingerprint = significant(event)
    changed = fingerprint != await repo.last_fingerprint(conn, event.account_id, uid)
    to_request = [] if cancelled else [p for email, p in current.items() if changed or email not in invited]
    calendar = render_single(event)
    for method, people in (("CANCEL", [Party(email) for email in removed]), ("REQUEST", to_request)):
        if people:
            await request_invitations(
                conn,
                event.account_id,
                calendar=calendar,
                attendees=people,
                organizer=event.organizer,
                mail_from=mail_from,
                method=method,
                sequence=event.sequence,
                event_id=event.event_id,
                fingerprint=fingerprint if method == "REQUEST" else None,
                options=EmailOptions(hide_attendees=event.attendees_hidden),
            )


# --- replies ---------------------------------------------------------------------------------------


async def record_reply(pool: asyncpg.Pool, reply: Reply, invitation_id: uuid.UUID | None) -> str | None:
    """An attendee's answer: their deliveries of this UID take its PARTSTAT, and `attendee.replied`
    goes out through the outbox (in one transaction). Returns 'recorded', 'unchanged' (the same
    answer again: nothing published), or None when it answers no invitation we sent them."""
    async with pool.acquire() as conn, conn.transaction():
        invitation = await repo.invitation_for_reply(conn, invitation_id, reply.uid, reply.attendee)
        if invitation is None:
            return None
        account_id, event_id = invitation["account_id"], invitation["event_id"]
        previous = await repo.set_partstat(conn, account_id, reply.uid, reply.attendee, reply.partstat)
        if previous is None:
            return None
        if previous == reply.partstat and reply.method == "REPLY":
            return "unchanged"
        replied = AttendeeReplied(
            account_id=account_id,
            event_id=event_id,
            uid=reply.uid,
            attendee_email=reply.attendee,
            partstat=reply.partstat,
            method=reply.method,  # type: ignore[arg-type]
            comment=reply.comment,
            replied_at=datetime.now(UTC),
        )
        await outbox.enqueue(conn, repo.SCHEMA, [make_envelope("attendee.replied", replied, account_id=account_id)])
    log.info("mail.reply", uid=reply.uid, partstat=reply.partstat, method=reply.method)
    return "recorded"


# --- the record -------------------------------------------------------------------------------------


async def list_deliveries(
    pool: asyncpg.Pool, account_id: uuid.UUID, *, uid: str | None, status: str | None, limit: int = 500
) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await repo.list_deliveries(conn, account_id, uid=uid, status=status, limit=limit)
