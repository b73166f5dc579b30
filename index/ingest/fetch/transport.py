"""How a fetch connects: to the vetted IP address (pinned, the host name kept for Host and TLS SNI),
directly or through the HTTP(S)_PROXY the environment names (absolute-form GET, or a CONNECT tunnel)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from index.errors import FetchError
from index.ingest.fetch.addresses import _run_with_deadline, _Target

_MAX_PROXY_REPLY_BYTES = 16 * 1024


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


def _abort(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to stop
            sock.shutdown(socket.SHUT_RDWR)


def _describe(error: BaseException, target: _Target) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"{target.host}'s security certificate isn't valid, so I won't fetch it."
    if isinstance(error, ssl.SSLError):
        return f"The secure connection to {target.host} failed."
    if isinstance(error, http.client.HTTPException):
        return f"{target.host} sent a malformed HTTP answer."
    return f"The connection to {target.host} failed."
