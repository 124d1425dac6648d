"""The sending loop: claim due deliveries in PostgreSQL, send each over the worker's one SMTP
connection, record every outcome, schedule retries.

A claim holds a lease; a worker that dies mid-batch leaves its deliveries to be taken over when the
lease runs out (the attempt is recorded as orphaned). A recorded success is never sent again.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
from icalendar import Calendar

from services.mail.adapters import repository as repo
from services.mail.adapters.smtp import SendResult, SmtpSender
from services.mail.domain.compose import Letter, compose, to_bytes
from services.mail.domain.imip import Party, itip, summary_of
from services.mail.services import reply_address
from services.mail.settings import MailSettings
from shared.logging import get_logger
from shared.retry import next_attempt
from shared.waiting import wait_event

log = get_logger(__name__)


_SUMMARIES: dict[uuid.UUID, tuple[str, str, str]] = {}


def _summary(invitation_id: uuid.UUID, calendar: Calendar) -> tuple[str, str, str]:
    """An invitation's title, time and place, read once per invitation (not once per attendee)."""
    found = _SUMMARIES.get(invitation_id)
    if found is None:
        if len(_SUMMARIES) > 256:
            _SUMMARIES.clear()
        found = _SUMMARIES[invitation_id] = summary_of(calendar)
    return found


def letter_for(claimed: repo.Claimed, settings: MailSettings) -> Letter:
    row = claimed.row
    text: bytes = row["calendar"].encode("utf-8")
    cached = _SUMMARIES.get(row["invitation_id"])
    calendar = Calendar.from_ical(row["calendar"]) if cached is None or row["hide_attendees"] else None
    if row["hide_attendees"]:
        assert calendar is not None
        organizer = Party(row["organizer_email"], row["organizer_name"])
        text = itip(calendar, row["method"], organizer, [Party(row["attendee_email"], row["attendee_name"])])
    title, when, where = cached or _summary(row["invitation_id"], calendar)  # type: ignore[arg-type]
    return Letter(
        method=row["method"],
        calendar=text,
        sender=settings.mail_from,
        sender_name=row["organizer_name"],
        recipient=row["attendee_email"],
        recipient_name=row["attendee_name"],
        reply_to=reply_address(settings.mail_from, row["invitation_id"]),
        message_id=row["message_id"],
        subject=row["subject"],
        body=row["body"],
        locale=row["locale"],
        attach=row["attach"],
        inline=row["inline"],
        sequence=row["sequence"],
        summary=title,
        when=when,
        where=where,
        organizer=row["organizer_name"] or row["organizer_email"],
    )


def message_bytes(claimed: repo.Claimed, settings: MailSettings) -> bytes:
    dkim = settings.dkim
    return to_bytes(
        compose(letter_for(claimed, settings)),
        dkim_selector=dkim.selector if dkim else None,
        dkim_domain=settings.dkim_domain,
        dkim_key=dkim.private_key if dkim else None,
    )


def outcome_of(claimed: repo.Claimed, result: SendResult, settings: MailSettings) -> repo.Outcome:
    if result.kind == "sent":
        return repo.Outcome(claimed, "sent", result.code, result.answer, None)
    if result.kind == "retry":
        following = next_attempt(settings.retry_schedule, claimed.first_attempt_at, claimed.number, datetime.now(UTC))
        if following is not None:
            return repo.Outcome(claimed, "queued", result.code, result.answer, result.error, following.due_at)
    return repo.Outcome(claimed, "failed", result.code, result.answer, result.error)


class MailWorker:
    def __init__(self, pool: asyncpg.Pool, settings: MailSettings, sender: SmtpSender) -> None:
        self._pool = pool
        self._settings = settings
        self._sender = sender
        self._wake = asyncio.Event()
        self.sent = 0
        self.failed = 0
        self.retried = 0

    def wake(self) -> None:
        """Look for due deliveries now (a request was just recorded in this process)."""
        self._wake.set()

    async def run_once(self) -> int:
        """One round: claim, send, record. Returns how many attempts were made."""
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await repo.claim_due(conn, self._settings.batch, self._settings.lease)
        if not claimed:
            return 0
        outcomes = []
        unreachable: SendResult | None = None
        for item in claimed:
            if unreachable is not None:
                # The server could not be reached a moment ago: the rest of the batch waits for
                # its next step instead of each taking a connection timeout.
                outcomes.append(outcome_of(item, unreachable, self._settings))
                continue
            try:
                raw = message_bytes(item, self._settings)
            except Exception as exc:  # a message we cannot build is not worth retrying
                log.exception("mail.compose_failed", delivery_id=str(item.delivery_id))
                outcomes.append(repo.Outcome(item, "failed", None, None, f"cannot build the message: {exc!r}"[:500]))
                continue
            result = await self._sender.send(self._settings.mail_from, item.row["attendee_email"], raw)
            if result.kind == "retry" and result.code is None:
                unreachable = SendResult("retry", None, None, f"not tried: {result.error}"[:1000])
            outcome = outcome_of(item, result, self._settings)
            outcomes.append(outcome)
            log.info(
                "mail.attempt",
                delivery_id=str(item.delivery_id),
                attempt=item.number,
                code=result.code,
                error=result.error,
                status=outcome.status,
            )
        async with self._pool.acquire() as conn, conn.transaction():
            await repo.record(conn, outcomes)
        for outcome in outcomes:
            if outcome.status == "sent":
                self.sent += 1
            elif outcome.status == "failed":
                self.failed += 1
            else:
                self.retried += 1
        return len(claimed)

    async def run(self) -> None:
        while True:
            try:
                made = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("mail.round_failed", error=repr(exc))
                made = 0
            if made:
                continue
            self._wake.clear()
            await wait_event(self._wake, self._settings.poll_interval)
