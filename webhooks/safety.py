"""The SSRF guard: which webhook URLs and which addresses Daylight will send to.

A URL is checked when an endpoint is created or changed (``check_url``) and again at every
send, where the transport resolves the host once, checks every address with
``check_address`` and connects to the address it checked, so a DNS answer that changes
between the check and the connection (rebinding) cannot slip past.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048

# Cloud metadata services answer with credentials; they are refused even in development.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)

_RFC1918 = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_ULA = ipaddress.ip_network("fc00::/7")
# IPv6 forms that carry an IPv4 address inside them, which a relay or translator on the
# path may turn back into that (possibly private) IPv4 address.
_EMBEDS_IPV4 = (
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated), e.g. ::127.0.0.1
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
    ipaddress.ip_network("2002::/16"),  # 6to4
    ipaddress.ip_network("2001::/32"),  # Teredo
)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                       r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?$")


class UnsafeURLError(Exception):
    """A webhook URL that Daylight refuses to send to; ``reason`` says why, for the user.

    Not a ``ValueError`` on purpose: ``requests`` turns ValueErrors raised by an adapter
    into ``InvalidURL``, and the transport needs this one to come through as itself.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HostNotFoundError(UnsafeURLError):
    """The URL's host name does not resolve (nothing to judge; at send time, a connection
    failure rather than an unsafe URL)."""


@dataclass(frozen=True)
class Target:
    """Where a checked URL points: scheme, host (an IDNA name or an address) and port."""

    scheme: str
    host: str
    port: int
    address: IPAddress | None  # set when the host is an address literal, in any form


def parse_url(url: str, allow_private: bool = False) -> Target:
    """Check the form of a webhook URL (no DNS) and return where it points.

    ``https`` is required unless ``allow_private``; user names, passwords, fragments and
    URLs without a host are refused.
    """
    if not isinstance(url, str) or not url:
        raise UnsafeURLError("a URL is required")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UnsafeURLError("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"the URL is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURLError("the URL must use https")
    if scheme == "http" and not allow_private:
        raise UnsafeURLError("the URL must use https")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UnsafeURLError("the URL may not contain a user name or password")
    if parts.fragment:
        raise UnsafeURLError("the URL may not contain a fragment")
    raw_host = parts.hostname
    if not raw_host:
        raise UnsafeURLError("the URL has no host")
    if port == 0:
        raise UnsafeURLError("the URL's port is not valid")
    default_port = 443 if scheme == "https" else 80
    address = _literal_address(raw_host, bracketed=parts.netloc.find("[") != -1)
    host = str(address) if address is not None else _idna_host(raw_host)
    return Target(scheme=scheme, host=host, port=port or default_port, address=address)


def check_url(url: str, allow_private: bool = False) -> None:
    """Refuse (``UnsafeURLError``) a URL Daylight must not send webhooks to.

    The host must not be, or resolve to, a loopback, private, link-local, shared (CGNAT),
    multicast, reserved, unspecified, unique-local or cloud-metadata address. With
    ``allow_private`` (development and tests) plain http, loopback and private addresses are
    allowed, and a name that does not resolve is let through (it is checked again at send).
    """
    target = parse_url(url, allow_private)
    if target.address is not None:
        check_address(target.address, allow_private)
        return
    try:
        addresses = resolve(target.host, target.port)
    except HostNotFoundError:
        if allow_private:
            return
        raise
    check_resolved(target.host, addresses, allow_private)


def check_resolved(host: str, addresses: list[IPAddress], allow_private: bool = False) -> None:
    """Refuse (``UnsafeURLError``) a name if any address it resolves to is refused.

    The reason names the kind of address, not the address: this machine's resolver may
    know names the public does not, and a partner should not learn from a refusal (or a
    delivery log) where the city's internal names point.
    """
    literal = _literal_address(host, bracketed=False)
    for address in addresses:
        if literal is not None:
            check_address(address, allow_private)
            continue
        reason = forbidden_reason(address, allow_private)
        if reason is not None:
            raise UnsafeURLError(f"the host {host} resolves to {reason}")


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an address literal resolves to itself)."""
    literal = _literal_address(host, bracketed=False)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostNotFoundError(f"the host {host} does not resolve") from exc
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise HostNotFoundError(f"the host {host} does not resolve")
    return addresses


def check_address(address: IPAddress, allow_private: bool = False) -> None:
    """Refuse (``UnsafeURLError``) an address that is not a public unicast address."""
    reason = forbidden_reason(address, allow_private)
    if reason is not None:
        raise UnsafeURLError(f"{address} is {reason}")


def forbidden_reason(address: IPAddress, allow_private: bool = False) -> str | None:
    """Why Daylight will not connect to ``address``, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if allow_private:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address in _CGNAT:
        return "in the shared address space (CGNAT)"
    if isinstance(address, ipaddress.IPv6Address):
        if address in _ULA:
            return "a unique local address (IPv6 ULA)"
        if address.is_site_local:
            return "a site-local address"
        if any(address in net for net in _EMBEDS_IPV4):
            return "an IPv6 transition address that embeds an IPv4 address"
    if any(address in net for net in _RFC1918):
        return "a private address"
    if address.is_reserved or any(address in net for net in EXTRA_BLOCKED_NET_RANGES):
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a special-purpose address, not a public one"
    return None


def _literal_address(host: str, *, bracketed: bool) -> IPAddress | None:
    """The address a host names literally, in any spelling a resolver would accept.

    Besides dotted quads and IPv6 this catches the legacy IPv4 forms ``inet_aton`` takes
    (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``), which a resolver turns
    into an address without any DNS lookup.
    """
    if bracketed or ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise UnsafeURLError("the URL's IPv6 address is not valid") from exc
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        pass
    candidate = host.rstrip(".")
    if candidate and re.fullmatch(r"[0-9a-fA-FxX.]+", candidate) and any(
        c.isdigit() for c in candidate
    ):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(candidate))
        except OSError:
            pass
        if re.fullmatch(r"[0-9.]+", candidate):
            # All digits yet no address: a resolver might still guess; refuse rather than ask.
            raise UnsafeURLError("the URL's host is not a valid name or address")
    return None


def _idna_host(host: str) -> str:
    """The ASCII form of a host name, or ``UnsafeURLError`` if it is not a valid name."""
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise UnsafeURLError("the URL's host is not a valid name") from exc
    if not _HOSTNAME.match(ascii_host):
        raise UnsafeURLError("the URL's host is not a valid name")
    return ascii_host
