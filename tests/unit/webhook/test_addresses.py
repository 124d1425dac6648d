"""Which addresses webhooks may never reach."""

from __future__ import annotations

import socket

import pytest

from services.webhook.adapters.sender import ForbiddenAddress, guarded_socket
from shared.addresses import forbidden_reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:10.0.0.1", "private"),
        ("100.64.0.1", "reserved"),
    ],
)
def test_non_public_addresses_are_forbidden_with_their_kind_named(address: str, reason: str) -> None:
    found = forbidden_reason(address)
    assert found is not None and reason in found


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_unicast_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(address) is None


def test_the_socket_factory_refuses_a_forbidden_address_before_any_socket_exists() -> None:
    with pytest.raises(ForbiddenAddress, match=r"refused to connect to 10\.0\.0\.1: a private address"):
        guarded_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443)))
    sock = guarded_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 443)))
    sock.close()
