"""The web service's settings: the platform's plus where the pages are served and the APIs they call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.settings import PlatformSettings, env_url


@dataclass(frozen=True)
class WebSettings:
    platform: PlatformSettings = field(default_factory=PlatformSettings)
    # The address visitors reach this service at (links in pages, QR codes, the embeddable button).
    public_web_url: str = "http://127.0.0.1:8087"
    # ingest's public HTTP API, which the pages are clients of.
    ingest_url: str = "http://127.0.0.1:8082"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebSettings:
        return cls(
            platform=PlatformSettings.from_env(environ),
            public_web_url=env_url("KALENDS_PUBLIC_WEB_URL", cls.public_web_url, {"http", "https"}, environ).rstrip(
                "/"
            ),
            ingest_url=env_url("KALENDS_INGEST_URL", cls.ingest_url, {"http", "https"}, environ).rstrip("/"),
        )

    def for_log(self) -> dict[str, object]:
        return {**self.platform.for_log(), "public_web_url": self.public_web_url, "ingest_url": self.ingest_url}
