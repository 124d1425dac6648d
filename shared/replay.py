"""`python -m shared.replay dlq <queue> | unrouted [--limit N]`: give parked messages back to their consumers.

Two places keep messages no consumer took:

- `<queue>.dlq`: a consumer failed a message past the queue's delivery limit (or could not parse
  it). `dlq feed.projection` publishes each back to `feed.projection` alone, through the default
  exchange, so the other queues bound to its routing key do not get it a second time.
- `kalends.unrouted`: the events exchange's alternate exchange takes a message that no queue was bound
  to when it was published (a consumer service that had never run, a binding added later). `unrouted`
  publishes each to the events exchange again, under the routing key it was first published with.

Each message is published again with its id, type, headers and body (minus the broker's death
records), confirmed by the broker, and only then acknowledged in the queue it came from: a replay
that stops halfway loses nothing, and a message it published twice is dropped by the idempotent
consumer (shared/consumer.py) by its id. A replay takes at most the messages the queue held when it
began, so a message that lands there again (still unbound, failing again) is not taken twice.

Reads KALENDS_AMQP_URL and KALENDS_AMQP_PREFIX like the services; prints `{"replayed": N, ...}`.
The RabbitMQ management UI's "move messages" (shovel) does the first for a whole queue; this command
also does the second, which needs each message's own routing key, and needs no plugin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from shared.amqp import Names, connect, declare_platform
from shared.settings import PlatformSettings, SettingsError

# What the broker adds when it dead-letters a message: not the message's own, dropped on replay.
_DEATH_HEADERS = frozenset(
    (
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-delivery-count",
    )
)


@dataclass(frozen=True)
class Replayed:
    source: str
    count: int
    left: int  # messages still in the source queue afterwards


def _again(message: AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items() if k not in _DEATH_HEADERS}
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


async def _replay(
    connection: aio_pika.abc.AbstractConnection, names: Names, source: str, to_queue: str | None, limit: int | None
) -> Replayed:
    """Move up to `limit` of the messages `source` holds now: to queue `to_queue` through the default
    exchange, or, when it is None, to the events exchange under each message's own routing key."""
    channel = await connection.channel(publisher_confirms=True)
    try:
        return await _move(channel, await declare_platform(channel, names), source, to_queue, limit)
    finally:
        await channel.close()


async def _move(
    channel: AbstractChannel, exchange: AbstractExchange, source: str, to_queue: str | None, limit: int | None
) -> Replayed:
    queue = await channel.declare_queue(source, passive=True)  # a name that is not there is an error
    waiting = await _ready(channel, source)
    todo = waiting if limit is None else min(waiting, limit)
    target = channel.default_exchange if to_queue is not None else exchange
    count = 0
    while count < todo:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        routing_key = to_queue if to_queue is not None else message.routing_key
        if not routing_key:
            # Nothing to route by: left where it is (rejected back), for a person to look at.
            await message.reject(requeue=True)
            break
        # `mandatory` with a confirm: returned unroutable (no such queue), the publish raises and the
        # message stays in its queue, unacknowledged and so given back when the channel closes.
        await target.publish(_again(message), routing_key=routing_key, mandatory=True)
        await message.ack()
        count += 1
    return Replayed(source, count, await _ready(channel, source))


async def _ready(channel: AbstractChannel, queue: str) -> int:
    """Messages ready in `queue` now. Asked of the broker on the channel underneath: a robust channel
    may answer a passive declare of a queue it declared before from what it remembers."""
    underlay = await channel.get_underlay_channel()
    declared = await underlay.queue_declare(queue, passive=True)
    return int(declared.message_count or 0)


async def replay_dead_letters(
    connection: aio_pika.abc.AbstractConnection, names: Names, queue: str, limit: int | None = None
) -> Replayed:
    """Messages of `<queue>.dlq` back to `queue` (names without the prefix, as the services use them)."""
    return await _replay(connection, names, names(queue) + ".dlq", names(queue), limit)


async def replay_unrouted(
    connection: aio_pika.abc.AbstractConnection, names: Names, limit: int | None = None
) -> Replayed:
    """Messages of `kalends.unrouted` back to the events exchange under their own routing keys."""
    return await _replay(connection, names, names.unrouted, None, limit)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="replay at most this many messages")
    commands = parser.add_subparsers(dest="command", required=True)
    dlq = commands.add_parser("dlq", help="<queue>.dlq back to <queue>")
    dlq.add_argument("queue", help="the consumer's queue, as the services name it (feed.projection, ...)")
    commands.add_parser("unrouted", help="kalends.unrouted back to the events exchange")
    return parser


async def _main(args: argparse.Namespace, settings: PlatformSettings) -> Replayed:
    connection = await connect(settings.amqp_url)
    try:
        names = Names(settings.amqp_prefix)
        if args.command == "dlq":
            return await replay_dead_letters(connection, names, args.queue, args.limit)
        return await replay_unrouted(connection, names, args.limit)
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("replay: --limit must be 1 or more", file=sys.stderr)
        return 2
    try:
        settings = PlatformSettings.from_env()
    except SettingsError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(_main(args, settings))
    except aio_pika.exceptions.ChannelNotFoundEntity as exc:
        print(f"replay: no such queue ({exc})", file=sys.stderr)
        return 1
    except aio_pika.exceptions.DeliveryError as exc:
        # The target queue is gone (a dlq replay): that message went back to where it was.
        print(f"replay: the broker refused a message ({exc}); it is still in its queue", file=sys.stderr)
        return 1
    print(json.dumps({"source": result.source, "replayed": result.count, "left": result.left}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
