"""Kalends on a 3-node RabbitMQ cluster: every queue a quorum queue with a replica on each node, and a
node killed with SIGKILL under load (then restarted) loses and doubles nothing.

The services are real processes given every node in KALENDS_AMQP_URL (shared.amqp fails over between
them); the receiver and the feeds are read over HTTP. Run with `-s` to see the counts and pauses.
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from shared import amqp
from shared.testing import Stack
from tests.cluster.conftest import SKIP, ClusterServers
from tests.faults.load import CALENDAR, HOOK_PATH, SUMMARY, Tenant, converge, prepare, under_fault
from tests.faults.servers import _run
from tests.integration.webhook.receiver import Receiver

pytestmark = [
    pytest.mark.serial,
    pytest.mark.e2e,
    # The first test of the package also waits for the cluster and the replica to start (about 30 s).
    pytest.mark.timeout(240),
    pytest.mark.skipif(SKIP, reason="KALENDS_TEST_CLUSTER=0"),
]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def test_every_queue_is_a_quorum_queue_with_a_replica_on_each_of_the_three_nodes(
    cluster_servers: ClusterServers, cluster_stack: Stack
) -> None:
    rabbit = cluster_servers.rabbit
    prefix = cluster_stack.env["KALENDS_AMQP_PREFIX"]
    queues = {name: q for name, q in (await rabbit.queues(rabbit.nodes[1])).items() if name.startswith(prefix)}
    assert f"{prefix}feed.projection" in queues and f"{prefix}webhook.dispatch" in queues, sorted(queues)
    nodes = sorted(node.name for node in rabbit.nodes)
    wrong = {name: q for name, q in queues.items() if (q[0], sorted(q[1]), sorted(q[2])) != ("quorum", nodes, nodes)}
    assert not wrong, f"queues not quorum with a member on each of {nodes}: {wrong}"


@dataclass
class TimedTenant(Tenant):
    """A Tenant that notes when ingest accepted each event and each subscription."""

    accepted_at: dict[str, float] = field(default_factory=dict)

    async def add_event(self, title: str, day: int) -> bool:
        accepted = await super().add_event(title, day)
        if accepted:
            self.accepted_at[title] = time.time()
        return accepted

    async def subscribe(self, subscriber: str) -> bool:
        accepted = await super().subscribe(subscriber)
        if accepted:
            self.accepted_at[self.subscriptions[-1]] = time.time()
        return accepted


async def watch_feed(url: str, seen: dict[str, float], stop: asyncio.Event) -> None:
    """Note when each event title first shows in the feed at `url`."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while not stop.is_set():
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        now = time.time()
                        for title in SUMMARY.findall(await response.text()):
                            seen.setdefault(title, now)
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)


def pauses(accepted_at: dict[str, float], arrived_at: dict[str, float]) -> list[float]:
    return sorted(arrived_at[key] - at for key, at in accepted_at.items() if key in arrived_at)


