"""`python -m services.ingest [--role api|worker|all] [--port N] [--workers N]`."""

from __future__ import annotations

from services.ingest.app import create_app
from shared.service import run


def main() -> None:
    run("ingest", 8082, create_app)


if __name__ == "__main__":
    main()
