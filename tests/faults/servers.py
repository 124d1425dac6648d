"""Private PostgreSQL and RabbitMQ servers a test may restart, kill or break, never the shared ones.

Each lives in a temporary directory on free ports and is started from the machine's own binaries
(Debian's postgresql and rabbitmq-server packages): `PrivatePostgres.find()` / `PrivateRabbit.find()`
say why not when a binary is missing, so a test can skip with that reason. A later cluster test can
start several of either.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg

from shared.testing import free_port


async def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0, check: bool = True) -> str:
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    text = out.decode(errors="replace")
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}):\n{text[-3000:]}")
    return text


async def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s") from None
            await asyncio.sleep(0.2)


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in `root`), trust auth, on 127.0.0.1:`port`."""

    bin_dir: Path
    root: Path
    port: int = field(default_factory=free_port)
    user: str = "postgres"  # initdb and postgres refuse to run as root

    @staticmethod
    def find() -> Path | str:
        """The bin directory of the newest installed PostgreSQL, or why there is none."""
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        if not found:
            return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root without a 'postgres' user to run a private PostgreSQL as"
        return Path(found[-1]).parent

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() != 0:
            return list(args)
        return ["runuser", "-u", self.user, "--", *args]

    async def init(self) -> PrivatePostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, self.user, self.user)
        await _run(
            *self._as_owner(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")
        )
        return self

    async def start(self, timeout: float = 30.0) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        await _run(
            *self._as_owner(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w"
            ),
            "start",
            timeout=timeout,
        )

    async def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects clients and shuts down cleanly; `immediate` is a crash (recovery at start)."""
        await _run(*self._as_owner(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"))

    async def restart(self, mode: str = "immediate", down_for: float = 0.0) -> None:
        await self.stop(mode)
        await asyncio.sleep(down_for)
        await self.start()

    async def started_at(self) -> datetime:
        """When the server process started (a restart changes it)."""
        conn = await asyncpg.connect(self.url)
        try:
            started: datetime = await conn.fetchval("SELECT pg_postmaster_start_time()")
        finally:
            await conn.close()
        return started

    async def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            await _run(
                *self._as_owner(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"),
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)


RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


@dataclass
class PrivateRabbit:
    """A RabbitMQ node of its own (name, ports, data, logs, cookie and config in `root`), no plugins.

    Run from /usr/lib/rabbitmq/bin directly: Debian's /usr/sbin wrappers switch to the rabbitmq user
    and its home (the shared node's cookie and data). The node's cookie is `root/.erlang.cookie`
    (mode 0400), which both the server and rabbitmqctl read through HOME.
    """

    root: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    # Its own Erlang port mapper: registered with the shared node's epmd (4369), the private node's
    # starts, stops and kills went through the daemon the shared broker depends on.
    epmd_port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"kalends-{secrets.token_hex(4)}@localhost")
    process: asyncio.subprocess.Process | None = None

    @staticmethod
    def find() -> Path | str:
        if not (RABBIT_BIN / "rabbitmq-server").exists() or not (RABBIT_BIN / "rabbitmqctl").exists():
            return f"no RabbitMQ server binaries in {RABBIT_BIN}: apt-get install rabbitmq-server"
        if shutil.which("epmd") is None:
            return "no epmd (Erlang port mapper) on PATH: apt-get install erlang-base"
        return RABBIT_BIN

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def env(self) -> dict[str, str]:
        r = self.root
        return {
            **os.environ,
            "HOME": str(r),  # the Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(r / "mnesia"),
            "RABBITMQ_LOG_BASE": str(r / "log"),
            "RABBITMQ_CONFIG_FILE": str(r / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(r / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(r / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(r / "plugins-expand"),
            "RABBITMQ_CONF_ENV_FILE": str(r / "rabbitmq-env.conf"),  # not /etc/rabbitmq's (the shared node's name)
            "RABBITMQ_PID_FILE": str(r / "pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
        }

    async def init(self) -> PrivateRabbit:
        self.root.mkdir(parents=True, exist_ok=True)
        cookie = self.root / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        (self.root / "enabled_plugins").write_text("[].\n")  # no management plugin on this node
        (self.root / "rabbitmq.conf").write_text("loopback_users = none\n")
        (self.root / "rabbitmq-env.conf").write_text("")
        return self

    async def ctl(self, *args: str, timeout: float = 60.0, check: bool = True) -> str:
        return await _run(
            str(RABBIT_BIN / "rabbitmqctl"), "-n", self.name, *args, env=self.env, timeout=timeout, check=check
        )

    async def start(self, timeout: float = 60.0) -> None:
        log = (self.root / "server.out").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            str(RABBIT_BIN / "rabbitmq-server"), env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        await _wait_port(self.port, timeout)  # the AMQP listener opens last, once the node has booted
        await self.ctl("await_startup", "--timeout", str(int(timeout)))

    async def stop(self) -> None:
        await self.ctl("stop", check=False)
        if self.process is None:
            return
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            # The script runs the Erlang VM as a child: kill that (its pid file), then the script.
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((self.root / "pid").read_text().strip()), signal.SIGKILL)
            self.process.kill()
            await self.process.wait()

    async def restart(self, down_for: float = 0.0) -> None:
        await self.stop()
        await asyncio.sleep(down_for)
        await self.start()

    async def destroy(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.stop()
        # The node started an epmd daemon on its own port; it outlives the node unless told to stop.
        await _run("epmd", "-port", str(self.epmd_port), "-kill", env=self.env, timeout=10, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
