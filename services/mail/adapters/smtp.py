"""Sending over SMTP with aiosmtplib: one connection per worker, reused across messages.

Every answer is classified once: 2xx sent; 4xx and connection trouble retry; 5xx failed for good.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiosmtplib

from services.mail.settings import SmtpTarget
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class SendResult:
    kind: str  # sent | retry | failed
    code: int | None
    answer: str | None
    error: str | None = None


def _answer(code: int, message: str) -> SendResult:
    kind = "sent" if 200 <= code < 300 else "retry" if 400 <= code < 500 else "failed"
    return SendResult(kind, code, message[:1000])


class SmtpSender:
    def __init__(self, target: SmtpTarget, *, timeout: float) -> None:
        self._target = target
        self._timeout = timeout
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        client = aiosmtplib.SMTP(
            hostname=self._target.host,
            port=self._target.port,
            use_tls=self._target.implicit_tls,
            start_tls=None,  # upgrade when the server offers STARTTLS (587)
            username=self._target.username,
            password=self._target.password,
            timeout=self._timeout,
        )
        await client.connect()
        self._client = client
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # already gone
                log.debug("smtp.close_failed", error=repr(exc))

    async def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        """One message to one recipient; never raises for SMTP or network trouble."""
        async with self._lock:
            try:
                client = await self._connected()
                errors, response = await client.sendmail(sender, [recipient], message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients[0] if exc.recipients else None
                await self._reset()
                return _answer(refused.code, refused.message) if refused else SendResult("failed", None, str(exc))
            except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError, aiosmtplib.SMTPResponseException) as exc:
                await self._reset()
                return _answer(exc.code, exc.message)
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                await self._drop()
                return SendResult("retry", None, None, error=f"{type(exc).__name__}: {exc}"[:1000])
            return _answer(250, response) if not errors else _answer(*next(iter(errors.values())))

    async def _reset(self) -> None:
        """After a refused transaction the connection stays usable once RSET clears it."""
        if self._client is None:
            return
        try:
            await self._client.rset()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            await self._drop()

    async def close(self) -> None:
        async with self._lock:
            if self._client is not None and self._client.is_connected:
                try:
                    await self._client.quit()
                except (TimeoutError, aiosmtplib.SMTPException, OSError):
                    pass
            await self._drop()
