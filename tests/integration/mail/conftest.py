"""Fixtures of the mail integration tests: a real SMTP server (aiosmtpd) recording what it accepts,
the mail worker running in this process against the test's own database and broker prefix.
(`pool` and `publish` come from tests/integration/conftest.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
import pytest

from services.mail.adapters.smtp import SmtpSender
from services.mail.app import WORKER, create_app
from services.mail.messaging.inbound import start_listener
from services.mail.messaging.topology import delete_topology
from services.mail.messaging.worker import MailWorker
from services.mail.settings import MailSettings
from shared.amqp import Names
from shared.settings import PlatformSettings
from shared.testing_smtp import SmtpServer
from tests.integration.app_worker import AppWorker

SCHEDULE = (0.0, 1.0, 2.0, 4.0)
MAIL_FROM = "calendar@kalends.test"


@pytest.fixture
def smtp() -> Any:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(database_url: str, amqp_url: str, amqp_names: Names, smtp: SmtpServer) -> MailSettings:
    return MailSettings(
        platform=PlatformSettings(database_url=database_url, amqp_url=amqp_url, amqp_prefix=amqp_names.prefix),
        smtp_url=smtp.url,
        mail_from=MAIL_FROM,
        retry_schedule=SCHEDULE,
        smtp_timeout=5.0,
        poll_interval=0.1,
    )


class Worker(AppWorker[MailSettings]):
    """The mail service's worker half (event consumer, relay, sending loop) in this process."""

    def __init__(self, settings: MailSettings) -> None:
        super().__init__(create_app, settings)

    @property
    def mailer(self) -> MailWorker:
        return self.app[WORKER]


@pytest.fixture
async def worker(
    mail_settings: MailSettings, amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names
) -> AsyncIterator[Worker]:
    w = Worker(mail_settings)
    yield w
    await w.stop()
    channel = await amqp_connection.channel()
    await delete_topology(channel, amqp_names)


async def deliveries(pool: asyncpg.Pool, account_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT * FROM mail.deliveries WHERE account_id = $1 ORDER BY attendee_email, sequence, method", account_id
        )
    )


async def settled(pool: asyncpg.Pool, account_id: uuid.UUID, count: int, timeout: float = 15.0) -> list[Any]:
    """The account's deliveries once `count` exist and none is queued any more."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await deliveries(pool, account_id)
        if len(rows) >= count and all(r["status"] != "queued" for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise TimeoutError([(r["attendee_email"], r["status"], r["smtp_answer"]) for r in rows])
        await asyncio.sleep(0.1)


class Mailer:
    """The sending loop and (when asked) the reply listener on the test's database, without the
    broker: what the sending and reply tests exercise needs PostgreSQL and SMTP only."""

    def __init__(self, settings: MailSettings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.worker: MailWorker | None = None
        self._sender: SmtpSender | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Server | None = None

    async def start(self, **changes: Any) -> Mailer:
        if changes:
            self.settings = dataclasses.replace(self.settings, **changes)
        self._sender = SmtpSender(self.settings.smtp, timeout=self.settings.smtp_timeout)
        self.worker = MailWorker(self.pool, self.settings, self._sender)
        self._task = asyncio.create_task(self.worker.run())
        if self.settings.inbound_port is not None:
            self._listener, _ = await start_listener(
                self.pool, self.settings.mail_from, self.settings.inbound_host, self.settings.inbound_port
            )
        return self

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sender is not None:
            await self._sender.close()


@pytest.fixture
async def mailer(mail_settings: MailSettings, pool: asyncpg.Pool) -> AsyncIterator[Mailer]:
    m = Mailer(mail_settings, pool)
    yield m
    await m.stop()
