"""Where leadq may connect when a stranger chose the URL (a company website, a redirect, an about link).

Two checks, both impossible to get out of step with the connection:

- `parse_public_url` reads a URL with urllib3's parser, the one requests connects with, and
  refuses backslashes, userinfo (`user@host`), whitespace and control characters, and any
  scheme but http(s).
- `PinnedAdapter` resolves the host once, when the connection is made, checks every address
  the resolver gave, and connects to the address it checked. There is no second lookup, so a
  host that answers differently the next time (DNS rebinding) gains nothing.

Address policy (`refusal`): cloud metadata and link-local addresses are refused always, also
when they hide inside IPv4-mapped, IPv4-compatible, NAT64, 6to4 or Teredo IPv6 forms, and also
with `allow_private_networks`. Otherwise anything that `ipaddress` does not call global is
refused (private, loopback, shared 100.64/10, 192.0.0/24, documentation, reserved), as is
multicast. Decimal, hex and octal spellings (`http://2852039166/`) reach the check already
turned into an address by the resolver, so they meet the same rule.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, LocationParseError, NewConnectionError
from urllib3.util import Url, parse_url

from connectors.errors import FatalError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[Any]]  # socket.getaddrinfo's shape

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
        "fd00:ec2::254",  # AWS over IPv6
    )
)
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Not public, whatever this Python's `ipaddress` tables say (they changed between releases).
NOT_PUBLIC = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("192.0.0.0/24"))


class EgressRefused(FatalError):
    """The URL or the address it leads to is one leadq must not fetch."""


class EgressUnresolvable(FatalError):
    """The host has no address: the company has no website there."""


def parse_public_url(url: str) -> Url:
    """The URL as the HTTP stack will read it, or EgressRefused saying what is wrong with it."""
    if "\\" in url:
        raise EgressRefused(f"{url!r}: a backslash in a URL is read differently by different parsers; refused")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise EgressRefused(f"{url!r}: whitespace or control characters in a URL; refused")
    try:
        parts = parse_url(url)
    except LocationParseError as exc:
        raise EgressRefused(f"{url!r}: not a URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise EgressRefused(f"{url!r}: only http and https URLs are fetched")
    if parts.auth is not None or "@" in (parts.netloc or ""):
        raise EgressRefused(f"{url!r}: a URL with user information (user@host) is refused")
    if not parts.host:
        raise EgressRefused(f"{url!r}: the URL has no host")
    return parts


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, compatible, NAT64, 6to4, Teredo."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in net for net in NAT64) or (address in IPV4_COMPATIBLE and int(address) > 1):
        found.append(low32)
    return found


def refusal(address: IPAddress, allow_private_networks: bool) -> str | None:
    """Why leadq must not connect to this address, or None."""
    for candidate in [address, *embedded_ipv4(address)]:
        inside = "" if candidate == address else f" (it carries {candidate})"
        if candidate in METADATA:
            return f"a cloud metadata address{inside}; always refused"
        if candidate.is_link_local:
            return f"a link-local address, where clouds serve metadata{inside}; always refused"
        if candidate.is_multicast or candidate.is_unspecified:
            return f"a multicast or unspecified address{inside}; refused"
        public = candidate.is_global and not any(candidate in net for net in NOT_PUBLIC)
        if not allow_private_networks and not public:
            return (
                f"not a public address (private, loopback, shared or reserved){inside}; refused "
                "(enrichment.website.allow_private_networks = false)"
            )
    return None


class _PinnedConnection(HTTPConnection):
    """Resolves once, checks every answer, connects to the checked address (SNI and Host stay the name)."""

    allow_private_networks = False
    resolve: Resolver = staticmethod(socket.getaddrinfo)

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")
        try:
            infos = self.resolve(host, self.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise EgressUnresolvable(f"{host}: does not resolve ({exc})") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise EgressUnresolvable(f"{host}: the resolver gave no address")
        for address in addresses:
            why = refusal(address, self.allow_private_networks)
            if why:
                raise EgressRefused(f"{host} resolves to {address}, {why}")
        last: OSError | None = None
        for info in infos:
            sock = socket.socket(info[0], info[1], info[2])
            try:
                if isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.connect(info[4])
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        assert last is not None
        raise _connect_error(self, last)


def _connect_error(conn: HTTPConnection, exc: OSError) -> Exception:
    """The errors urllib3's own connect raises, so requests reports them as it always does."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return ConnectTimeoutError(conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})")
    return NewConnectionError(conn, f"Failed to establish a new connection: {exc}")


class _PinnedHTTPSConnection(_PinnedConnection, HTTPSConnection):
    pass


class PinnedAdapter(HTTPAdapter):
    """A requests adapter whose every connection goes through the address policy."""

    def __init__(self, allow_private_networks: bool, resolve: Resolver | None = None, **kwargs: Any) -> None:
        attrs = {
            "allow_private_networks": allow_private_networks,
            "resolve": staticmethod(resolve or socket.getaddrinfo),
        }
        plain = type("PinnedHTTPConnection", (_PinnedConnection,), attrs)
        tls = type("PinnedHTTPSConnection", (_PinnedHTTPSConnection,), attrs)
        self._pools = {
            "http": type("PinnedPool", (HTTPConnectionPool,), {"ConnectionCls": plain}),
            "https": type("PinnedTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": tls}),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        raise EgressRefused(f"a proxy ({proxy}) would resolve the host instead of leadq; website fetches use none")
