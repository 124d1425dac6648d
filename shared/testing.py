"""Test helpers: real PostgreSQL and RabbitMQ per run, a database per test, services as processes.

The servers come from KALENDS_TEST_DATABASE_URL / KALENDS_TEST_AMQP_URL, else the local defaults,
else testcontainers where a Docker engine exists.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner
from cryptography.fernet import Fernet

from shared.web import FrontedAppRunner

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def _port_open(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    import shutil

    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "info"], capture_output=True, timeout=10).returncode == 0


@contextlib.contextmanager
def server_urls(wait: float = 30.0) -> Iterator[tuple[str, str]]:
    """(PostgreSQL server URL, AMQP URL) for this test run.

    Local servers that are briefly away (a restart) are waited for; testcontainers is used only
    where they are not there at all and a Docker engine is.
    """
    db_url = os.environ.get("KALENDS_TEST_DATABASE_URL") or DEFAULT_DB
    amqp_url = os.environ.get("KALENDS_TEST_AMQP_URL") or DEFAULT_AMQP
    deadline = time.monotonic() + wait
    while True:
        db_up, amqp_up = _port_open(db_url, 5432), _port_open(amqp_url, 5672)
        if db_up and amqp_up:
            yield db_url, amqp_url
            return
        if time.monotonic() > deadline or not (db_up or amqp_up):
            break
        time.sleep(0.5)
    if not _docker_available():
        missing = [
            name for name, up in (("PostgreSQL at " + db_url, db_up), ("RabbitMQ at " + amqp_url, amqp_up)) if not up
        ]
        raise RuntimeError(
            f"tests need a real {' and '.join(missing)}; start them (scripts/bootstrap.sh does) or set "
            "KALENDS_TEST_DATABASE_URL / KALENDS_TEST_AMQP_URL, or run where a Docker engine is"
        )
    # Fallback for machines with Docker and no local servers.
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as pg, RabbitMqContainer("rabbitmq:3.13") as mq:
        params = mq.get_connection_params()
        yield (pg.get_connection_url(), f"amqp://guest:guest@{params.host}:{params.port}/")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def random_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


async def create_database(server_url: str, name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FrontedTestServer(TestServer):
    """aiohttp's TestServer with the runner services run with (shared.web.FrontedAppRunner), so an
    in-process test goes through the app's front door (FRONT) as a real request would."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return FrontedAppRunner(self.app, **kwargs)


