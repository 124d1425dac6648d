"""A broker given as several nodes (KALENDS_AMQP_URL comma-separated): the connection starts on the
first node that answers, against the real broker; the cluster run (tests/cluster) kills nodes."""

from __future__ import annotations

import pytest

from shared import amqp
from shared.testing import free_port


async def test_a_list_whose_first_node_is_down_connects_to_the_next(amqp_url: str) -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    connection = await amqp.connect(f"{dead}, {amqp_url}")
    try:
        assert isinstance(connection, amqp.FailoverConnection)
        assert connection.connected.is_set()
        assert connection.transport is not None
        assert connection.transport.connection.url.port == connection.url.port != int(dead.rsplit(":", 1)[1][:-1])
        channel = await connection.channel()
        await channel.close()
    finally:
        await connection.close()


async def test_a_list_of_nodes_all_down_fails_with_the_last_error() -> None:
    urls = ",".join(f"amqp://guest:guest@127.0.0.1:{free_port()}/" for _ in range(2))
    with pytest.raises(ConnectionError):
        await amqp.connect(urls)
