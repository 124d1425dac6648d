"""Which network addresses an outbound request (a webhook, a CalDAV server) may never reach (SSRF)."""

from __future__ import annotations

import ipaddress


def forbidden_reason(address: str) -> str | None:
    """Why `address` is off limits for an outbound request, or None when it is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return forbidden_reason(str(mapped))
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        # Shared address space (100.64/10), documentation ranges and the like.
        return "a reserved address"
    return None
