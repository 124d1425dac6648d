"""End-to-end fixtures: the four services as real processes on free ports, over one database and a
broker prefix of the module's own, driven only through HTTP (and the admin CLI the contract names)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from shared.amqp import Names
from shared.testing import ROOT, ServiceProcess, create_database, drop_database, free_port, random_name, with_database

SERVICE_PORTS = ("auth", "ingest", "feed", "webhook")


class Stack:
    """Services of one test module. Ports are chosen up front so every process knows the others."""

    def __init__(self, env: dict[str, str]) -> None:
        self.ports = {name: free_port() for name in SERVICE_PORTS}
        self.env = {
            **env,
            "KALENDS_AUTH_URL": f"http://127.0.0.1:{self.ports['auth']}",
            "KALENDS_PUBLIC_FEED_URL": f"http://127.0.0.1:{self.ports['feed']}",
            **{f"KALENDS_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
        }
        self.processes: dict[str, ServiceProcess] = {}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    async def start(
        self, service: str, *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
    ) -> ServiceProcess:
        """Start (or restart) a service and wait until /readyz answers 200."""
        old = self.processes.get(service)
        if old is not None:
            old.stop()
        process = ServiceProcess(service, {**self.env, **(env or {})}, list(args), port=self.ports[service])
        process.start()
        self.processes[service] = process
        await process.wait_ready(timeout)
        return process

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop()

    async def admin(self, *args: str) -> dict[str, Any]:
        """Run `python -m services.auth.admin ...` and return the JSON it prints."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.auth.admin",
            *args,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"admin {args} failed ({proc.returncode}): {err.decode()[-2000:]}")
        result: dict[str, Any] = json.loads(out)
        return result

    async def new_account(self, code: str | None = None, name: str = "Test Account") -> dict[str, Any]:
        """A fresh account with one OAuth client: accountId, accountCode, name, clientId, clientSecret."""
        return await self.admin("create-account", code or random_name("acct"), "--name", name)

    async def token(self, account: dict[str, Any]) -> str:
        """A client-credentials access token for `account` from the running auth service."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.url("auth") + "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=aiohttp.BasicAuth(account["clientId"], account["clientSecret"]),
            ) as response,
        ):
            body = await response.json()
            assert response.status == 200, body
            return str(body["access_token"])


@pytest.fixture(scope="module")
async def e2e_database_url(server_db_url: str, template_db: str) -> AsyncIterator[str]:
    name = random_name("kalends_e2e")
    await create_database(server_db_url, name, template=template_db)
    yield with_database(server_db_url, name)
    await drop_database(server_db_url, name)


@pytest.fixture(scope="module")
def e2e_names() -> Names:
    return Names(prefix=random_name("e2e") + ".")


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
