"""The console's settings: where the APIs it is a client of live, and the key list that seals sessions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.crypto import SecretBox
from shared.settings import PlatformSettings, env_int, env_url


@dataclass(frozen=True)
class ConsoleSettings:
    auth_url: str = "http://127.0.0.1:8081"
    ingest_url: str = "http://127.0.0.1:8082"
    webhook_url: str = "http://127.0.0.1:8084"
    feed_url: str = "http://127.0.0.1:8083"
    # Cookies get `Secure` when the console is served over HTTPS.
    secure_cookies: bool = False
    # Seconds an API call of a page may take before the page says the service is unavailable.
    api_timeout: float = 20.0
    # Encrypts the tokens kept in sessions (KALENDS_ENCRYPTION_KEYS); no key list, no console.
    box: SecretBox | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls, platform: PlatformSettings, public_web_url: str, ingest_url: str, environ: Mapping[str, str] | None = None
    ) -> ConsoleSettings:
        return cls(
            auth_url=platform.auth_url.rstrip("/"),
            ingest_url=ingest_url,
            webhook_url=env_url("KALENDS_WEBHOOK_URL", cls.webhook_url, {"http", "https"}, environ).rstrip("/"),
            feed_url=platform.public_feed_url.rstrip("/"),
            secure_cookies=public_web_url.startswith("https://"),
            api_timeout=float(env_int("KALENDS_CONSOLE_API_TIMEOUT", 20, environ, minimum=1)),
            box=SecretBox.from_env_optional(environ),
        )

    @property
    def secret_box(self) -> SecretBox:
        return self.box if self.box is not None else SecretBox.from_env({})
