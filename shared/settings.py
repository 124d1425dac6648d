"""Settings helpers: read and validate KALENDS_* variables once, at start, into frozen objects."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit, urlunsplit

from shared.proxies import TrustedProxies


class SettingsError(ValueError):
    """A KALENDS_* variable has a value the service cannot start with."""


def env_str(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    value = (environ if environ is not None else os.environ).get(name, "").strip()
    return value or default


def env_int(name: str, default: int, environ: Mapping[str, str] | None = None, *, minimum: int | None = None) -> int:
    raw = env_str(name, str(default), environ)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    raw = env_str(name, str(default), environ)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}")
    return value


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    raw = env_str(name, "1" if default else "0", environ).lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be 0 or 1, got {raw!r}")


def env_url(name: str, default: str, schemes: set[str], environ: Mapping[str, str] | None = None) -> str:
    value = env_str(name, default, environ)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise SettingsError(f"{name} must be a {'/'.join(sorted(schemes))} URL with a host, got {value!r}")
    return value


def env_urls(name: str, default: str, schemes: set[str], environ: Mapping[str, str] | None = None) -> str:
    """One URL or several separated by commas (the nodes of a cluster), each checked as `env_url`
    checks one; returned as given, whitespace around the commas removed."""
    value = env_str(name, default, environ)
    parts = [part.strip() for part in value.split(",")]
    if not all(parts):
        raise SettingsError(f"{name} has an empty entry in its comma-separated list, got {value!r}")
    for part in parts:
        env_url(name, part, schemes, {name: part})
    return ",".join(parts)


def censor_url(url: str) -> str:
    """The URL with its password replaced, fit for a log line (each URL of a comma-separated list)."""
    if "," in url:
        return ",".join(censor_url(part) for part in url.split(","))
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # an unparsable URL (bad port, say) may still carry a password: show none of it
        return "<unparsable URL>"
    if password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class PlatformSettings:
    """What every service needs: where PostgreSQL, RabbitMQ and the other services are."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/kalends"
    # One broker URL, or every node of a cluster comma-separated (shared.amqp fails over between them).
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Prefixes every exchange and queue name; empty in production, random per test run.
    amqp_prefix: str = ""
    host: str = "127.0.0.1"
    auth_url: str = "http://127.0.0.1:8081"
    public_feed_url: str = "http://127.0.0.1:8083"
    log_format: str = "json"
    log_level: str = "info"
    db_pool_min: int = 1
    db_pool_max: int = 10
    # Proxies whose X-Forwarded-For is believed (KALENDS_TRUSTED_PROXIES); none by default.
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # The outbox relay parks a message larger than this (RabbitMQ's max_message_size, 128 MiB by
    # default) or one that failed this many times while others got through (shared.outbox).
    outbox_max_message_bytes: int = 128 * 1024 * 1024
    outbox_max_attempts: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PlatformSettings:
        log_format = env_str("KALENDS_LOG_FORMAT", "json", environ)
        if log_format not in {"json", "console"}:
            raise SettingsError(f"KALENDS_LOG_FORMAT must be json or console, got {log_format!r}")
        log_level = env_str("KALENDS_LOG_LEVEL", "info", environ).lower()
        if log_level not in {"debug", "info", "warning", "error", "critical"}:
            raise SettingsError(f"KALENDS_LOG_LEVEL must be debug, info, warning or error, got {log_level!r}")
        pool_min = env_int("KALENDS_DB_POOL_MIN", 1, environ, minimum=0)
        pool_max = env_int("KALENDS_DB_POOL_MAX", 10, environ, minimum=1)
        if pool_min > pool_max:
            raise SettingsError(f"KALENDS_DB_POOL_MIN ({pool_min}) exceeds KALENDS_DB_POOL_MAX ({pool_max})")
        try:
            trusted_proxies = TrustedProxies.parse(env_str("KALENDS_TRUSTED_PROXIES", "", environ))
        except ValueError as exc:
            raise SettingsError(f"KALENDS_TRUSTED_PROXIES: {exc}; use comma-separated IPs or CIDRs") from None
        return cls(
            database_url=env_url("KALENDS_DATABASE_URL", cls.database_url, {"postgresql", "postgres"}, environ),
            amqp_url=env_urls("KALENDS_AMQP_URL", cls.amqp_url, {"amqp", "amqps"}, environ),
            amqp_prefix=env_str("KALENDS_AMQP_PREFIX", "", environ),
            host=env_str("KALENDS_HOST", cls.host, environ),
            auth_url=env_url("KALENDS_AUTH_URL", cls.auth_url, {"http", "https"}, environ).rstrip("/"),
            public_feed_url=env_url("KALENDS_PUBLIC_FEED_URL", cls.public_feed_url, {"http", "https"}, environ).rstrip(
                "/"
            ),
            log_format=log_format,
            log_level=log_level,
            db_pool_min=pool_min,
            db_pool_max=pool_max,
            trusted_proxies=trusted_proxies,
            outbox_max_message_bytes=env_int(
                "KALENDS_OUTBOX_MAX_MESSAGE_BYTES", cls.outbox_max_message_bytes, environ, minimum=1024
            ),
            outbox_max_attempts=env_int("KALENDS_OUTBOX_MAX_ATTEMPTS", cls.outbox_max_attempts, environ, minimum=1),
        )

    def for_log(self) -> dict[str, object]:
        """Every setting, passwords censored."""
        out: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            out[item.name] = censor_url(value) if item.name.endswith("_url") else value
        out["trusted_proxies"] = str(self.trusted_proxies)
        return out
