"""End-to-end fixtures: the four services as real processes on free ports, over one database and a
broker prefix of the module's own, driven only through HTTP (and the admin CLI the contract names)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from shared.amqp import Names
from shared.testing import Stack, create_database, drop_database, random_name, remember_prefix, with_database


@pytest.fixture(scope="module")
async def e2e_database_url(server_db_url: str, template_db: str) -> AsyncIterator[str]:
    name = random_name("kalends_e2e")
    await create_database(server_db_url, name, template=template_db)
    yield with_database(server_db_url, name)
    await drop_database(server_db_url, name)


@pytest.fixture(scope="module")
def e2e_names(amqp_url: str) -> Names:
    names = Names(prefix=random_name("e2e") + ".")
    remember_prefix(amqp_url, names.prefix)  # the services' queues are deleted when the run ends
    return names


@pytest.fixture(scope="module")
def stack(e2e_database_url: str, amqp_url: str, e2e_names: Names) -> Iterator[Stack]:
    stack = Stack(
        {
            "KALENDS_DATABASE_URL": e2e_database_url,
            "KALENDS_AMQP_URL": amqp_url,
            "KALENDS_AMQP_PREFIX": e2e_names.prefix,
            "KALENDS_WEBHOOK_ALLOW_PRIVATE": "1",
        }
    )
    yield stack
    stack.stop_all()
