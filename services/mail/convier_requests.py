"""The Convier use-case: store a request by (account, uid), render it, invite its attendees.

Posting a UID again is an update: SEQUENCE goes up by one, the attendees get the new REQUEST and
those no longer listed get a CANCEL. Everything (the stored request and the queued deliveries)
happens in one transaction, so a refused request leaves nothing behind.

Before anything is recorded the SMTP server is asked whether it takes the attendees (RCPT TO, no
mail sent): an address it refuses for good (5xx) makes the request 402, naming the address and the
server's answer. A server that cannot be asked right then refuses nothing: the request is recorded
and its invitations wait in the queue for the server like any other.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from services.mail import services
from services.mail.adapters import convier as repo
from services.mail.adapters.smtp import Refusal
from services.mail.domain.convier import ConvierError, ConvierRequest
from services.mail.domain.convier_render import render_calendar
from services.mail.domain.imip import InvalidInvitation, Party


@dataclass(frozen=True)
class ConvierResult:
    uid: str
    sequence: int
    calendar: str
    invited: int
    cancelled: int


# Asks the SMTP server about recipients: the refusals, or None when it could not be asked.
RecipientCheck = Callable[[Sequence[str]], Awaitable[list[Refusal] | None]]


async def _check_recipients(check: RecipientCheck | None, request: ConvierRequest) -> None:
    # The first position of each address names it as the request did: event[attendees][1][email].
    positions: dict[str, int] = {}
    for i, attendee in enumerate(request.attendees):
        positions.setdefault(attendee.email, i)
    if check is None or request.method == "CANCEL" or not positions:
        return
    refused = await check(list(positions))
    if refused:
        raise ConvierError(
            402,
            "; ".join(
                f"Parameter {request.component}[attendees][{positions[r.address]}][email] is unusable:"
                f" the SMTP server refuses {r.address} ({r.code} {r.answer})"
                for r in refused
            )
            + ".",
        )


def _options(request: ConvierRequest) -> services.EmailOptions:
    email = request.email
    return services.EmailOptions(
        subject=email.subject, body=email.body, locale=email.locale, attach=email.attach, inline=email.inline
    )


async def send_request(
    pool: asyncpg.Pool,
    account_id: uuid.UUID,
    request: ConvierRequest,
    *,
    mail_from: str,
    check: RecipientCheck | None = None,
) -> ConvierResult:
    """Store and send one Convier request; ConvierError (402) when it cannot be sent, the SMTP
    server refusing an attendee included (asked through `check` before any connection is taken)."""
    await _check_recipients(check, request)
    uid = request.uid or f"{uuid.uuid4()}@{mail_from.rpartition('@')[2] or 'localhost'}"
    stamp = datetime.now(UTC).replace(microsecond=0)
    async with pool.acquire() as conn, conn.transaction():
        stored = await repo.locked_request(conn, account_id, uid)
        if stored is not None and stored["component"] != request.component:
            raise ConvierError(402, f"uid {uid!r} is a {stored['component']} request, not a {request.component}.")
        sequence = stored["sequence"] + 1 if stored is not None else 0
        text = render_calendar(request, uid=uid, sequence=sequence, stamp=stamp, method=request.method).decode()
        current = {a.email.lower(): Party(a.email, a.name) for a in request.attendees}
        before = set(stored["attendees"]) if stored is not None else set()
        cancelling = request.method == "CANCEL"
        removed = sorted(before | current.keys()) if cancelling else sorted(before - current.keys())
        organizer = Party(request.organizer.email, request.organizer.name) if request.organizer else None
        sends = [("CANCEL", [Party(e) for e in removed]), ("REQUEST", [] if cancelling else list(current.values()))]
        try:
            for method, parties in sends:
                if parties:
                    await services.request_invitations(
                        conn,
                        account_id,
                        calendar=text,
                        attendees=parties,
                        organizer=organizer,
                        mail_from=mail_from,
                        options=_options(request),
                        method=method,
                        sequence=sequence,
                    )
        except InvalidInvitation as exc:
            raise ConvierError(402, f"The request cannot be sent: {exc}.") from None
        await repo.save_request(
            conn,
            account_id,
            uid,
            component=request.component,
            sequence=sequence,
            attendees=[] if cancelling else sorted(current),
            calendar=text,
        )
    return ConvierResult(uid, sequence, text, 0 if cancelling else len(current), len(removed))
