"""`make run`'s port probe binds as the services do: TIME_WAIT leftovers are free, a listener is busy."""

from __future__ import annotations

import socket
import time

from scripts.run import port_taken


def _listener() -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def _port_with_a_time_wait_connection() -> int:
    """A port nothing listens on whose last connection the server side closed first (so it waits)."""
    server = _listener()
    port = int(server.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the side that closes first goes to TIME_WAIT, on the server's port
    time.sleep(0.05)
    client.close()
    server.close()
    return port


def test_a_port_whose_only_connection_is_in_time_wait_is_free() -> None:
    port = _port_with_a_time_wait_connection()
    with socket.socket() as plain:  # the old probe: a bind without SO_REUSEADDR fails here
        try:
            plain.bind(("127.0.0.1", port))
            time_wait_seen = False
        except OSError:
            time_wait_seen = True
    assert time_wait_seen, "the setup did not leave a TIME_WAIT connection on the port"
    assert not port_taken(port, "127.0.0.1")


def test_a_port_something_listens_on_is_busy() -> None:
    with _listener() as server:
        assert port_taken(int(server.getsockname()[1]), "127.0.0.1")


def test_a_port_a_reuse_port_listener_holds_is_busy() -> None:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert port_taken(int(server.getsockname()[1]), "127.0.0.1")
