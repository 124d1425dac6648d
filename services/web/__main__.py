"""`python -m services.web [--role api|worker|all] [--port N]`."""

from __future__ import annotations

import dataclasses
import sys

from aiohttp import web

from services.web.app import create_app
from services.web.settings import WebSettings
from shared.service import run
from shared.settings import PlatformSettings, SettingsError


def main() -> None:
    try:
        settings = WebSettings.from_env()
    except SettingsError as exc:
        print(f"kalends web: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

    def build(platform: PlatformSettings, role: str) -> web.Application:
        return create_app(dataclasses.replace(settings, platform=platform), role)

    run("web", 8087, build)


if __name__ == "__main__":
    main()
