"""Mail figures: invitations per second to 1,000 attendees through a local SMTP server (aiosmtpd),
against aiosmtplib sending the same prepared messages over one connection in a bare loop.

The mail side is the service's own sending loop (MailWorker: claim a batch in PostgreSQL, build
and, when configured, sign each message, send over the worker's one SMTP connection, record the
attempts) after one `request_invitations` call recorded the 1,000 deliveries; its time runs from
that call to the last recorded success. The reference only sends bytes it was handed.

CPU per invitation, beside the rates (the machine is shared, rates are noisy): the sending side's
own CPU (the main thread: our worker, or the bare loop, with its aiosmtplib client; `time.thread_time`)
and the whole bench process's (`bench.cputime.CpuMeter`: that plus the aiosmtpd server's thread).
PostgreSQL's CPU for our recording is not in either.

`python -m bench mail` (or `make bench`). Takes well under a minute.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass

import aiosmtplib
import asyncpg

from bench.cputime import CpuMeter
from services.mail.adapters import repository as repo
from services.mail.adapters.smtp import SmtpSender
from services.mail.app import MIGRATIONS
from services.mail.domain.imip import Party
from services.mail.messaging.worker import MailWorker, message_bytes
from services.mail.services import request_invitations
from services.mail.settings import MailSettings
from shared import db
from shared.settings import PlatformSettings
from shared.testing import DEFAULT_DB, create_database, drop_database, random_name, with_database
from shared.testing_smtp import SmtpServer

ATTENDEES = int(os.environ.get("BENCH_MAIL_ATTENDEES", "1000"))
MAIL_FROM = "calendar@bench.test"
CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bench//EN\r\nBEGIN:VEVENT\r\nUID:bench-{n}@bench.test\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Paris:20261204T190000\r\n"
    "DTEND;TZID=Europe/Paris:20261204T210000\r\nSUMMARY:Quarterly review\r\nLOCATION:Room 4\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


@dataclass(frozen=True)
class Run:
    rate: float  # invitations per second
    sender_ms: float  # main-thread CPU ms per invitation: the sending side
    process_ms: float  # whole-process CPU ms per invitation: that plus the SMTP server's thread


class _Clock:
    """Wall time, main-thread CPU and process-tree CPU over a block."""

    def __enter__(self) -> _Clock:
        self._meter = CpuMeter([os.getpid()]).__enter__()
        self._thread = time.thread_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.thread = time.thread_time() - self._thread
        self._meter.__exit__(None, None, None)
        self.process = self._meter.seconds

    def run(self, count: int) -> Run:
        return Run(count / self.wall, self.thread * 1000 / count, self.process * 1000 / count)


async def _ours(pool: asyncpg.Pool, settings: MailSettings, smtp: SmtpServer, run: int) -> tuple[Run, list[bytes]]:
    sender = SmtpSender(settings.smtp, timeout=30)
    worker = MailWorker(pool, settings, sender)
    before = len(smtp.handler.received)
    emails = [f"guest{i}@example.com" for i in range(ATTENDEES)]
    with _Clock() as clock:
        async with pool.acquire() as conn, conn.transaction():
            await request_invitations(
                conn,
                uuid.uuid4(),
                calendar=CALENDAR.format(n=run),
                attendees=[Party(e) for e in emails],
                organizer=Party("boss@bench.test", "The Boss"),
                mail_from=MAIL_FROM,
            )
        while worker.sent < ATTENDEES:
            if not await worker.run_once():
                await asyncio.sleep(0.01)
    await sender.close()
    assert len(smtp.handler.received) - before == ATTENDEES, "every invitation arrives once"
    return clock.run(ATTENDEES), [r.data for r in smtp.handler.received[before:]]


async def _prepared(pool: asyncpg.Pool, settings: MailSettings) -> list[tuple[str, bytes]]:
    """The same messages as the service builds them, built before the clock starts."""
    async with pool.acquire() as conn, conn.transaction():
        claimed = await repo.claim_due(conn, ATTENDEES, 600)
    return [(c.row["attendee_email"], message_bytes(c, settings)) for c in claimed]


async def _bare(smtp: SmtpServer, messages: list[tuple[str, bytes]]) -> Run:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, start_tls=False)
    await client.connect()
    with _Clock() as clock:
        for recipient, data in messages:
            await client.sendmail(MAIL_FROM, [recipient], data)
    await client.quit()
    return clock.run(len(messages))


async def _run() -> str:
    name = random_name("kalends_bench_mail")
    url = await create_database(DEFAULT_DB, name)
    smtp = SmtpServer().start()
    try:
        conn = await db.connect(url)
        try:
            await db.migrate(conn, "mail", MIGRATIONS)
        finally:
            await conn.close()
        settings = MailSettings(
            platform=PlatformSettings(database_url=with_database(DEFAULT_DB, name)),
            smtp_url=smtp.url,
            mail_from=MAIL_FROM,
            batch=100,
        )
        pool = await db.create_pool(url, min_size=1, max_size=4)
        try:
            ours = [(await _ours(pool, settings, smtp, run))[0] for run in range(2)]
            # The reference's messages: the service's own, for a third request left queued.
            async with pool.acquire() as c, c.transaction():
                await request_invitations(
                    c,
                    uuid.uuid4(),
                    calendar=CALENDAR.format(n=99),
                    attendees=[Party(f"guest{i}@example.com") for i in range(ATTENDEES)],
                    organizer=Party("boss@bench.test", "The Boss"),
                    mail_from=MAIL_FROM,
                )
            prepared = await _prepared(pool, settings)
            bare = [await _bare(smtp, prepared) for _ in range(2)]
        finally:
            await pool.close()
    finally:
        smtp.stop()
        await drop_database(DEFAULT_DB, name)
    best = max(ours, key=lambda r: r.rate)
    reference = max(bare, key=lambda r: r.rate)
    size = sum(len(d) for _, d in prepared) // max(len(prepared), 1)
    return "\n".join(
        [
            "| measure | mail service (1 worker, 1 SMTP connection) | reference | ratio |",
            "|---|---|---|---|",
            f"| invitations per second, {ATTENDEES} attendees, local aiosmtpd, ~{size:,} B each"
            f" | {best.rate:,.0f} /s | {reference.rate:,.0f} /s (aiosmtplib sendmail loop, same prepared messages)"
            f" | {best.rate / reference.rate:.0%} |",
            f"| sending side's CPU per invitation (main thread) | {best.sender_ms:.2f} ms"
            f" | {reference.sender_ms:.2f} ms | {best.sender_ms / reference.sender_ms:.1f}x |",
            f"| whole process's CPU per invitation (with aiosmtpd's thread) | {best.process_ms:.2f} ms"
            f" | {reference.process_ms:.2f} ms | {best.process_ms / reference.process_ms:.1f}x |",
            "",
            f"Best of 2 runs each (ours: {', '.join(f'{r.rate:,.0f}' for r in ours)}; bare: "
            f"{', '.join(f'{r.rate:,.0f}' for r in bare)}). Ours includes recording the deliveries, claiming them in"
            " batches of 100, building each RFC 6047 message and recording every attempt in PostgreSQL"
            " (PostgreSQL's own CPU is not counted); the SMTP server runs in the same process (its own"
            " thread) for both.",
        ]
    )


def main() -> str:
    return asyncio.run(_run())


if __name__ == "__main__":
    print(main())
