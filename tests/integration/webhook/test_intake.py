"""The batch intake of subscription messages: many messages per transaction, each applied once, and a
batch the database refuses is applied message by message, the refused one alone left to the
dead-letter rules."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from services.webhook.messaging.intake import DeliveryIntake
from shared.lifecycle import CONSUMERS
from tests.integration.webhook.conftest import Worker, subscription, subscription_message
from tests.integration.webhook.receiver import Receiver
from tests.integration.webhook.test_delivery import add_endpoint


def intake(worker: Worker) -> DeliveryIntake:
    (consumer,) = worker.app[CONSUMERS]
    assert isinstance(consumer, DeliveryIntake)
    return consumer


async def test_messages_arriving_together_are_applied_in_batches_each_once_duplicates_included(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    await add_endpoint(worker.pool, account, receiver.url("/hook"))
    envelopes = [subscription_message("subscription.created", subscription(account)) for _ in range(60)]
    await asyncio.gather(*(publish(e) for e in envelopes + envelopes[:6]))

    received = await receiver.wait_for("/hook", 60, timeout=20)
    await asyncio.sleep(1.0)
    assert sorted(r.headers["webhook-id"] for r in receiver.at("/hook")) == sorted(str(e.id) for e in envelopes)
    assert len(received) == 60
    async with worker.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM webhook.events")
        processed = await conn.fetchval("SELECT count(*) FROM webhook.processed_messages")
    assert stored == processed == 60
    counted = intake(worker)
    assert (counted.applied, counted.duplicates, counted.processed) == (60, 6, 66)
    assert 1 <= counted.batches < 66  # messages shared transactions
    assert counted.acks_sent < counted.processed  # and acks: one multiple ack covers a batch


async def test_a_batch_the_database_refuses_is_applied_message_by_message_leaving_out_only_the_bad_one(
    worker: Worker, receiver: Receiver, publish: Any, database_url: str
) -> None:
    refused = uuid.uuid4()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "CREATE FUNCTION webhook.refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.subscription_id = '{refused}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;"
            " CREATE TRIGGER refuse_event BEFORE INSERT ON webhook.events"
            " FOR EACH ROW EXECUTE FUNCTION webhook.refuse_event()"
        )
    finally:
        await conn.close()
    account = uuid.uuid4()
    await add_endpoint(worker.pool, account, receiver.url("/hook"))
    good = [subscription_message("subscription.created", subscription(account)) for _ in range(10)]
    bad = subscription_message("subscription.created", subscription(account, subscription_id=refused))
    await asyncio.gather(*(publish(e) for e in [*good[:5], bad, *good[5:]]))

    await receiver.wait_for("/hook", 10, timeout=20)
    counted = intake(worker)
    for _ in range(100):  # the refused message is retried up to the queue's delivery limit
        if counted.failed >= 5:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert sorted(r.headers["webhook-id"] for r in receiver.at("/hook")) == sorted(str(e.id) for e in good)
    async with worker.pool.acquire() as conn:
        ids = {r["message_id"] for r in await conn.fetch("SELECT message_id FROM webhook.processed_messages")}
    assert ids == {e.id for e in good}
    assert counted.failed >= 5
