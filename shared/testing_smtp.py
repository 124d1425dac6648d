"""A real SMTP server for tests and benchmarks: aiosmtpd on 127.0.0.1, recording what it accepts.

It runs in its own thread (aiosmtpd's Controller), so a test's event loop is never blocked by it.
`answers` scripts refusals: each RCPT takes the next scripted answer (`"451 4.3.0 try later"`)
until the script is empty, then accepts. `refuse` answers given addresses the same way every time
(`{"nobody@example.com": "550 5.1.1 no such user"}`), as a server that knows its mailboxes does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from shared.testing import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class RecordingHandler:
    received: list[Received] = field(default_factory=list)
    answers: deque[str] = field(default_factory=deque)
    rcpt_answers: list[str] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            refusal = self.refuse.get(address.lower())
            answer = refusal or (self.answers.popleft() if self.answers else "250 OK")
            self.rcpt_answers.append(answer)
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), data))
        return "250 Message accepted for delivery"


class SmtpServer:
    """`start()`/`stop()` may be called again: the port stays the same (an outage, then recovery).

    `options` go to aiosmtpd: `ssl_context` (TLS from the first byte), `tls_context` and
    `require_starttls` (STARTTLS), `auth_required`, `auth_require_tls`, `authenticator`."""

    def __init__(self, port: int | None = None, handler: Any = None, **options: Any) -> None:
        self.port = port or free_port()
        self.handler = handler or RecordingHandler()
        self.options = options
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        scheme = "smtps" if self.options.get("ssl_context") else "smtp"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        return list(self.handler.received)

    def start(self) -> SmtpServer:
        # A generous data size and line length: calendars with many attendees make long messages.
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            data_size_limit=50_000_000,
            ready_timeout=10,
            **self.options,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Every message once at least `count` have arrived; raises TimeoutError with what did."""
        deadline = time.monotonic() + timeout
        while len(self.handler.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.handler.received)} of {count} messages arrived within {timeout}s")
            await asyncio.sleep(0.05)
        return self.received
