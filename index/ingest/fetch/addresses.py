"""Where a fetch may go: the URL parsed into a target, its host resolved (within the deadline) and
every address it resolves to vetted against the public-address rule, IPv4 hidden in IPv6 included."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from index.errors import FetchError

_MAX_URL_CHARS = 2_048
# IPv6 prefixes that carry an IPv4 address inside them; a gateway may forward to that IPv4 host.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_AddrInfo = tuple[Any, ...]  # one entry of socket.getaddrinfo's answer


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # as it goes in the Host header and in TLS SNI (IDNA-encoded)
    port: int
    path: str  # path and query, what goes on the request line


# ---------------------------------------------------------------------------------------------- URLs


def _parse_url(url: str) -> _Target:
    if len(url) > _MAX_URL_CHARS:
        raise FetchError("That link is too long.")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise FetchError("That link contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise FetchError("That doesn't look like a valid link.") from error
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        shown = f"{scheme}://" if scheme else "links without a scheme"
        raise FetchError(f"I can only fetch http:// and https:// links, not {shown}.")
    if "@" in parts.netloc:
        raise FetchError("Links with a user name or password in them aren't allowed.")
    host = parts.hostname
    if not host:
        raise FetchError("That link has no host name.")
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as error:
        raise FetchError("That link's host name isn't valid.") from error
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(scheme, ascii_host, port or (443 if scheme == "https" else 80), path)


# ----------------------------------------------------------------------------------------- addresses


def _parse_networks(networks: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def _resolve(
    target: _Target,
    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    deadline: float,
    timeout_s: float,
) -> list[str]:
    """Return the host's addresses, refusing the host if any of them is not public."""
    try:
        infos = _run_with_deadline(
            lambda: socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), deadline
        )
    except TimeoutError as error:
        raise FetchError(f"Looking up {target.host} took longer than {timeout_s:g} seconds.") from error
    except (OSError, UnicodeError) as error:
        raise FetchError(f"I couldn't find the site {target.host}.") from error
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError as error:
            raise FetchError(f"{target.host} resolved to an address I don't understand.") from error
        # Every address is checked, not just the first: a name can mix public and private answers.
        if _is_blocked(ip) and not any(ip in network for network in allowed):
            raise FetchError(
                f"That address ({target.host}) points to a private or local network, so I won't fetch it."
            )
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(f"I couldn't find the site {target.host}.")
    return addresses


def _is_blocked(ip: IPAddress) -> bool:
    """True for any address that is not plainly on the public internet, including IPv4 hidden in IPv6."""
    if isinstance(ip, ipaddress.IPv6Address):
        # These forms are just transport for an IPv4 address, so that address alone decides.
        if ip.ipv4_mapped is not None:
            return _is_blocked(ip.ipv4_mapped)
        if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
            return _is_blocked(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        # 6to4 and Teredo reach an IPv4 host through a relay: refuse if that host is not public.
        if ip.sixtofour is not None and _is_blocked(ip.sixtofour):
            return True
        if ip.teredo is not None and (_is_blocked(ip.teredo[0]) or _is_blocked(ip.teredo[1])):
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _run_with_deadline(work: Callable[[], list[_AddrInfo]], deadline: float) -> list[_AddrInfo]:
    """Run a blocking lookup in a daemon thread; getaddrinfo itself has no timeout."""
    result: list[list[_AddrInfo]] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=run, name="quotebot-dns", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise TimeoutError
    if failure:
        raise failure[0]
    return result[0]
