"""`python -m services.feed [--role api|worker|all] [--port N] [--workers N]`.

The API runs one process per core by default (KALENDS_FEED_WORKERS, or --workers).
"""

from __future__ import annotations

import os

from services.feed.app import create_app
from services.feed.settings import default_workers
from shared.service import run


def main() -> None:
    os.environ.setdefault("KALENDS_FEED_WORKERS", str(default_workers()))
    run("feed", 8083, create_app)


if __name__ == "__main__":
    main()
