"""Test helpers: real PostgreSQL and RabbitMQ per run, a database per test, services as processes.

The servers come from KALENDS_TEST_DATABASE_URL / KALENDS_TEST_AMQP_URL, else the local defaults,
else testcontainers where a Docker engine exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

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


@contextlib.contextmanager
def server_urls() -> Iterator[tuple[str, str]]:
    """(PostgreSQL server URL, AMQP URL) for this test run."""
    db_url = os.environ.get("KALENDS_TEST_DATABASE_URL") or DEFAULT_DB
    amqp_url = os.environ.get("KALENDS_TEST_AMQP_URL") or DEFAULT_AMQP
    if _port_open(db_url, 5432) and _port_open(amqp_url, 5672):
        yield db_url, amqp_url
        return
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
        )
        return self

    async def wait_ready(self, timeout: float = 30.0, path: str = "/readyz") -> None:
        import aiohttp

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
        if self.process is None or self.process.poll() is not None:
            return
        if sig is None:
            self.process.terminate()
        else:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
