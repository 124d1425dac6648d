"""Signing secrets are encrypted at rest: none is in the database in the clear, old plaintext rows
are sealed when the service starts, and signatures still verify across a key rotation."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.webhook.domain.signing import new_secret
from shared.crypto import SecretBox
from tests.integration.webhook.conftest import BOX, ENCRYPTION_KEY, Worker, subscription, subscription_message
from tests.integration.webhook.receiver import Receiver
from tests.integration.webhook.test_delivery import add_endpoint, verify


async def stored(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(
            "SELECT id, secret, secret_encrypted, previous_secret, previous_secret_encrypted FROM webhook.endpoints"
        )
    finally:
        await conn.close()


def holds_plaintext(rows: list[asyncpg.Record], secret: str) -> bool:
    body = secret.removeprefix("whsec_")
    return any(body in str(value) for row in rows for value in row.values())


async def test_a_new_endpoints_secret_is_stored_only_encrypted(worker: Worker, database_url: str) -> None:
    endpoint = await add_endpoint(worker.pool, uuid.uuid4(), "http://127.0.0.1:9/hook")
    assert endpoint.secret is not None and endpoint.secret.startswith("whsec_")

    (row,) = await stored(database_url)
    assert row["secret"] is None and row["previous_secret"] is None
    assert not holds_plaintext([row], endpoint.secret)
    assert BOX.decrypt(row["secret_encrypted"]) == endpoint.secret


async def test_plaintext_secrets_are_sealed_at_start_and_still_sign(
    worker: Worker, receiver: Receiver, publish: Any, database_url: str
) -> None:
    await worker.stop()
    account, secret, previous = uuid.uuid4(), new_secret(), new_secret()
    conn = await asyncpg.connect(database_url)
    try:  # a row as the service wrote it before secrets were encrypted
        await conn.execute(
            "INSERT INTO webhook.endpoints (id, account_id, url, event_types, secret, previous_secret,"
            " previous_secret_expires_at) VALUES ($1, $2, $3, $4, $5, $6, now() + interval '1 hour')",
            uuid.uuid4(),
            account,
            receiver.url("/legacy"),
            ["Subscribe", "Unsubscribe"],
            secret,
            previous,
        )
    finally:
        await conn.close()

    await worker.start()
    rows = await stored(database_url)
    assert not holds_plaintext(rows, secret) and not holds_plaintext(rows, previous)
    await publish(subscription_message("subscription.created", subscription(account)))
    (request,) = await receiver.wait_for("/legacy", 1)
    assert verify(secret, request)["eventType"] == "Subscribe"
    assert verify(previous, request)["eventType"] == "Subscribe"


async def test_after_a_key_rotation_signatures_verify_and_every_secret_moves_to_the_new_key(
    worker: Worker, receiver: Receiver, publish: Any, database_url: str
) -> None:
    account = uuid.uuid4()
    endpoint = await add_endpoint(worker.pool, account, receiver.url("/rotated"))
    assert endpoint.secret is not None
    new_key = SecretBox.generate_key()

    await worker.stop()
    await worker.start(box=SecretBox([new_key, ENCRYPTION_KEY]))  # the new key first, the old still listed
    await publish(subscription_message("subscription.created", subscription(account)))
    (request,) = await receiver.wait_for("/rotated", 1)

    assert verify(endpoint.secret, request)["eventType"] == "Subscribe"
    (row,) = await stored(database_url)
    assert SecretBox([new_key]).decrypt(row["secret_encrypted"]) == endpoint.secret  # the old key may go now