async def test_every_accepted_change_arrives_once_after_a_broker_node_is_killed_mid_load(
    cluster_servers: ClusterServers, cluster_stack: Stack, receiver: Receiver
) -> None:
    rabbit = cluster_servers.rabbit
    base = await prepare(cluster_stack, receiver)
    tenant = TimedTenant(base.stack, base.account, base.token, list(base.subscriptions))
    # The node the services are connected to (the first of their lists): every connection must move.
    on_nodes = await rabbit.connections(rabbit.nodes[1])
    victim = next(node for node in rabbit.nodes if node.name == on_nodes.most_common(1)[0][0])
    assert on_nodes[victim.name] >= len(cluster_stack.processes), on_nodes
    stop_watching = asyncio.Event()
    seen: dict[str, float] = {}
    feed = f"{cluster_stack.url('feed')}/v1/calendars/{tenant.code}/{CALENDAR}.ics"
    watcher = asyncio.create_task(watch_feed(feed, seen, stop_watching))
    timings: dict[str, float] = {}

    async def kill_and_restart() -> None:
        started = time.monotonic()
        victim.kill()  # kill -9 of the node's whole process group
        await victim.wait_killed()
        await asyncio.sleep(3.0)  # load goes on with two nodes
        await victim.start()
        timings["restart"] = time.monotonic() - started

    try:
        recovered = await under_fault(tenant, kill_and_restart, before=1.5, after=2.0, pause=0.05)
        outcome = await converge(tenant, receiver, timeout=60)
    finally:
        stop_watching.set()
        await watcher
    assert sorted(await rabbit.running_nodes(rabbit.nodes[1])) == sorted(n.name for n in rabbit.nodes)
    after = await rabbit.connections(rabbit.nodes[1])
    assert after[victim.name] == 0 and sum(after.values()) >= on_nodes[victim.name], (on_nodes, after)
    # The restarted node holds its replica of every quorum queue again, online.
    prefix = cluster_stack.env["KALENDS_AMQP_PREFIX"]
    nodes = sorted(node.name for node in rabbit.nodes)

    async def replicas_online() -> dict[str, list[str]]:
        queues = await rabbit.queues(rabbit.nodes[1])
        return {n: sorted(q[2]) for n, q in queues.items() if n.startswith(prefix) and sorted(q[2]) != nodes}

    deadline = time.monotonic() + 15
    while (offline := await replicas_online()) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert not offline, f"quorum queues without every replica online after the restart: {offline}"
    hooks = {
        r.json["eventDetails"]["calendarSubscriptionId"]: r.at
        for r in reversed(receiver.at(HOOK_PATH))
        if r.status == 200 and r.json.get("eventType") == "Subscribe"
    }
    feed_pauses = pauses({t: a for t, a in tenant.accepted_at.items() if t in tenant.events}, seen)
    hook_pauses = pauses({s: a for s, a in tenant.accepted_at.items() if s in tenant.subscriptions}, hooks)
    deliveries = collections.Counter(r.json.get("eventType") for r in receiver.at(HOOK_PATH) if r.status == 200)
    print(
        f"\ncluster node kill: {outcome.summary()}; {recovered} accepted after the node came back"
        f" (down and restarted in {timings.get('restart', 0):.1f} s); webhooks received {dict(deliveries)};"
        f" accept-to-feed p50 {statistics.median(feed_pauses):.2f} s, longest {max(feed_pauses):.2f} s;"
        f" accept-to-webhook p50 {statistics.median(hook_pauses):.2f} s, longest {max(hook_pauses):.2f} s"
    )
    assert recovered > 0, outcome.summary()
    assert not outcome.missing, f"accepted events missing from feeds: {outcome.missing}"
    assert not outcome.duplicated, f"events more than once in feeds: {outcome.duplicated}"
    assert not outcome.undelivered, f"Subscribe webhooks never delivered: {outcome.undelivered}"
    assert not outcome.redelivered, f"Subscribe webhooks delivered more than once: {outcome.redelivered}"


async def test_the_three_nodes_register_with_the_port_mapper_of_their_own(cluster_servers: ClusterServers) -> None:
    """One epmd for the three, on its own port: the shared broker's (4369) is never involved."""
    rabbit = cluster_servers.rabbit
    names = await _run("epmd", "-port", str(rabbit.epmd_port), "-names", env=rabbit.nodes[0].env, timeout=10)
    for node in rabbit.nodes:
        assert node.name.split("@")[0] in names


async def test_a_connection_given_every_node_starts_on_the_first_that_answers_and_moves_when_it_dies(
    cluster_servers: ClusterServers,
) -> None:
    rabbit = cluster_servers.rabbit
    dead = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens there
    connection = await amqp.connect(",".join([dead, *rabbit.urls[1:]]))
    try:
        assert connection.connected.is_set()
        assert connection.transport is not None
        assert connection.transport.connection.url.port == rabbit.nodes[1].port
        # The broker drops the connection (as node 1's death would): it comes back on node 2. (Last
        # in the module: close_all_connections closes the services' connections too; they fail over.)
        await rabbit.nodes[1].ctl("close_all_connections", "failover test")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            transport = connection.transport
            if connection.connected.is_set() and transport is not None:
                if transport.connection.url.port != rabbit.nodes[1].port:
                    break
            await asyncio.sleep(0.1)
        transport = connection.transport
        assert transport is not None and transport.connection.url.port == rabbit.nodes[2].port
        channel = await connection.channel()
        await channel.close()
    finally:
        await connection.close()
