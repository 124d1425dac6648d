"""The web service's settings: the platform's plus where the pages are served and the APIs they call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.settings import PlatformSettings, SettingsError, env_float, env_int, env_str, env_url


@dataclass(frozen=True)
class WebSettings:
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    # The address visitors reach this service at (links in pages, QR codes, the embeddable button).
    public_web_url: str = "http://127.0.0.1:8087"
    # ingest's HTTP API, which the pages are clients of, and its public address (unsubscribe links).
    ingest_url: str = "http://127.0.0.1:8082"
    public_api_url: str = "http://127.0.0.1:8082"
    # The platform OAuth client the pages call ingest with: scope `calendar-pages`, made with
    # `python -m services.auth.admin create-client CODE --scope calendar-pages` (README, "The web").
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    # How long a calendar page's data (calendar, tags, events) is served before it is fetched again;
    # a stale page is served while one request refreshes it in the background.
    page_ttl: float = 30.0
    ingest_timeout: float = 10.0
    # Subscribes one address may make from the pages: a burst of `subscribe_limit`, then that many per
    # `subscribe_window` seconds (per web process; 0 turns it off). See domain/rate_limit.py.
    subscribe_limit: int = 30
    subscribe_window: float = 600.0

    @property
    def pages_enabled(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebSettings:
        client_id = env_str("KALENDS_WEB_CLIENT_ID", "", environ)
        client_secret = env_str("KALENDS_WEB_CLIENT_SECRET", "", environ)
        if bool(client_id) != bool(client_secret):
            raise SettingsError("set both KALENDS_WEB_CLIENT_ID and KALENDS_WEB_CLIENT_SECRET, or neither")
        return cls(
            platform=PlatformSettings.from_env(environ),
            public_web_url=env_url("KALENDS_PUBLIC_WEB_URL", cls.public_web_url, {"http", "https"}, environ).rstrip(
                "/"
            ),
            ingest_url=env_url("KALENDS_INGEST_URL", cls.ingest_url, {"http", "https"}, environ).rstrip("/"),
            public_api_url=env_url("KALENDS_PUBLIC_API_URL", cls.public_api_url, {"http", "https"}, environ).rstrip(
                "/"
            ),
            client_id=client_id,
            client_secret=client_secret,
            page_ttl=env_float("KALENDS_WEB_PAGE_TTL", cls.page_ttl, environ),
            ingest_timeout=env_float("KALENDS_WEB_INGEST_TIMEOUT", cls.ingest_timeout, environ),
            subscribe_limit=env_int("KALENDS_WEB_SUBSCRIBE_LIMIT", cls.subscribe_limit, environ, minimum=0),
            subscribe_window=env_float("KALENDS_WEB_SUBSCRIBE_WINDOW", cls.subscribe_window, environ),
        )

    def for_log(self) -> dict[str, object]:
        return {
            **self.platform.for_log(),
            "public_web_url": self.public_web_url,
            "ingest_url": self.ingest_url,
            "public_api_url": self.public_api_url,
            "client_id": self.client_id,
            "client_secret": "***" if self.client_secret else "",
            "page_ttl": self.page_ttl,
        }
