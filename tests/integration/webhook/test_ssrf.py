"""SSRF: private, loopback, link-local, multicast and unspecified destinations are refused at
creation and again at delivery, on the address actually connected to, unless allowed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from services.webhook import services
from services.webhook.adapters.sender import WebhookSender
from shared.errors import InvalidRequest
from tests.integration.webhook.conftest import BOX, Worker, subscription, subscription_message
from tests.integration.webhook.receiver import Receiver


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.4/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://224.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://127.1/hook",
    ],
)
async def test_a_webhook_url_on_a_forbidden_address_is_refused_at_creation(url: str, pool: asyncpg.Pool) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await services.create_endpoint(
            pool, uuid.uuid4(), url=url, event_types=None, enabled=True, description="", allow_private=False, box=BOX
        )
    assert refused.value.reason.startswith("url: ")
    assert refused.value.code == "UnsafeWebhookUrl"


async def test_plain_http_is_refused_unless_private_addresses_are_allowed(pool: asyncpg.Pool) -> None:
    with pytest.raises(InvalidRequest, match="https"):
        await services.validate_url("http://example.com/hook", allow_private=False)
    assert await services.validate_url("http://127.0.0.1:9/hook", allow_private=True) == "http://127.0.0.1:9/hook"


async def test_delivery_to_an_endpoint_that_resolves_to_a_loopback_address_is_refused_when_connecting(
    worker: Worker, receiver: Receiver, publish: Any
) -> None:
    # Created while private addresses were allowed; the worker now refuses them.
    account = uuid.uuid4()
    endpoint = await services.create_endpoint(
        worker.pool,
        account,
        url=f"http://localhost:{receiver.port}/hook",
        event_types=None,
        enabled=True,
        description="",
        allow_private=True,
        box=BOX,
    )
    await worker.stop()
    await worker.start(allow_private=False)
    await publish(subscription_message("subscription.created", subscription(account)))
    for _ in range(100):
        page = await services.list_deliveries(worker.pool, account, endpoint.id, limit=5, status=None, before=None)
        if page.deliveries and page.deliveries[0][1] and page.deliveries[0][1][0]["finished_at"]:
            break
        await asyncio.sleep(0.1)
    (_delivery, attempts) = page.deliveries[0]
    assert attempts[0]["succeeded"] is False
    assert attempts[0]["status_code"] is None
    assert "refused to connect to" in attempts[0]["error"]
    assert "loopback" in attempts[0]["error"]
    assert receiver.received == []


async def test_the_sender_refuses_an_ip_literal_private_address_and_allows_it_when_told() -> None:
    receiver = await Receiver().start()
    try:
        strict = WebhookSender(timeout=2, allow_private=False)
        outcome = await strict.send(receiver.url("/x"), {}, b"{}")
        await strict.close()
        assert not outcome.succeeded and outcome.error is not None and "127.0.0.1" in outcome.error
        lenient = WebhookSender(timeout=2, allow_private=True)
        allowed = await lenient.send(receiver.url("/x"), {}, b"{}")
        await lenient.close()
        assert allowed.succeeded and allowed.status_code == 200
        assert len(receiver.received) == 1
    finally:
        await receiver.stop()


async def test_attempts_reuse_a_kept_alive_connection_and_reuse_never_lets_a_forbidden_address_through() -> None:
    receiver = await Receiver().start()
    try:
        lenient = WebhookSender(timeout=2, allow_private=True)
        outcomes = [await lenient.send(receiver.url("/x"), {}, b"{}") for _ in range(5)]
        outcomes += await asyncio.gather(*(lenient.send(receiver.url("/x"), {}, b"{}") for _ in range(3)))
        await lenient.close()
        assert all(o.succeeded for o in outcomes)
        peers = [r.peer for r in receiver.at("/x")]
        assert len(peers) == 8 and len(set(peers[:5])) == 1  # one after another: one connection
        assert len(set(peers)) <= 4  # and concurrent ones open at most what they need

        # The check is made when a connection is made, on the address connected to; a strict sender
        # never has a connection to a forbidden address to reuse, so every attempt is refused.
        strict = WebhookSender(timeout=2, allow_private=False)
        for url in (receiver.url("/x"), f"http://localhost:{receiver.port}/x", receiver.url("/x")):
            refused = await strict.send(url, {}, b"{}")
            assert not refused.succeeded and refused.error is not None and "refused to connect" in refused.error
        await strict.close()
        assert len(receiver.at("/x")) == 8
    finally:
        await receiver.stop()
