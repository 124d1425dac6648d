"""`python -m services.auth [--role api|worker|all] [--port N]`: the OAuth2 server and its outbox relay."""

from __future__ import annotations

import sys

from services.auth.app import build_app
from shared.crypto import SecretBox
from shared.service import run
from shared.settings import SettingsError


def main() -> None:
    try:
        SecretBox.from_env()  # private signing keys are encrypted at rest: say so before anything starts
    except SettingsError as exc:
        print(f"kalends auth: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    run("auth", 8081, build_app)


if __name__ == "__main__":
    main()
