"""`python -m services.webhook [--role api|worker|all] [--port N] [--workers N]`: with --workers N,
every process is a delivery worker (its own concurrency limits), as N pods would be."""

from __future__ import annotations

import dataclasses
import sys

from aiohttp import web

from services.webhook.app import create_app
from services.webhook.settings import WebhookSettings
from shared.service import run
from shared.settings import PlatformSettings, SettingsError


def main() -> None:
    try:
        settings = WebhookSettings.from_env()
        settings.secret_box  # noqa: B018 - refuse to start without KALENDS_ENCRYPTION_KEYS, saying so
    except SettingsError as exc:
        print(f"kalends webhook: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    def build(platform: PlatformSettings, role: str) -> web.Application:
        return create_app(dataclasses.replace(settings, platform=platform), role)

    # Delivery workers share work through PostgreSQL (claims with SKIP LOCKED) and the broker (one
    # queue, several consumers): with --workers N every process is one, with its own limits.
    run("webhook", 8084, build, parallel_background=True)


if __name__ == "__main__":
    main()
