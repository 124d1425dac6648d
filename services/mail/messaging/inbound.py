"""The reply listener: an SMTP server (aiosmtpd) in the worker's own event loop that takes
attendees' REPLY and COUNTER mails sent to an invitation's reply address (or to ours as ORGANIZER).

What it refuses it refuses during the SMTP session (550 on RCPT, 554 on DATA, with the reason), so
the sender's server tells the attendee; what it accepts is recorded before the 250.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.mail import services
from services.mail.domain.replies import NotAReply, accepts, invitation_of, parse_reply
from shared.logging import get_logger

log = get_logger(__name__)

MAX_REPLY_BYTES = 2_000_000


class ReplyHandler:
    def __init__(self, pool: asyncpg.Pool, mail_from: str) -> None:
        self._pool = pool
        self._mail_from = mail_from
        self.recorded = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not accepts(address, self._mail_from):
            return "550 5.1.1 no such mailbox: replies to invitations only"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        try:
            reply = parse_reply(data)
        except NotAReply as exc:
            log.info("mail.reply_refused", reason=str(exc))
            return f"554 5.6.0 {exc}"
        invitation_id = next(
            (found for found in (invitation_of(r, self._mail_from) for r in envelope.rcpt_tos) if found), None
        )
        try:
            outcome = await services.record_reply(self._pool, reply, invitation_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("mail.reply_not_recorded", error=repr(exc))
            return "451 4.3.0 cannot record the reply now, try again later"
        if outcome is None:
            return "554 5.6.0 this reply answers no invitation of ours"
        self.recorded += 1
        return "250 OK reply recorded"


async def start_listener(pool: asyncpg.Pool, mail_from: str, host: str, port: int) -> tuple[asyncio.Server, Any]:
    handler = ReplyHandler(pool, mail_from)
    loop = asyncio.get_running_loop()
    factory = partial(SMTP, handler, data_size_limit=MAX_REPLY_BYTES, hostname="kalends-mail")
    server = await loop.create_server(factory, host=host, port=port)
    log.info("mail.reply_listener", host=host, port=port)
    return server, handler
