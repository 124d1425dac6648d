"""Every URL of the sync service."""

from __future__ import annotations

from services.sync.api import handlers
from services.sync.api.schemas import CalDavConnect, CalDavConnected
from shared.web import Route


def routes() -> list[Route]:
    return [
        Route(
            "POST",
            "/v1/caldav/{accountCode}/connections",
            handlers.connect_caldav,
            "connect a subscriber's CalDAV server (called by ingest on subscribe with subscriptionMethod caldav):"
            " discovers the calendar home, creates the collection, stores the credentials encrypted",
            request_model=CalDavConnect,
            response_model=CalDavConnected,
            responses={"201": "connected", "400": "bad URL, refused credentials, unreachable or unusable server"},
            name="connect_caldav",
        ),
    ]
