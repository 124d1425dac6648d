"""Sending over SMTP with aiosmtplib: one connection per worker, reused across messages; and asking
the server, without sending anything, whether it takes a request's recipients.

Every answer is classified once: 2xx sent; 4xx and connection trouble retry; 5xx failed for good.
TLS: `smtps://` from the first byte; `smtp://` upgrades with STARTTLS when the server offers it,
and must upgrade when the URL carries credentials (they are never sent in clear). The server's
certificate is always verified, against KALENDS_SMTP_CA_FILE when set, else the system's CAs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
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


def smtp_client(target: SmtpTarget, timeout: float) -> aiosmtplib.SMTP:
    """An unconnected client for the target. Without credentials STARTTLS is used when the server
    offers it (aiosmtplib's `start_tls=None`); with credentials on `smtp://` it is required, because
    aiosmtplib would otherwise send AUTH in clear to a server that offers AUTH but not STARTTLS."""
    credentials = target.username is not None
    return aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        use_tls=target.implicit_tls,
        start_tls=None if target.implicit_tls else (True if credentials else None),
        validate_certs=True,
        cert_bundle=target.ca_file,
        username=target.username,
        password=target.password,
        timeout=timeout,
    )


@dataclass(frozen=True)
class Refusal:
    """A recipient the SMTP server refused for good (5xx on RCPT TO)."""

    address: str
    code: int
    answer: str


async def refused_recipients(
    target: SmtpTarget, sender: str, recipients: Sequence[str], *, timeout: float
) -> list[Refusal] | None:
    """Ask the server whether it takes each recipient (MAIL FROM, RCPT TO each, RSET, QUIT: no DATA,
    nothing is sent), within `timeout` seconds in all. The 5xx refusals, in order; None when the
    server could not be asked (unreachable, too slow, TLS or login trouble, our sender refused):
    the caller then records as usual and the sending loop retries. A 4xx answer (greylisting, a
    full mailbox) is not a refusal: it may pass later."""
    client = smtp_client(target, timeout)
    try:
        async with asyncio.timeout(timeout):
            await client.connect()
            await client.mail(sender)
            refused = []
            for address in recipients:
                if not address.isascii():
                    # An internationalised address needs an SMTPUTF8 transaction: not asked here;
                    # the sending loop records what the server makes of it.
                    continue
                try:
                    await client.rcpt(address)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    if exc.code >= 500:
                        refused.append(Refusal(address, exc.code, exc.message[:300]))
            await client.rset()
            await client.quit()
            return refused
    except (TimeoutError, aiosmtplib.SMTPException, OSError, ValueError) as exc:
        log.warning("smtp.recipients_unchecked", error=f"{type(exc).__name__}: {exc}"[:300])
        return None
    finally:
        if client.is_connected:
            client.close()


class SmtpSender:
    def __init__(self, target: SmtpTarget, *, timeout: float) -> None:
        self._target = target
        self._timeout = timeout
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        client = smtp_client(self._target, self._timeout)
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
