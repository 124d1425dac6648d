"""Whatever a receiver answers, the attempt is recorded once: NUL bytes, invalid UTF-8, and an
outcome the database refuses to store all end in a record, never in a silent re-send."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from services.webhook.api.schemas import attempt_json
from tests.integration.webhook.conftest import Worker, subscription, subscription_message
from tests.integration.webhook.receiver import Receiver, Reply
from tests.integration.webhook.test_delivery import add_endpoint, wait_status


async def test_a_200_with_nul_bytes_in_the_body_is_one_attempt_recorded_as_success(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    account = uuid.uuid4()
    body = b"accepted\x00\xff\xfe not text"
    endpoint = await add_endpoint(worker.pool, account, receiver.script("/nul", Reply(200, body=body)))
    await publish(subscription_message("subscription.created", subscription(account)))

    ((delivery, attempts),) = await wait_status(worker.pool, account, endpoint.id, "succeeded")
    await asyncio.sleep(1.0)  # a re-send would come from the sweeper (0.2 s) once the claim is gone

    assert len(receiver.at("/nul")) == 1
    assert [(a["succeeded"], a["status_code"], a["response_body"]) for a in attempts] == [(True, 200, body)]
    assert attempt_json(attempts[0])["responseBody"] == "accepted\x00\ufffd\ufffd not text"
    assert delivery["status"] == "succeeded"


async def test_an_outcome_the_database_refuses_is_recorded_without_its_body_and_not_sent_again(
    worker: Worker, receiver: Receiver, publish: Any, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        # A real failure to store, from PostgreSQL itself: this body cannot be written.
        await conn.execute(
            "CREATE FUNCTION webhook.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.response_body = 'poison'::bytea THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;"
            " CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON webhook.delivery_attempts"
            " FOR EACH ROW EXECUTE FUNCTION webhook.refuse_poison()"
        )
    finally:
        await conn.close()
    account = uuid.uuid4()
    endpoint = await add_endpoint(worker.pool, account, receiver.script("/poison", Reply(200, body=b"poison")))
    await publish(subscription_message("subscription.created", subscription(account)))

    ((_delivery, attempts),) = await wait_status(worker.pool, account, endpoint.id, "succeeded")
    await asyncio.sleep(1.0)

    assert len(receiver.at("/poison")) == 1
    (attempt,) = attempts
    assert attempt["succeeded"] is True and attempt["status_code"] == 200 and attempt["response_body"] is None
    assert "could not be stored in full" in attempt["error"]
