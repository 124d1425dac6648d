"""Who is on the other end: the client's address, `X-Forwarded-For` believed only from trusted proxies.

`KALENDS_TRUSTED_PROXIES` lists the proxies (IPs or CIDRs, comma-separated) in front of the
services. A request's address is its TCP peer unless that peer is trusted; then the
`X-Forwarded-For` chain is read from the right (the hop nearest us), skipping trusted proxies, and
the first address not trusted is the client. Entries further left were written by the client
itself and are never believed. One rule, here, for every service.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# Cached: every request parses its peer's address, and a service hears from few peers (proxies,
# other services); addresses are immutable values, and the cache's size bounds what hops sent by
# clients can fill it with.
@lru_cache(maxsize=4096)
def _address(text: str) -> Address | None:
    value = text.strip().strip('"')
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:8080"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> TrustedProxies:
        """`10.0.0.0/8, 192.0.2.7, ::1`; raises ValueError naming the entry that is neither IP nor CIDR."""
        networks: list[Network] = []
        for part in raw.split(","):
            entry = part.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is neither an IP address nor a CIDR block") from None
        return cls(tuple(networks))

    def trusts(self, address: Address) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)

    def client_address(self, peer: str | None, forwarded_for: Iterable[str] = ()) -> str:
        """The client's address as text; `forwarded_for` holds the X-Forwarded-For header values in
        the order they came. Falls back to the peer (or "unknown") when nothing better is known."""
        current = _address(peer or "")
        if current is None:
            return peer or "unknown"
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        while self.trusts(current) and hops:
            previous = _address(hops.pop())
            if previous is None:  # a garbled hop: believe nothing before it
                break
            current = previous
        return str(current)

    def __str__(self) -> str:
        return ",".join(str(net) for net in self.networks)
