"""Every URL of the mail service (Convier's routes are added by services/mail/api/convier.py)."""

from __future__ import annotations

from services.mail.api import handlers
from shared.web import Route

BASE = "/v1/mail/{accountCode}"


def routes() -> list[Route]:
    return [
        Route(
            "GET",
            BASE + "/deliveries",
            handlers.list_deliveries,
            "the account's invitation deliveries, newest first (filter uid, status), each with its partstat",
        ),
    ]
