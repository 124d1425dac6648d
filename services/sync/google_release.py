"""Revokes our Google grant of a user once no active subscription, of any merchant, pushes to them.

Google's grant is per user and OAuth client (ours), not per merchant, so the token is revoked only
when the last subscription of that Google user has ended; the user's calendars are left as they are.
A loop in the worker looks for such users (cheap: one query) and revokes each once; a failed revoke
(Google unreachable) is tried again on the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import asyncpg

from services.sync.adapters.google import GoogleProvider
from shared.crypto import DecryptionError, SecretBox
from shared.logging import get_logger

log = get_logger(__name__)

_UNUSED = """
SELECT c.remote_user FROM sync.connections c
WHERE c.provider = 'google' AND c.state <> 'released'
GROUP BY c.remote_user
HAVING NOT EXISTS (
    SELECT 1 FROM sync.connections c2
    JOIN sync.targets t ON t.connection_id = c2.connection_id
    JOIN sync.subscriptions s ON s.subscription_id = t.subscription_id
    WHERE c2.provider = 'google' AND c2.remote_user = c.remote_user AND s.active AND t.state <> 'stopped'
)
LIMIT 50
"""


class GoogleReleaser:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox, provider: GoogleProvider, interval: float = 1.0) -> None:
        self._pool, self._box, self._provider, self._interval = pool, box, provider, interval
        self._task: asyncio.Task[None] | None = None
        self.revoked = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sync-google-release")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.release_unused()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("google.release_failed", error=repr(exc))
            await asyncio.sleep(self._interval)

    async def release_unused(self) -> int:
        """Revoke the grant of every Google user left without an active subscription; how many."""
        async with self._pool.acquire() as conn:
            emails = [r["remote_user"] for r in await conn.fetch(_UNUSED)]
        done = 0
        for email in emails:
            if await self._release(email):
                done += 1
        self.revoked += done
        return done

    async def _release(self, email: str) -> bool:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM sync.connections WHERE provider = 'google' AND remote_user = $1 AND state <> 'released'"
                " ORDER BY updated_at DESC",
                email,
            )
        for row in rows:
            try:
                credentials = json.loads(self._box.decrypt(row["credentials"]))
            except (DecryptionError, ValueError):
                continue
            token = credentials.get("refresh_token") or credentials.get("access_token")
            if token and not await self._provider.oauth.revoke(str(token)):
                return False  # Google unreachable: next round
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE sync.connections SET state = 'released', reason = 'no active subscription',"
                " updated_at = now() WHERE provider = 'google' AND remote_user = $1",
                email,
            )
        log.info("google.released", connections=len(rows))
        return True
