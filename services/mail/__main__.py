"""`python -m services.mail [--role api|worker|all] [--port N]`."""

from __future__ import annotations

import dataclasses
import sys

from aiohttp import web

from services.mail.app import create_app
from services.mail.settings import MailSettings
from shared.service import run
from shared.settings import PlatformSettings, SettingsError


def main() -> None:
    try:
        settings = MailSettings.from_env()
    except SettingsError as exc:
        print(f"kalends mail: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    def build(platform: PlatformSettings, role: str) -> web.Application:
        return create_app(dataclasses.replace(settings, platform=platform), role)

    run("mail", 8086, build)


if __name__ == "__main__":
    main()
