"""A feed answer written as bytes made up front: status line, headers and body in one or two writes.

aiohttp's own path for an answer (web.Response or a StreamResponse) builds a CIMultiDict of headers
per request, works out Content-Length, Date, Server and Connection into it, serialises it, and writes
it through its StreamWriter: on a feed answer, which is nothing but cached bytes, that is about a
third of the process's Python time (py-spy, bench/results/feed-round5-*.svg). Every header of a feed
answer except Date, Connection and X-Request-Id is the same for all the requests of one feed
version, so this answer takes the calendar's shared header lines (built once per file name and cache
policy, as bytes), adds the feed's validators and length, and writes the lot straight to the
transport with the body, in one system call (joined when the body is small: gzip, 304, HEAD; as
pieces, the shared section uncopied, when it is large).

It is still an aiohttp StreamResponse, so the server's loop (keep-alive, error handling, a client
that went away) treats it as any other; what aiohttp would add is added here the same way (Date from
aiohttp's per-second cache, Server, Connection by HTTP version and keep-alive), and the wire bytes
are what aiohttp sends for the same headers (tests/integration/feed/test_feed_answer.py compares).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict, CIMultiDictProxy

_SERVER = f"Server: {SERVER_SOFTWARE}\r\n".encode()
_REASONS = {200: "OK", 304: "Not Modified"}
# Bodies up to JOIN_MAX are joined with the headers and written in one system call (a copy of some
# kilobytes costs less than handing the kernel a list of pieces); larger ones are written as pieces.
JOIN_MAX = 16 * 1024
# asyncio's transport.writelines may buffer without bound on Python 3.12.0-3.12.8 and 3.13.0-3.13.1
# (CVE-2024-12254, python/cpython#127656); aiohttp joins there too (aiohttp.http_writer).
_WRITELINES_SAFE = not ((3, 12) <= sys.version_info < (3, 12, 9) or (3, 13) <= sys.version_info < (3, 13, 2))


_STATUS_LINES: dict[tuple[object, int], bytes] = {}


def _status_line(version: tuple[int, int], status: int, reason: str) -> bytes:
    line = _STATUS_LINES.get((version, status))
    if line is None:
        line = f"HTTP/{version[0]}.{version[1]} {status} {reason}\r\n".encode()
        if len(_STATUS_LINES) < 64:  # versions are whatever clients send: keep a few
            _STATUS_LINES[(version, status)] = line
    return line


def header_lines(headers: dict[str, str]) -> bytes:
    """`headers` as HTTP/1.1 header lines (aiohttp's encoding: UTF-8). A value with a line break
    would split the answer: refused, as aiohttp's serialiser refuses it."""
    lines = []
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode()


class FeedAnswer(web.StreamResponse):
    """A feed's answer: `lines` (every header line but Date, Server, Connection and X-Request-Id) and
    the body's pieces, written on `prepare`. `request_id` is set by the lean path (api/lean.py)."""

    _send_headers_immediately = False

    def __init__(self, status: int, lines: bytes, body: Sequence[bytes] = ()) -> None:
        # StreamResponse's own __init__ would build a CIMultiDict that is never used: only its state.
        self._state = {}
        self._status = status
        self._reason = _REASONS[status]
        self._lines = lines
        self._pieces = body
        self.request_id = ""

    @property
    def headers(self) -> CIMultiDictProxy[str]:  # type: ignore[override]
        """The headers as aiohttp would hold them, read-only (for code that inspects an answer, not on
        the hot path): they are written from `lines`, so a change made here would be lost; a
        middleware that tries one fails loudly instead."""
        out: CIMultiDict[str] = CIMultiDict()
        for line in self._lines.decode().split("\r\n"):
            if line:
                name, _, value = line.partition(": ")
                out.add(name, value)
        if self.request_id:
            out["X-Request-Id"] = self.request_id
        return CIMultiDictProxy(out)

    async def prepare(self, request: web.BaseRequest) -> None:
        if self._eof_sent:
            return
        await request._prepare_hook(self)
        keep_alive = self._keep_alive
        if keep_alive is None:
            keep_alive = self._keep_alive = request.keep_alive
        version = request.version
        if keep_alive:
            connection = b"Connection: keep-alive\r\n" if version == (1, 0) else b""
        else:
            connection = b"Connection: close\r\n" if version == (1, 1) else b""
        head = b"".join(
            (
                _status_line(version, self._status, self._reason),
                self._lines,
                f"Date: {rfc822_formatted_time()}\r\n".encode(),
                _SERVER,
                connection,
                f"X-Request-Id: {self.request_id}\r\n\r\n".encode() if self.request_id else b"\r\n",
            )
        )
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        if request.method == "HEAD":
            transport.write(head)
        elif sum(map(len, self._pieces)) <= JOIN_MAX:
            transport.write(b"".join((head, *self._pieces)))
        elif _WRITELINES_SAFE:
            # One writev under uvloop (which the services run on), nothing joined; asyncio's own
            # transport joins them (Python 3.11) but still makes one system call.
            transport.writelines((head, *self._pieces))
        else:
            transport.write(b"".join((head, *self._pieces)))
        self._eof_sent = True
        if transport.get_write_buffer_size():
            # A slow reader holds this answer here (aiohttp's writes wait the same way).
            await request._payload_writer.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        return
