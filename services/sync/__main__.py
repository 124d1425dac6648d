"""`python -m services.sync [--role api|worker|all] [--port N]`."""

from __future__ import annotations

import dataclasses
import sys

from aiohttp import web

from services.sync.app import create_app
from services.sync.settings import SyncSettings
from shared.crypto import SecretBox
from shared.service import run
from shared.settings import PlatformSettings, SettingsError


def main() -> None:
    try:
        settings = SyncSettings.from_env()
        box = SecretBox.from_env()
    except SettingsError as exc:
        print(f"kalends sync: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    def build(platform: PlatformSettings, role: str) -> web.Application:
        return create_app(dataclasses.replace(settings, platform=platform), box, role)

    run("sync", 8085, build)


if __name__ == "__main__":
    main()
