"""The client-address rule: X-Forwarded-For believed only from the proxies KALENDS_TRUSTED_PROXIES lists."""

from __future__ import annotations

import pytest

from shared.proxies import TrustedProxies
from shared.settings import PlatformSettings, SettingsError

PROXIES = TrustedProxies.parse("10.0.0.0/8, 192.0.2.7, ::1")


def test_without_trusted_proxies_the_peer_is_the_client_whatever_x_forwarded_for_says() -> None:
    assert TrustedProxies().client_address("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    assert PROXIES.client_address("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"


def test_a_trusted_peer_hands_over_to_the_address_it_forwarded_for() -> None:
    assert PROXIES.client_address("10.1.2.3", ["198.51.100.1"]) == "198.51.100.1"


def test_the_chain_is_read_from_the_right_and_the_clients_own_entries_are_ignored() -> None:
    # The client wrote "1.1.1.1" itself; our proxies appended 198.51.100.1 and then 10.0.0.5.
    assert PROXIES.client_address("192.0.2.7", ["1.1.1.1, 198.51.100.1", "10.0.0.5"]) == "198.51.100.1"


def test_a_chain_of_only_trusted_proxies_ends_at_its_leftmost_entry() -> None:
    assert PROXIES.client_address("::1", ["10.0.0.9, 10.0.0.5"]) == "10.0.0.9"


def test_a_garbled_hop_stops_the_walk_at_the_last_address_vouched_for() -> None:
    assert PROXIES.client_address("10.0.0.1", ["198.51.100.1, not-an-ip"]) == "10.0.0.1"


def test_ports_brackets_and_ipv4_mapped_forms_are_understood() -> None:
    assert PROXIES.client_address("10.0.0.1", ["[2001:db8::5]:443"]) == "2001:db8::5"
    assert PROXIES.client_address("10.0.0.1", ["198.51.100.1:8080"]) == "198.51.100.1"
    assert PROXIES.client_address("::ffff:10.0.0.1", ["198.51.100.2"]) == "198.51.100.2"


def test_no_peer_gives_unknown() -> None:
    assert PROXIES.client_address(None, ["198.51.100.1"]) == "unknown"


def test_the_setting_takes_ips_and_cidrs_and_names_a_bad_entry() -> None:
    settings = PlatformSettings.from_env({"KALENDS_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.7"})
    assert settings.trusted_proxies.client_address("192.0.2.7", ["198.51.100.1"]) == "198.51.100.1"
    assert PlatformSettings.from_env({}).trusted_proxies == TrustedProxies()
    with pytest.raises(SettingsError, match=r"'proxy\.local' is neither"):
        PlatformSettings.from_env({"KALENDS_TRUSTED_PROXIES": "10.0.0.1, proxy.local"})
