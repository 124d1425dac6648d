"""The sync use-cases behind its HTTP API: connecting a subscriber's calendar account.

Pushing itself is the engine's (push.py); the mirror is the projection's (messaging/projection.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import asyncpg

from services.sync.adapters import repository as repo
from services.sync.adapters.caldav import CalDavProvider, CalDavRefused
from services.sync.api.schemas import CalDavConnect
from services.sync.domain.provider import CalendarMeta
from shared.crypto import SecretBox
from shared.errors import InvalidRequest


@dataclass(frozen=True)
class Connected:
    connection_id: uuid.UUID
    calendar_url: str
    remote_user: str
    created_collection: bool


class ConnectionUseCases:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox, caldav: CalDavProvider) -> None:
        self._pool = pool
        self._box = box
        self._caldav = caldav

    async def connect_caldav(self, account_id: uuid.UUID, body: CalDavConnect) -> Connected:
        """Discover the home, make (or find) the collection, store the credentials encrypted.

        Nothing is stored unless the server accepted the credentials and gave a collection."""
        meta = CalendarMeta(
            calendar_id=body.calendar_id or uuid.uuid4(),
            name=body.name,
            description=body.description,
            color=body.color,
            timezone=body.timezone,
        )
        try:
            found = await self._caldav.connect(body.url, body.username, body.password, meta)
        except CalDavRefused as exc:
            raise InvalidRequest(f"caldav: {exc.reason}", code=exc.code) from None
        connection_id = uuid.uuid4()
        credentials = {
            "url": body.url,
            "username": body.username,
            "password": body.password,
            "home_url": found.home_url,
        }
        async with self._pool.acquire() as conn:
            await repo.insert_connection(
                conn,
                connection_id=connection_id,
                account_id=account_id,
                provider="caldav",
                remote_user=found.remote_user,
                credentials=self._box.encrypt(json.dumps(credentials)),
                remote_calendar_id=found.collection_url,
            )
        return Connected(connection_id, found.collection_url, found.remote_user, found.created)
