"""A private 3-node RabbitMQ cluster and a PostgreSQL primary with a streaming hot standby.

Built on tests/faults/servers.py (the machine's Debian binaries, temporary directories, free ports),
never on the shared servers. The RabbitMQ nodes share one Erlang cookie and one epmd of their own
(started here on a free port, killed in `destroy`); each node runs in a process group of its own so
that `kill()` is a real kill -9 of the node (script, VM and its port programs) and `destroy` leaves
nothing behind even when a test failed half-way.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from shared.testing import free_port
from tests.faults.servers import RABBIT_BIN, PrivatePostgres, PrivateRabbit, _run, _wait_port


class ClusterNode(PrivateRabbit):
    """A PrivateRabbit in a process group of its own, so it can be killed whole."""

    async def start(self, timeout: float = 90.0) -> None:
        log = (self.root / "server.out").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            str(RABBIT_BIN / "rabbitmq-server"),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        await _wait_port(self.port, timeout)
        await self.ctl("await_startup", "--timeout", str(int(timeout)))

    def kill(self) -> None:
        """SIGKILL the node's whole process group: no clean shutdown, no goodbye to its peers."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    async def wait_killed(self) -> None:
        if self.process is not None:
            await asyncio.wait_for(self.process.wait(), 30)

    async def destroy(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.ctl("stop", timeout=20, check=False)
            self.kill()
            with contextlib.suppress(TimeoutError):
                await self.wait_killed()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RabbitCluster:
    """Three nodes (by default) joined into one cluster, with one epmd and one cookie."""

    root: Path
    size: int = 3
    epmd_port: int = field(default_factory=free_port)
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url_list(self) -> str:
        """Every node, comma-separated, as KALENDS_AMQP_URL takes them."""
        return ",".join(self.urls)

    async def start(self, timeout: float = 90.0) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        cookie = secrets.token_hex(16)
        tag = secrets.token_hex(3)
        for i in range(self.size):
            node = ClusterNode(self.root / f"node{i}", epmd_port=self.epmd_port, name=f"kalends-{tag}-{i}@localhost")
            await node.init()
            cookie_file = node.root / ".erlang.cookie"
            cookie_file.chmod(0o600)
            cookie_file.write_text(cookie)
            cookie_file.chmod(0o400)
            self.nodes.append(node)
        # One port mapper for the three, on its own port (never the shared broker's 4369).
        await _run("epmd", "-daemon", "-port", str(self.epmd_port), env=self.nodes[0].env, timeout=10)
        await asyncio.gather(*(node.start(timeout) for node in self.nodes))
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            await node.ctl("stop_app")
            await node.ctl("join_cluster", seed.name)
            await node.ctl("start_app")
        running = await self.running_nodes(seed)
        if sorted(running) != sorted(n.name for n in self.nodes):
            raise RuntimeError(f"the cluster formed with {running}, not every node")

    async def running_nodes(self, via: ClusterNode) -> list[str]:
        out = await via.ctl("eval", "rabbit_nodes:all_running().")
        return [part.strip(" '\n") for part in out.strip().strip("[]").split(",") if part.strip()]

    async def queues(self, via: ClusterNode) -> dict[str, tuple[str, list[str], list[str]]]:
        """Every queue of the cluster: name -> (type, nodes holding a replica, those of them online)."""
        out = await via.ctl("list_queues", "name", "type", "members", "online", "--quiet", "--no-table-headers")

        def names(field: str) -> list[str]:
            return [m.strip(" '") for m in field.strip().strip("[]").split(",") if m.strip()]

        found = {}
        for line in out.splitlines():
            name, kind, members, online = ([*line.split("\t"), "", "", ""])[:4]
            found[name] = (kind, names(members), names(online))
        return found

    async def connections(self, via: ClusterNode) -> collections.Counter[str]:
        """Client connections per node name (from each connection's Erlang pid)."""
        out = await via.ctl("list_connections", "pid", "--quiet", "--no-table-headers")
        return collections.Counter(re.findall(r"<([^<>@]+@[^.<>]+)\.", out))

    async def destroy(self) -> None:
        await asyncio.gather(*(node.destroy() for node in self.nodes), return_exceptions=True)
        env = {**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)}
        await _run("epmd", "-port", str(self.epmd_port), "-kill", env=env, timeout=10, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class ReplicatedPostgres:
    """A scratch primary and its streaming replica (pg_basebackup -R, hot standby), each in `root`."""

    bin_dir: Path
    root: Path
    primary: PrivatePostgres = field(init=False)
    replica: PrivatePostgres = field(init=False)

    def __post_init__(self) -> None:
        self.primary = PrivatePostgres(self.bin_dir, self.root / "primary")
        self.replica = PrivatePostgres(self.bin_dir, self.root / "replica")

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        await self.primary.init()
        await self.primary.start()
        self.replica.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.replica.root, "postgres", "postgres")
        # -R writes standby.signal and primary_conninfo: the copy starts as a streaming hot standby.
        await _run(
            *self.primary._as_owner(
                str(self.bin_dir / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"),
                *("-D", str(self.replica.data), "-R", "-X", "stream", "-c", "fast"),
            ),
            timeout=120,
        )
        await self.replica.start()
        conn = await asyncpg.connect(self.replica.url)
        try:
            if not await conn.fetchval("SELECT pg_is_in_recovery()"):
                raise RuntimeError("the replica is not in recovery: not a standby")
        finally:
            await conn.close()

    async def wait_replayed(self, timeout: float = 30.0) -> float:
        """Seconds until the replica has replayed everything the primary had written when called."""
        primary = await asyncpg.connect(self.primary.url)
        replica = await asyncpg.connect(self.replica.url)
        started = time.monotonic()
        try:
            target = await primary.fetchval("SELECT pg_current_wal_lsn()")
            while True:
                if await replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target):
                    return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"the replica did not replay up to {target} in {timeout}s")
                await asyncio.sleep(0.01)
        finally:
            await primary.close()
            await replica.close()

    async def destroy(self) -> None:
        await self.replica.destroy()
        await self.primary.destroy()
        shutil.rmtree(self.root, ignore_errors=True)
