"""The feed's answers written as prepared bytes (api/answer.py), read off the wire as a client sees them:
HTTP/1.0 and 1.1, keep-alive and close, HEAD, gzip, and a large body to a reader too slow to take it at once."""

from __future__ import annotations

import asyncio
import gzip
import socket

from services.feed.app_keys import FEEDS
from tests.integration.feed import messages as m
from tests.integration.feed.conftest import FeedHarness
from tests.integration.feed.test_feed_projection import has, publish_calendar

LONG = "Doors open one hour before; tickets at the box office, parking on site. " * 4


async def _answer(reader: asyncio.StreamReader, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    status, *lines = head.split("\r\n")[:-2]
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(": ")
        assert name.lower() not in headers, f"{name} twice"
        headers[name.lower()] = value
    length = int(headers.get("content-length", "0"))
    body = b"" if method == "HEAD" or " 304 " in status else await reader.readexactly(length)
    return status, headers, body


async def _big_feed(feed: FeedHarness) -> tuple[str, bytes]:
    cal = await publish_calendar(feed)
    for n in range(120):
        await feed.publish("event.created", m.event(cal, f"Game {n}", day=1 + n % 28, description=LONG))
    sub = m.subscription(cal)
    await feed.publish("subscription.created", sub)
    path = f"/v1/webcal/{sub.subscription_id}"
    await feed.wait_for(path, has(*(f"Game {n}" for n in range(120))), timeout=30)
    cached = feed.client.app[FEEDS].current(str(sub.subscription_id))
    assert cached is not None and cached.length > 64 * 1024
    return path, cached.body


async def test_answers_on_the_wire_keep_alive_close_head_gzip_and_http_1_0(feed: FeedHarness) -> None:
    path, body = await _big_feed(feed)
    host, port = feed.client.host, feed.client.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Request-Id: poll-7\r\n\r\n".encode())
        status, headers, got = await _answer(reader)
        assert status == "HTTP/1.1 200 OK" and got == body
        assert headers["content-type"] == "text/calendar; charset=utf-8"
        assert headers["vary"] == "Accept-Encoding, Authorization" and headers["access-control-allow-origin"] == "*"
        assert headers["x-request-id"] == "poll-7" and headers["date"].endswith(" GMT") and "server" in headers
        assert "connection" not in headers and "transfer-encoding" not in headers
        etag = headers["etag"]

        # The same connection: gzip, HEAD, a 304 (no length, no body), then Connection: close.
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n".encode())
        status, zipped_headers, zipped = await _answer(reader)
        assert zipped_headers["content-encoding"] == "gzip" and gzip.decompress(zipped) == body
        assert zipped_headers["etag"] != etag and zipped_headers["x-request-id"]
        writer.write(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, head_headers, _ = await _answer(reader, "HEAD")
        assert status == "HTTP/1.1 200 OK" and int(head_headers["content-length"]) == len(body)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n".encode())
        status, not_modified, _ = await _answer(reader)
        assert status == "HTTP/1.1 304 Not Modified" and "content-length" not in not_modified
        assert not_modified["etag"] == etag and not_modified["last-modified"] == headers["last-modified"]
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, closing, got = await _answer(reader)
        assert closing["connection"] == "close" and got == body
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()

    for keep_alive in (False, True):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            extra = "Connection: keep-alive\r\n" if keep_alive else ""
            writer.write(f"GET {path} HTTP/1.0\r\n{extra}\r\n".encode())
            status, headers, got = await _answer(reader)
            assert status == "HTTP/1.0 200 OK" and got == body
            assert headers.get("connection") == ("keep-alive" if keep_alive else None)
            if not keep_alive:
                assert await asyncio.wait_for(reader.read(), 5) == b""
        finally:
            writer.close()


async def test_a_large_feed_reaches_a_slow_reader_whole(feed: FeedHarness) -> None:
    """A small receive buffer and a pause: the socket cannot take the body at once, so the rest waits
    in the transport (after whatever the kernel took), in order, and the next answer follows it."""
    path, body = await _big_feed(feed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (feed.client.host, feed.client.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        writer.write(request * 3)
        await asyncio.sleep(0.3)
        for _ in range(3):
            status, _, got = await _answer(reader)
            assert status == "HTTP/1.1 200 OK" and got == body
    finally:
        writer.close()
