"""`python -m services.auth [--role api|worker|all] [--port N]`: the OAuth2 server and its outbox relay."""

from __future__ import annotations

from services.auth.app import build_app
from shared.service import run


def main() -> None:
    run("auth", 8081, build_app)


if __name__ == "__main__":
    main()
