"""Signing secrets at rest: encrypt what is still plaintext, re-encrypt what an older key sealed.

Runs when the service starts (any role), in batches, each row under its lock; running it twice, or
in two processes at once, changes nothing more. After an operator puts a new key first in
KALENDS_ENCRYPTION_KEYS (keeping the old one listed), the next start re-encrypts every secret
under the new key, and the old key may then be dropped.
"""

from __future__ import annotations

import asyncpg

from services.webhook.adapters.repository import SCHEMA
from shared.crypto import SecretBox
from shared.logging import get_logger

log = get_logger(__name__)

BATCH = 500


def _sealed(box: SecretBox, encrypted: str | None, plaintext: str | None) -> str | None:
    """The value to store: plaintext encrypted, an old key's ciphertext rotated, else unchanged."""
    if plaintext is not None and encrypted is None:
        return box.encrypt(plaintext)
    if encrypted is not None and not box.is_current(encrypted):
        return box.rotate(encrypted)
    return encrypted


async def seal_secrets(pool: asyncpg.Pool, box: SecretBox) -> int:
    """Bring every endpoint's secrets under the first key, plaintext emptied; returns rows changed."""
    changed = 0
    after = None
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT id, secret, secret_encrypted, previous_secret, previous_secret_encrypted"
                f" FROM {SCHEMA}.endpoints WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT {BATCH} FOR UPDATE",
                after,
            )
            if not rows:
                break
            after = rows[-1]["id"]
            for row in rows:
                secret = _sealed(box, row["secret_encrypted"], row["secret"])
                previous = _sealed(box, row["previous_secret_encrypted"], row["previous_secret"])
                if (secret, previous, row["secret"], row["previous_secret"]) == (
                    row["secret_encrypted"],
                    row["previous_secret_encrypted"],
                    None,
                    None,
                ):
                    continue
                await conn.execute(
                    f"UPDATE {SCHEMA}.endpoints SET secret = NULL, previous_secret = NULL, secret_encrypted = $2,"
                    " previous_secret_encrypted = $3 WHERE id = $1",
                    row["id"],
                    secret,
                    previous,
                )
                changed += 1
    if changed:
        log.info("webhook.secrets_sealed", endpoints=changed)
    return changed
