"""A small WebDAV/CalDAV client on aiohttp: PROPFIND, MKCALENDAR, PUT, DELETE and their XML.

Why not the `caldav` library: it is synchronous (requests/niquests), so every call would hold a
thread, and it cannot take our socket factory, which is where the SSRF rule is enforced on the
very address connected to (as for webhooks). The few requests sync needs fit in this module.

Responses are read up to `BODY_LIMIT` bytes; XML is parsed with the standard library, whose expat
neither fetches external entities nor expands entities without bound.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohappyeyeballs
import aiohttp

from shared.addresses import forbidden_reason

USER_AGENT = "Kalends-Sync/1.0 (+https://github.com/kalends/kalends)"
BODY_LIMIT = 2 * 1024 * 1024
DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
APPLE = "http://apple.com/ns/ical/"
ET.register_namespace("d", DAV)
ET.register_namespace("c", CALDAV)
ET.register_namespace("a", APPLE)


class ForbiddenAddress(OSError):
    """The server resolved to an address sync may not reach."""


def guarded_socket(addr_info: aiohappyeyeballs.AddrInfoType) -> socket.socket:
    family, type_, proto, _, sockaddr = addr_info
    address = str(sockaddr[0])
    reason = forbidden_reason(address)
    if reason is not None:
        raise ForbiddenAddress(f"refused to connect to {address}: {reason} (set KALENDS_SYNC_ALLOW_PRIVATE=1 to allow)")
    return socket.socket(family=family, type=type_, proto=proto)


@dataclass(frozen=True)
class DavResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")


@dataclass
class PropStat:
    """One <response> of a multistatus: its href and the properties that came back 200."""

    href: str
    props: dict[str, ET.Element] = field(default_factory=dict)


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def parse_multistatus(body: bytes, base_url: str) -> list[PropStat]:
    """Each <response>'s href (absolute) and its found properties; raises ValueError on bad XML."""
    try:
        root = ET.fromstring(body)  # noqa: S314 - expat: no external entities, bounded expansion
    except ET.ParseError as exc:
        raise ValueError(f"the server's answer is not XML: {exc}") from None
    out: list[PropStat] = []
    for response in root.iter(tag(DAV, "response")):
        href = response.findtext(tag(DAV, "href"), "").strip()
        found = PropStat(urljoin(base_url, href))
        for propstat in response.iter(tag(DAV, "propstat")):
            status = propstat.findtext(tag(DAV, "status"), "")
            if " 200 " not in f"{status} ":
                continue
            prop = propstat.find(tag(DAV, "prop"))
            for child in list(prop) if prop is not None else []:
                found.props[child.tag] = child
        out.append(found)
    return out


def href_in(element: ET.Element | None, base_url: str) -> str | None:
    if element is None:
        return None
    href = element.findtext(tag(DAV, "href"))
    return urljoin(base_url, href.strip()) if href else None


def propfind_body(*props: tuple[str, str]) -> bytes:
    root = ET.Element(tag(DAV, "propfind"))
    prop = ET.SubElement(root, tag(DAV, "prop"))
    for namespace, name in props:
        ET.SubElement(prop, tag(namespace, name))
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def mkcalendar_body(name: str, description: str, color: str | None, timezone: str) -> bytes:
    root = ET.Element(tag(CALDAV, "mkcalendar"))
    prop = ET.SubElement(ET.SubElement(root, tag(DAV, "set")), tag(DAV, "prop"))
    ET.SubElement(prop, tag(DAV, "displayname")).text = name
    if description:
        ET.SubElement(prop, tag(CALDAV, "calendar-description")).text = description
    if color and color.startswith("#"):
        ET.SubElement(prop, tag(APPLE, "calendar-color")).text = color
    components = ET.SubElement(prop, tag(CALDAV, "supported-calendar-component-set"))
    ET.SubElement(components, tag(CALDAV, "comp"), {"name": "VEVENT"})
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


def proppatch_body(name: str, description: str, color: str | None) -> bytes:
    root = ET.Element(tag(DAV, "propertyupdate"))
    prop = ET.SubElement(ET.SubElement(root, tag(DAV, "set")), tag(DAV, "prop"))
    ET.SubElement(prop, tag(DAV, "displayname")).text = name
    ET.SubElement(prop, tag(CALDAV, "calendar-description")).text = description
    if color and color.startswith("#"):
        ET.SubElement(prop, tag(APPLE, "calendar-color")).text = color
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


class DavClient:
    """One HTTP session for all CalDAV servers: bounded time, redirects followed by hand (each hop
    goes through the same address check), never through an environment proxy."""

    def __init__(self, *, timeout: float, allow_private: bool, max_connections: int = 128) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _ensure(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=16,
                socket_factory=None if self.allow_private else guarded_socket,
                ttl_dns_cache=10,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        username: str,
        password: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        follow: int = 5,
    ) -> DavResponse:
        """One request (following up to `follow` redirects on the same method); raises OSError,
        aiohttp.ClientError or TimeoutError when no answer came."""
        session = self._ensure()
        sent = {"Authorization": basic_auth(username, password), **(headers or {})}
        for _ in range(follow + 1):
            if urlsplit(url).scheme not in ("http", "https"):
                raise aiohttp.InvalidURL(url)
            async with asyncio.timeout(self.timeout):
                async with session.request(method, url, data=body, headers=sent, allow_redirects=False) as response:
                    raw = await response.content.read(BODY_LIMIT)
                    answer = DavResponse(response.status, {k.lower(): v for k, v in response.headers.items()}, raw, url)
            location = answer.headers.get("location")
            if answer.status in (301, 302, 303, 307, 308) and location:
                next_url = urljoin(url, location)
                if urlsplit(next_url).netloc != urlsplit(url).netloc:
                    sent.pop("Authorization", None)  # never hand the password to another host
                url = next_url
                continue
            return answer
        return answer