@dataclass
class ServiceProcess:
    """One `python -m services.<name>` process, on a free port, logging to a file."""

    service: str
    env: Mapping[str, str]
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        env = {**os.environ, **self.env, "KALENDS_LOG_FORMAT": "json"}
        if self.log_path is None:
            self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"kalends-{self.service}-{self.port}.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.service}", "--port", str(self.port), *self.args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # A group of its own: the HTTP workers it forks (--workers) go with it, even on SIGKILL.
            start_new_session=True,
        )
        return self

    async def wait_ready(self, timeout: float = 30.0, path: str = "/readyz") -> None:

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"{self.service} exited with {self.process.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(self.url + path) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.service} not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int | None = None, timeout: float = 10.0) -> None:
        """Signal the service (SIGTERM by default) and wait; SIGKILL its whole group after `timeout`.
        Forked workers its own shutdown left behind are killed either way."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if sig is None else sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                self.process.wait()
        self._kill_group()

    def kill(self) -> None:
        """SIGKILL the service and every worker it forked: nothing runs any cleanup."""
        if self.process is not None:
            self._kill_group()
            self.process.wait()

    def _kill_group(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


SERVICE_PORTS = ("auth", "ingest", "feed", "webhook", "sync", "mail", "web")


def basic_auth(user: str, password: str) -> str:
    """An HTTP Basic Authorization header value (aiohttp.BasicAuth is deprecated in aiohttp 3.14)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class Stack:
    """Services of one test module. Ports are chosen up front so every process knows the others."""

    def __init__(self, env: dict[str, str]) -> None:
        self.ports = {name: free_port() for name in SERVICE_PORTS}
        self.env = {
            **env,
            "KALENDS_AUTH_URL": f"http://127.0.0.1:{self.ports['auth']}",
            "KALENDS_PUBLIC_FEED_URL": f"http://127.0.0.1:{self.ports['feed']}",
            "KALENDS_PUBLIC_SYNC_URL": f"http://127.0.0.1:{self.ports['sync']}",
            # One key list per stack, as one deployment has: every service decrypts what another encrypted.
            "KALENDS_ENCRYPTION_KEYS": env.get("KALENDS_ENCRYPTION_KEYS") or Fernet.generate_key().decode(),
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
        """SIGTERM every process first, then wait for each: they shut down in parallel."""
        for process in self.processes.values():
            if process.process is not None and process.process.poll() is None:
                process.process.terminate()
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

    async def start_web(self, env: dict[str, str] | None = None, timeout: float = 30.0) -> ServiceProcess:
        """Start web as a deployment runs it: with a platform account and an OAuth client of its own
        (scope calendar-pages) to call ingest with; `env` adds to or overrides its settings."""
        platform = await self.new_account(name="Kalends pages")
        client = await self.admin("create-client", platform["accountCode"], "--scope", "calendar-pages")
        settings = {
            "KALENDS_INGEST_URL": self.url("ingest"),
            "KALENDS_WEB_CLIENT_ID": client["clientId"],
            "KALENDS_WEB_CLIENT_SECRET": client["clientSecret"],
        }
        return await self.start("web", env={**settings, **(env or {})}, timeout=timeout)

    async def token(self, account: dict[str, Any]) -> str:
        """A client-credentials access token for `account` from the running auth service."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.url("auth") + "/oauth2/token",
                data={"grant_type": "client_credentials"},
                headers={"Authorization": basic_auth(account["clientId"], account["clientSecret"])},
            ) as response,
        ):
            body = await response.json()
            assert response.status == 200, body
            return str(body["access_token"])


# Broker name prefixes a test run used, by broker URL; the run deletes what is left under them.
RUN_PREFIXES: dict[str, set[str]] = {}


def remember_prefix(amqp_url: str, prefix: str) -> None:
    RUN_PREFIXES.setdefault(amqp_url, set()).add(prefix)


def _rabbitmqctl_list(what: str) -> list[str]:
    """Names of the local broker's queues or exchanges, by rabbitmqctl (AMQP cannot list them)."""
    import shutil

    if shutil.which("rabbitmqctl") is None:
        return []
    try:
        # The local broker's own tool, found on PATH.
        done = subprocess.run(
            ["rabbitmqctl", what, "name", "--quiet", "--no-table-headers"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


async def delete_prefixed(amqp_url: str, prefixes: set[str]) -> int:
    """Delete every queue and exchange whose name starts with one of `prefixes` (a test run's own).

    Services started by tests declare their queues under the run's prefix; nothing else would remove
    them, and quorum queues left behind accumulate on the shared broker. Only for a broker on this
    machine (listing needs rabbitmqctl); returns how many were deleted.
    """
    if not prefixes or urlsplit(amqp_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return 0
    wanted = tuple(prefixes)
    queues = [q for q in await asyncio.to_thread(_rabbitmqctl_list, "list_queues") if q.startswith(wanted)]
    exchanges = [e for e in await asyncio.to_thread(_rabbitmqctl_list, "list_exchanges") if e.startswith(wanted)]
    if not queues and not exchanges:
        return 0
    import aio_pika

    deleted = 0
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        channel = await connection.channel()
        for name in queues:
            try:
                await channel.queue_delete(name)
                deleted += 1
            except Exception:
                channel = await connection.channel()
        for name in exchanges:
            try:
                await channel.exchange_delete(name)
                deleted += 1
            except Exception:
                channel = await connection.channel()
    finally:
        await connection.close()
    return deleted


@contextlib.asynccontextmanager
async def running_stack(label: str, env: Mapping[str, str] | None = None) -> AsyncIterator[Stack]:
    """A Stack on a database and broker prefix of its own, for a benchmark or a script: started
    services are stopped, the database dropped and the prefix's queues deleted on the way out."""
    with server_urls() as (server_db, amqp_url):
        name = random_name(f"kalends_{label}")
        await create_database(server_db, name)
        prefix = random_name(label) + "."
        stack = Stack(
            {
                "KALENDS_DATABASE_URL": with_database(server_db, name),
                "KALENDS_AMQP_URL": amqp_url,
                "KALENDS_AMQP_PREFIX": prefix,
                "KALENDS_LOG_LEVEL": "warning",
                **(env or {}),
            }
        )
        try:
            yield stack
        finally:
            stack.stop_all()
            await drop_database(server_db, name)
            await delete_prefixed(amqp_url, {prefix})
