"""Fetch one article URL safely: public addresses only, pinned to the vetted IP, within size and time limits.

Compressed answers (gzip, deflate, br) are decoded under the same size cap as plain bodies; the
HTTP_PROXY / HTTPS_PROXY / NO_PROXY environment variables are honoured, with every address check
still made on the final target (resolved here, before the proxy is asked); a connection reset before
the answer arrives is retried once; etag / last_modified make a conditional GET."""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import brotli

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
_MAX_PROXY_REPLY_BYTES = 16 * 1024
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
    """A successfully fetched body (or, for a conditional GET, the news that it has not changed)."""

    url: str  # final URL after redirects
    content_type: str  # lowercased media type without parameters; "application/pdf" for a sniffed PDF
    data: bytes  # decoded (decompressed) body; empty when not_modified
    etag: str | None = None  # the ETag header, to send back as etag= next time
    last_modified: str | None = None  # the Last-Modified header, to send back as last_modified=
    not_modified: bool = False  # the server answered 304 to a conditional GET: keep what you have


@dataclass(frozen=True)
class _Conditions:
    etag: str | None
    last_modified: str | None
    accept: frozenset[str]


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # as it goes in the Host header and in TLS SNI (IDNA-encoded)
    port: int
    path: str  # path and query, what goes on the request line


def fetch(
    url: str,
    policy: FetchPolicy = FetchPolicy(),
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    accept: Iterable[str] | None = None,
) -> Fetched:
    """Fetch url under policy, following redirects; raise FetchError with a human message on any failure.

    etag / last_modified (from an earlier Fetched) are sent as If-None-Match / If-Modified-Since; a
    304 answer returns Fetched(not_modified=True, data=b""). accept replaces ALLOWED_CONTENT_TYPES
    (e.g. XML types for a sitemap or feed)."""
    deadline = time.monotonic() + policy.timeout_s
    allowed = _parse_networks(policy.allow_networks)
    conditions = _Conditions(
        etag, last_modified, frozenset(accept) if accept is not None else ALLOWED_CONTENT_TYPES
    )
    proxies = urllib.request.getproxies_environment()
    seen: set[str] = set()
    current = url
    for _hop in range(policy.max_redirects + 1):
        if current in seen:
            raise FetchError("That link redirects in a loop, so I gave up.")
        seen.add(current)
        target = _parse_url(current)
        # The target is resolved and vetted here even when a proxy will make the connection.
        addresses = _resolve(target, allowed, deadline, policy.timeout_s)
        proxy = _proxy_for(target, proxies, deadline, policy.timeout_s)
        location = _request(target, addresses, current, policy, deadline, conditions, proxy)
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


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    address: str  # the proxy's own address (the operator's choice: no public-address rule)
    authorization: str | None  # a Proxy-Authorization value, from user:password in the proxy URL


def _proxy_for(target: _Target, proxies: dict[str, str], deadline: float, timeout_s: float) -> _Proxy | None:
    """The proxy the environment names for target's scheme, unless NO_PROXY exempts its host."""
    configured = proxies.get(target.scheme)
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not configured or bypass(target.host, proxies):
        return None
    try:
        parts = urlsplit(configured if "://" in configured else f"http://{configured}")
        port = parts.port or 80
    except ValueError as error:
        raise FetchError(f"The {target.scheme.upper()}_PROXY setting isn't a valid address.") from error
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise FetchError(f"The {target.scheme.upper()}_PROXY setting must be an http:// proxy address.")
    host = parts.hostname
    try:
        infos = _run_with_deadline(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), deadline)
    except TimeoutError as error:
        raise FetchError(f"Looking up the proxy {host} took longer than {timeout_s:g} seconds.") from error
    except (OSError, UnicodeError) as error:
        raise FetchError(f"I couldn't find the proxy {host}.") from error
    if not infos:
        raise FetchError(f"I couldn't find the proxy {host}.")
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return _Proxy(host, port, str(infos[0][4][0]), authorization)


