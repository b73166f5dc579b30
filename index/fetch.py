"""Fetch one article URL safely: public addresses only, pinned to the vetted IP, within size and time limits."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from index.errors import FetchError

__all__ = ["ALLOWED_CONTENT_TYPES", "FetchPolicy", "Fetched", "fetch"]

ALLOWED_CONTENT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "text/plain",
        "text/markdown",
        "text/x-markdown",
        "application/pdf",
        "application/x-ndjson",
        "application/jsonl",
    }
)
# Media types that say nothing about the body: accepted when the body itself is a PDF (many servers
# send PDFs as application/octet-stream or with no Content-Type at all), refused otherwise.
_VAGUE_CONTENT_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
)
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024
_MAX_URL_CHARS = 2_048
# IPv6 prefixes that carry an IPv4 address inside them; a gateway may forward to that IPv4 host.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_AddrInfo = tuple[Any, ...]  # one entry of socket.getaddrinfo's answer


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetch; the defaults are the production settings."""

    max_bytes: int = 10_000_000
    timeout_s: float = 15.0  # wall clock for the whole fetch: DNS, connects, redirects and body
    max_redirects: int = 5
    # Networks exempt from the public-address rule, e.g. ("127.0.0.0/8",) in tests; never in production.
    allow_networks: tuple[str, ...] = ()
    user_agent: str = "quotebot/0.1 (+https://github.com/quotebot)"


@dataclass(frozen=True)
class Fetched:
    """A successfully fetched body."""

    url: str  # final URL after redirects
    content_type: str  # lowercased media type without parameters; "application/pdf" for a sniffed PDF
    data: bytes


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # as it goes in the Host header and in TLS SNI (IDNA-encoded)
    port: int
    path: str  # path and query, what goes on the request line


def fetch(url: str, policy: FetchPolicy = FetchPolicy()) -> Fetched:
    """Fetch url under policy, following redirects; raise FetchError with a human message on any failure."""
    deadline = time.monotonic() + policy.timeout_s
    allowed = _parse_networks(policy.allow_networks)
    seen: set[str] = set()
    current = url
    for _hop in range(policy.max_redirects + 1):
        if current in seen:
            raise FetchError("That link redirects in a loop, so I gave up.")
        seen.add(current)
        target = _parse_url(current)
        addresses = _resolve(target, allowed, deadline, policy.timeout_s)
        location = _request(target, addresses, current, policy, deadline)
        if isinstance(location, Fetched):
            return location
        current = location
    raise FetchError(f"That link redirected more than {policy.max_redirects} times, so I gave up.")


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


# ------------------------------------------------------------------------------------------ requests


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Talks to a vetted IP address while keeping the host name for the Host header."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a vetted IP address; the certificate is still checked against the host name (SNI)."""

    def __init__(
        self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._pinned_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self._pinned_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _request(
    target: _Target, addresses: list[str], url: str, policy: FetchPolicy, deadline: float
) -> Fetched | str:
    """Make one request; return the body, or the next URL when the answer is a redirect."""
    last_error: Exception | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        connection = _connection(target, address, remaining)
        # A watchdog closes the socket at the deadline, so no slow server can hold us past it,
        # whether it drips the headers, the TLS handshake or the body.
        watchdog = threading.Timer(remaining, _abort, args=(connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
                connection.connect()
            except OSError as error:
                last_error = error
                continue  # try the host's next address
            return _exchange(connection, target, url, policy, deadline)
        except (OSError, http.client.HTTPException) as error:
            if time.monotonic() >= deadline:
                raise _timeout(policy) from error
            raise FetchError(_describe(error, target)) from error
        finally:
            watchdog.cancel()
            connection.close()
    if time.monotonic() >= deadline:
        raise _timeout(policy)
    message = f"I couldn't connect to {target.host}."
    if isinstance(last_error, ssl.SSLError):
        message = _describe(last_error, target)
    raise FetchError(message) from last_error


def _connection(target: _Target, address: str, timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        context = ssl.create_default_context()
        return _PinnedHTTPSConnection(
            target.host, target.port, address=address, timeout=timeout, context=context
        )
    return _PinnedHTTPConnection(target.host, target.port, address=address, timeout=timeout)


def _exchange(
    connection: http.client.HTTPConnection, target: _Target, url: str, policy: FetchPolicy, deadline: float
) -> Fetched | str:
    connection.request(
        "GET",
        target.path,
        headers={
            "User-Agent": policy.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/pdf,text/markdown,text/plain;q=0.9,*/*;q=0.1",
            "Accept-Encoding": "identity",
            "Connection": "close",
        },
    )
    response = connection.getresponse()
    if time.monotonic() >= deadline:
        # The watchdog cut a dripped header block short; what was parsed of it is not the answer.
        raise _timeout(policy)
    if response.status in _REDIRECT_STATUSES:
        location = response.getheader("Location")
        if not location:
            raise FetchError(f"The site answered {response.status} (a redirect) without saying where to.")
        return urljoin(url, location.strip())
    if not 200 <= response.status < 300:
        reason = f" {response.reason}" if response.reason else ""
        raise FetchError(f"The site answered {response.status}{reason}, so there is nothing to read.")
    content_type = _media_type(response.getheader("Content-Type"))
    if content_type not in ALLOWED_CONTENT_TYPES and content_type not in _VAGUE_CONTENT_TYPES:
        raise _unreadable_type(content_type)
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise FetchError(f"The site sent {encoding}-compressed data, which I didn't ask for.")
    length = response.getheader("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > policy.max_bytes:
        raise _too_large(policy)
    data = _read_body(response, policy, deadline)
    if content_type in _VAGUE_CONTENT_TYPES:
        if not data[:1024].lstrip().startswith(b"%PDF-"):
            raise _unreadable_type(content_type)
        content_type = "application/pdf"  # sniffed: the signature is unambiguous
    return Fetched(url=url, content_type=content_type, data=data)


def _unreadable_type(content_type: str) -> FetchError:
    shown = "a file of unknown type" if content_type in _VAGUE_CONTENT_TYPES else content_type
    return FetchError(
        f"That link is {shown}; I can read web pages, PDFs, Markdown, plain text and JSON Lines."
    )


def _read_body(response: http.client.HTTPResponse, policy: FetchPolicy, deadline: float) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() >= deadline:
            raise _timeout(policy)
        # read1 returns after one socket read, so a trickling server cannot keep us inside one call.
        chunk = response.read1(_CHUNK_BYTES)
        if not chunk:
            break
        total += len(chunk)
        if total > policy.max_bytes:
            raise _too_large(policy)
        chunks.append(chunk)
    if time.monotonic() >= deadline:
        raise _timeout(policy)
    return b"".join(chunks)


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _abort(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to stop
            sock.shutdown(socket.SHUT_RDWR)


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


def _describe(error: BaseException, target: _Target) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"{target.host}'s security certificate isn't valid, so I won't fetch it."
    if isinstance(error, ssl.SSLError):
        return f"The secure connection to {target.host} failed."
    if isinstance(error, http.client.HTTPException):
        return f"{target.host} sent a malformed HTTP answer."
    return f"The connection to {target.host} failed."


def _timeout(policy: FetchPolicy) -> FetchError:
    return FetchError(f"The site took longer than {policy.timeout_s:g} seconds to answer, so I gave up.")


def _too_large(policy: FetchPolicy) -> FetchError:
    return FetchError(f"That page is larger than {policy.max_bytes / 1_000_000:g} MB, which is my limit.")
