"""The mail service's settings: the platform's plus SMTP, the retry schedule, DKIM and the reply listener."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from shared.retry import parse_retry_schedule
from shared.settings import PlatformSettings, SettingsError, censor_url, env_float, env_int, env_str

DEFAULT_RETRY_SCHEDULE = (0.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0)


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how mail is sent: `smtp://[user:pass@]host[:25]` (STARTTLS when the server offers
    it) or `smtps://user:pass@host[:465]` (TLS from the first byte)."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # PEM bundle the server's certificate is verified against; None: system CAs


def parse_smtp_url(raw: str, name: str = "KALENDS_SMTP_URL", ca_file: str | None = None) -> SmtpTarget:
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError as exc:
        raise SettingsError(f"{name} is not a valid URL ({exc}): {censor_url(raw)!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SettingsError(
            f"{name} must look like smtp://host:25 or smtps://user:pass@host:465, got {censor_url(raw)!r}"
        )
    implicit = scheme == "smtps"
    return SmtpTarget(
        host=parts.hostname,
        port=port or (465 if implicit else 25),
        implicit_tls=implicit,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ca_file=ca_file,
    )


def read_ca_file(environ: Mapping[str, str] | None) -> str | None:
    """KALENDS_SMTP_CA_FILE: a PEM bundle of the CAs trusted for the SMTP server; unset: the system's."""
    path = env_str("KALENDS_SMTP_CA_FILE", "", environ).strip()
    if not path:
        return None
    try:
        ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(f"KALENDS_SMTP_CA_FILE: {path!r} is not a readable PEM CA bundle ({exc})") from None
    return path


@dataclass(frozen=True)
class DkimSettings:
    selector: str
    domain: str
    private_key: bytes  # PEM


def read_dkim(environ: Mapping[str, str] | None) -> DkimSettings | None:
    selector = env_str("KALENDS_DKIM_SELECTOR", "", environ).strip()
    key_path = env_str("KALENDS_DKIM_KEY", "", environ).strip()
    domain = env_str("KALENDS_DKIM_DOMAIN", "", environ).strip()
    if not selector and not key_path:
        return None
    if not (selector and key_path):
        raise SettingsError("DKIM needs both KALENDS_DKIM_SELECTOR and KALENDS_DKIM_KEY (a PEM private key file)")
    try:
        key = Path(key_path).read_bytes()
    except OSError as exc:
        raise SettingsError(f"KALENDS_DKIM_KEY: cannot read {key_path!r} ({exc.strerror})") from None
    if b"PRIVATE KEY" not in key:
        raise SettingsError(f"KALENDS_DKIM_KEY: {key_path!r} is not a PEM private key")
    return DkimSettings(selector=selector, domain=domain, private_key=key)


@dataclass(frozen=True)
class MailSettings:
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_from: str = "calendar@localhost"
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    dkim: DkimSettings | None = None
    inbound_port: int | None = None  # the reply listener's port; None: no listener
    inbound_host: str = "0.0.0.0"
    smtp_timeout: float = 30.0
    smtp_ca_file: str | None = None
    # Deliveries claimed per round, and how often an idle worker looks for due ones.
    batch: int = 50
    poll_interval: float = 0.2

    @property
    def smtp(self) -> SmtpTarget:
        return parse_smtp_url(self.smtp_url, ca_file=self.smtp_ca_file)

    @property
    def recipient_check_timeout(self) -> float:
        """How long a Convier request waits for the SMTP server to judge its recipients."""
        return min(self.smtp_timeout, 5.0)

    @property
    def dkim_domain(self) -> str:
        """The signing domain: KALENDS_DKIM_DOMAIN, else the sender address's domain."""
        if self.dkim is not None and self.dkim.domain:
            return self.dkim.domain
        return self.mail_from.rpartition("@")[2]

    @property
    def lease(self) -> float:
        """How long a claimed batch is held before another worker may take its deliveries over."""
        return self.smtp_timeout * 2 + 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MailSettings:
        smtp_url = env_str("KALENDS_SMTP_URL", "smtp://127.0.0.1:1025", environ)
        parse_smtp_url(smtp_url)
        mail_from = env_str("KALENDS_MAIL_FROM", "calendar@localhost", environ).strip()
        if "@" not in mail_from:
            raise SettingsError(f"KALENDS_MAIL_FROM must be an address like calendar@example.com, got {mail_from!r}")
        inbound = env_str("KALENDS_MAIL_INBOUND_PORT", "", environ).strip()
        return cls(
            platform=PlatformSettings.from_env(environ),
            smtp_url=smtp_url,
            mail_from=mail_from,
            retry_schedule=parse_retry_schedule(
                env_str("KALENDS_MAIL_RETRY_SCHEDULE", "0,60,300,1800,7200,21600", environ),
                "KALENDS_MAIL_RETRY_SCHEDULE",
            ),
            dkim=read_dkim(environ),
            inbound_port=env_int("KALENDS_MAIL_INBOUND_PORT", 0, environ, minimum=0) if inbound else None,
            inbound_host=env_str("KALENDS_MAIL_INBOUND_HOST", "0.0.0.0", environ).strip() or "0.0.0.0",
            smtp_timeout=env_float("KALENDS_SMTP_TIMEOUT", 30.0, environ),
            smtp_ca_file=read_ca_file(environ),
            batch=env_int("KALENDS_MAIL_BATCH", 50, environ, minimum=1),
            poll_interval=env_float("KALENDS_MAIL_POLL_INTERVAL", 0.2, environ),
        )

    def for_log(self) -> dict[str, object]:
        return {
            **self.platform.for_log(),
            "smtp_url": censor_url(self.smtp_url),
            "smtp_ca_file": self.smtp_ca_file,
            "mail_from": self.mail_from,
            "retry_schedule": list(self.retry_schedule),
            "dkim": bool(self.dkim),
            "inbound_port": self.inbound_port,
        }