def _authority(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _host_header(target: _Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


class _TunnelHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS through a proxy: CONNECT to the vetted IP of the target, then TLS checked against its name."""

    def __init__(
        self, host: str, port: int, *, address: str, proxy: _Proxy, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._proxy = proxy
        self._tunnel_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._proxy.address, self._proxy.port), self.timeout)
        self.sock = sock  # so the watchdog can cut a slow proxy short too
        try:
            authority = _authority(self._address, self.port)
            lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
            if self._proxy.authorization:
                lines.append(f"Proxy-Authorization: {self._proxy.authorization}")
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk or len(reply) > _MAX_PROXY_REPLY_BYTES:
                    raise http.client.HTTPException("the proxy's answer to CONNECT was cut short or too long")
                reply += chunk
            status = reply.split(b"\r\n", 1)[0].split(b" ", 2)
            if len(status) < 2 or not status[0].startswith(b"HTTP/") or status[1] != b"200":
                shown = status[1].decode("ascii", "replace") if len(status) > 1 else "nothing useful"
                raise FetchError(f"The proxy refused to connect me to {self.host} (it answered {shown}).")
            self.sock = self._tunnel_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class _ResetBeforeAnswer(Exception):
    """The connection was reset or closed before any of the answer arrived: safe to try again."""


def _request(
    target: _Target,
    addresses: list[str],
    url: str,
    policy: FetchPolicy,
    deadline: float,
    conditions: _Conditions,
    proxy: _Proxy | None,
) -> Fetched | str:
    """Make one request; return the body, or the next URL when the answer is a redirect."""
    last_error: Exception | None = None
    for address in addresses:
        for attempt in range(2):  # a connection reset before the answer is retried once
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            connection = _connection(target, address, remaining, proxy)
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
                    break  # try the host's next address
                return _exchange(connection, target, address, url, policy, deadline, conditions, proxy)
            except _ResetBeforeAnswer as error:
                if attempt == 0:
                    continue
                raise FetchError(f"{target.host} closed the connection twice before answering.") from error
            except (OSError, http.client.HTTPException) as error:
                if time.monotonic() >= deadline:
                    raise _timeout(policy) from error
                raise FetchError(_describe(error, target)) from error
            finally:
                watchdog.cancel()
                connection.close()
    if time.monotonic() >= deadline:
        raise _timeout(policy)
    where = f"the proxy for {target.host}" if proxy is not None else target.host
    message = f"I couldn't connect to {where}."
    if isinstance(last_error, ssl.SSLError):
        message = _describe(last_error, target)
    raise FetchError(message) from last_error


def _connection(
    target: _Target, address: str, timeout: float, proxy: _Proxy | None
) -> http.client.HTTPConnection:
    if target.scheme == "https":
        context = ssl.create_default_context()
        if proxy is not None:
            return _TunnelHTTPSConnection(
                target.host, target.port, address=address, proxy=proxy, timeout=timeout, context=context
            )
        return _PinnedHTTPSConnection(
            target.host, target.port, address=address, timeout=timeout, context=context
        )
    if proxy is not None:  # plain HTTP through a proxy: an absolute-form request to the proxy
        return _PinnedHTTPConnection(proxy.host, proxy.port, address=proxy.address, timeout=timeout)
    return _PinnedHTTPConnection(target.host, target.port, address=address, timeout=timeout)


def _exchange(
    connection: http.client.HTTPConnection,
    target: _Target,
    address: str,
    url: str,
    policy: FetchPolicy,
    deadline: float,
    conditions: _Conditions,
    proxy: _Proxy | None,
) -> Fetched | str:
    headers = {
        "User-Agent": policy.user_agent,
        "Accept": _accept_header(conditions.accept),
        "Accept-Encoding": "gzip, deflate, br",
        "Connection": "close",
    }
    if conditions.etag:
        headers["If-None-Match"] = conditions.etag
    if conditions.last_modified:
        headers["If-Modified-Since"] = conditions.last_modified
    request_target = target.path
    if proxy is not None and target.scheme == "http":
        # The vetted address goes in the request line, so the proxy cannot be pointed elsewhere by
        # a second DNS answer; the Host header keeps the name.
        request_target = f"http://{_authority(address, target.port)}{target.path}"
        headers["Host"] = _host_header(target)
        if proxy.authorization:
            headers["Proxy-Authorization"] = proxy.authorization
    try:
        connection.request("GET", request_target, headers=headers)
        response = connection.getresponse()
    except (ConnectionResetError, BrokenPipeError) as error:  # RemoteDisconnected is a reset too
        if time.monotonic() >= deadline:
            raise _timeout(policy) from error
        raise _ResetBeforeAnswer from error
    if time.monotonic() >= deadline:
        # The watchdog cut a dripped header block short; what was parsed of it is not the answer.
        raise _timeout(policy)
    if response.status in _REDIRECT_STATUSES:
        location = response.getheader("Location")
        if not location:
            raise FetchError(f"The site answered {response.status} (a redirect) without saying where to.")
        return urljoin(url, location.strip())
    etag = response.getheader("ETag")
    last_modified = response.getheader("Last-Modified")
    if response.status == 304 and (conditions.etag or conditions.last_modified):
        return Fetched(
            url=url,
            content_type=_media_type(response.getheader("Content-Type")),
            data=b"",
            etag=etag or conditions.etag,
            last_modified=last_modified or conditions.last_modified,
            not_modified=True,
        )
    if not 200 <= response.status < 300:
        reason = f" {response.reason}" if response.reason else ""
        raise FetchError(
            f"The site answered {response.status}{reason}, so there is nothing to read.",
            status=response.status,
        )
    content_type = _media_type(response.getheader("Content-Type"))
    sniff_pdf = "application/pdf" in conditions.accept
    if content_type not in conditions.accept and not (sniff_pdf and content_type in _VAGUE_CONTENT_TYPES):
        raise _unreadable_type(content_type, conditions.accept)
    decoder = _decoder(response.getheader("Content-Encoding"), policy)
    length = response.getheader("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > policy.max_bytes:
        raise _too_large(policy)
    data = _read_body(response, policy, deadline, decoder)
    if content_type in _VAGUE_CONTENT_TYPES:
        if not data[:1024].lstrip().startswith(b"%PDF-"):
            raise _unreadable_type(content_type, conditions.accept)
        content_type = "application/pdf"  # sniffed: the signature is unambiguous
    return Fetched(url=url, content_type=content_type, data=data, etag=etag, last_modified=last_modified)


def _accept_header(accept: frozenset[str]) -> str:
    if accept == ALLOWED_CONTENT_TYPES:
        return "text/html,application/xhtml+xml,application/pdf,text/markdown,text/plain;q=0.9,*/*;q=0.1"
    return ",".join(sorted(accept)) + ",*/*;q=0.1"


def _unreadable_type(content_type: str, accept: frozenset[str] = ALLOWED_CONTENT_TYPES) -> FetchError:
    shown = "a file of unknown type" if content_type in _VAGUE_CONTENT_TYPES else content_type
    if accept != ALLOWED_CONTENT_TYPES:
        return FetchError(f"That link is {shown}; I expected {', '.join(sorted(accept))}.")
    return FetchError(
        f"That link is {shown}; I can read web pages, PDFs, Markdown, plain text and JSON Lines."
    )


class _Decoder:
    """Undoes one Content-Encoding, never producing more than policy.max_bytes in all."""

    def __init__(self, encoding: str, policy: FetchPolicy) -> None:
        self.encoding = encoding
        self.policy = policy
        self.total = 0
        self._zlib: Any = None
        self._brotli: Any = None
        self._started = False
        if encoding == "br":
            self._brotli = brotli.Decompressor()
        elif encoding in {"gzip", "x-gzip"}:
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)

    def feed(self, data: bytes) -> list[bytes]:
        try:
            return self._brotli_feed(data) if self._brotli is not None else self._zlib_feed(data)
        except (zlib.error, brotli.error) as error:
            raise self._damaged() from error

    def finish(self) -> None:
        finished = self._brotli.is_finished() if self._brotli is not None else self._zlib.eof
        if not finished:
            raise self._damaged()

    def _room(self) -> int:
        return self.policy.max_bytes - self.total + 1

    def _count(self, out: bytes) -> bytes:
        self.total += len(out)
        if self.total > self.policy.max_bytes:
            raise FetchError(
                f"That page unpacks to more than {self.policy.max_bytes / 1_000_000:g} MB, which is my limit."
            )
        return out

    def _zlib_feed(self, data: bytes) -> list[bytes]:
        if not self._started and self.encoding == "deflate" and data:
            self._started = True
            try:  # "deflate" should be zlib-wrapped, but some servers send a raw stream
                probe = zlib.decompressobj(zlib.MAX_WBITS)
                probe.decompress(data[:2])
            except zlib.error:
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        out = [self._count(self._zlib.decompress(data, self._room()))]
        while self._zlib.unconsumed_tail:
            out.append(self._count(self._zlib.decompress(self._zlib.unconsumed_tail, self._room())))
        return out

    def _brotli_feed(self, data: bytes) -> list[bytes]:
        out = [self._count(self._brotli.process(data, output_buffer_limit=self._room()))]
        while not self._brotli.can_accept_more_data():
            out.append(self._count(self._brotli.process(b"", output_buffer_limit=self._room())))
        return out

    def _damaged(self) -> FetchError:
        return FetchError(f"The site's {self.encoding}-compressed answer is damaged or cut short.")


def _decoder(header: str | None, policy: FetchPolicy) -> _Decoder | None:
    encodings = [part.strip().lower() for part in (header or "").split(",") if part.strip()]
    encodings = [encoding for encoding in encodings if encoding != "identity"]
    if not encodings:
        return None
    if len(encodings) > 1:
        raise FetchError(f"The site compressed its answer {len(encodings)} times over, which I don't read.")
    if encodings[0] not in {"gzip", "x-gzip", "deflate", "br"}:
        raise FetchError(f"The site sent {encodings[0]}-compressed data, which I can't read.")
    return _Decoder(encodings[0], policy)


def _read_body(
    response: http.client.HTTPResponse, policy: FetchPolicy, deadline: float, decoder: _Decoder | None = None
) -> bytes:
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
        if decoder is None:
            chunks.append(chunk)
        else:
            chunks.extend(decoder.feed(chunk))
    if time.monotonic() >= deadline:
        raise _timeout(policy)
    if decoder is not None:
        decoder.finish()
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
