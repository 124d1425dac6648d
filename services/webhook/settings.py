"""The webhook service's settings: the platform's plus the retry schedule, timeout and SSRF switch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.crypto import SecretBox
from shared.retry import parse_retry_schedule as shared_parse_retry_schedule
from shared.settings import PlatformSettings, env_bool, env_float, env_int, env_str

DEFAULT_RETRY_SCHEDULE = (0.0, 60.0, 180.0, 420.0, 900.0, 1800.0)


def parse_retry_schedule(raw: str, name: str = "KALENDS_WEBHOOK_RETRY_SCHEDULE") -> tuple[float, ...]:
    return shared_parse_retry_schedule(raw, name)


@dataclass(frozen=True)
class WebhookSettings:
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    timeout: float = 15.0
    allow_private: bool = False
    # Deliveries in flight at once in one worker process, and to one endpoint.
    concurrency: int = 128
    endpoint_concurrency: int = 8
    # How often the dispatcher looks in PostgreSQL for due deliveries when nothing woke it (a lost
    # timer, a crashed worker's attempts once their lease ends). `sweep_grace` is no longer used:
    # the dispatcher claims overdue deliveries itself, nothing is re-enqueued; it is still read so
    # that a deployment that sets KALENDS_WEBHOOK_SWEEP_GRACE keeps starting.
    sweep_interval: float = 1.0
    sweep_grace: float = 1.0
    # Encrypts signing secrets at rest (KALENDS_ENCRYPTION_KEYS); the service refuses to start without.
    box: SecretBox | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        return cls(
            platform=PlatformSettings.from_env(environ),
            retry_schedule=parse_retry_schedule(
                env_str("KALENDS_WEBHOOK_RETRY_SCHEDULE", "0,60,180,420,900,1800", environ)
            ),
            timeout=env_float("KALENDS_WEBHOOK_TIMEOUT", 15.0, environ),
            allow_private=env_bool("KALENDS_WEBHOOK_ALLOW_PRIVATE", False, environ),
            concurrency=env_int("KALENDS_WEBHOOK_CONCURRENCY", 128, environ, minimum=1),
            endpoint_concurrency=env_int("KALENDS_WEBHOOK_ENDPOINT_CONCURRENCY", 8, environ, minimum=1),
            sweep_interval=env_float("KALENDS_WEBHOOK_SWEEP_INTERVAL", 1.0, environ),
            sweep_grace=env_float("KALENDS_WEBHOOK_SWEEP_GRACE", 1.0, environ),
            box=SecretBox.from_env_optional(environ),
        )

    @property
    def secret_box(self) -> SecretBox:
        """The key list, or a SettingsError that says how to set one."""
        return self.box if self.box is not None else SecretBox.from_env({})

    @property
    def lease(self) -> float:
        """How long a claimed attempt is held before another worker may take it over: the wait for a
        slot behind one attempt to its endpoint (the dispatcher claims one ahead per slot), the
        attempt's own timeout, and time to read the body and record the outcome."""
        return self.timeout * 2 + 5.0

    def for_log(self) -> dict[str, object]:
        return {
            **self.platform.for_log(),
            "retry_schedule": list(self.retry_schedule),
            "timeout": self.timeout,
            "allow_private": self.allow_private,
            "concurrency": self.concurrency,
            "endpoint_concurrency": self.endpoint_concurrency,
        }
