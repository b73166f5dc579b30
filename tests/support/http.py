"""A real HTTP server on 127.0.0.1 for tests, answering from a table of routes; and a forward proxy.

    ROUTES = {
        "/article": Response(body=b"<html>...</html>", headers={"Content-Type": "text/html"}),
        "/old": redirect("/article"),
        "/echo": lambda request: Response(body=(request.header("Host") or "").encode()),
    }
    with LocalServer(ROUTES) as server:
        fetch(server.base + "/article", policy)
        assert server.hits["/article"] == 1 and server.requests[-1].headers["Accept-Encoding"]

A route is a Response or a function of the Request that returns one. Paths are matched exactly,
without the query; what no route names goes to `fallback` (a function returning a Response, or None
for a 404), then to a 404. `routes` is an ordinary dict: a test may change it while the server runs.

A Response says its status, headers (sent in order) and body; Content-Length is the body's length
unless `length` declares another (a lie) or None (no header: the body runs until the connection
closes). A body may be a list of chunks, each written and flushed, where a number between them is a
pause in seconds (`drip` builds one): a slow answer. `gzip=True` compresses the body and says so;
`raw` puts bytes on the wire as they are, the status line and headers included (hostile answers);
`hang_up` closes the connection instead of answering ("close", or "reset" for a TCP RST).

Every request is recorded (server.requests, server.hits by path) before it is answered. A client
that stops reading (at its size cap, at its deadline) is not an error. `tls=` serves HTTPS with the
given server context. LocalProxy is a minimal forward proxy (absolute-form GET for http, CONNECT
tunnels for https) that records what it was asked in `seen`.
"""

from __future__ import annotations

import contextlib
import gzip as gzip_module
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

__all__ = ["LocalProxy", "LocalServer", "Request", "Response", "Route", "drip", "redirect"]

Chunks = Iterable[bytes | float]  # bytes are written and flushed; a number is a pause in seconds


@dataclass(frozen=True)
class Request:
    """One request as the server received it."""

    target: str  # the request line's target, query included
    path: str  # the target without its query
    query: dict[str, list[str]]
    headers: dict[str, str]  # as sent, in the case sent
    hit: int  # how many requests for this path the server has seen, this one included
    _message: Any = field(repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """A request header by name, in any case (None when absent)."""
        value = self._message.get(name)
        return None if value is None else str(value)


_AUTO: Any = object()


@dataclass(frozen=True)
class Response:
    """What the server answers; see the module docstring."""

    status: int = 200
    body: bytes | Chunks = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    length: int | None = _AUTO  # Content-Length: the body's length; a number to declare another; None: none
    gzip: bool = False  # compress the body and send Content-Encoding: gzip
    raw: Chunks | None = None  # the whole answer as it goes on the wire: status line, headers, body
    hang_up: Literal["close", "reset"] | None = None  # close the connection without answering


Route = Response | Callable[[Request], Response]


def redirect(location: str, status: int = 302) -> Response:
    """A redirect with an empty body."""
    return Response(status=status, headers={"Location": location})


def drip(data: bytes, pause_s: float) -> list[bytes | float]:
    """data one byte at a time, each byte followed by a pause of pause_s seconds."""
    return [part for byte in data for part in (bytes([byte]), pause_s)]


class _Background:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) serving from a daemon thread until closed."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True  # closing never waits for a handler still writing
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self.port: int = self._httpd.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LocalServer(_Background):
    """Answers from routes (then fallback, then 404); records every request. See the module docstring."""

    def __init__(
        self,
        routes: Mapping[str, Route] | None = None,
        *,
        fallback: Callable[[Request], Response | None] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.fallback = fallback
        self.requests: list[Request] = []
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__(_RouteHandler, tls)

    def __enter__(self) -> LocalServer:
        return self

    def _record(self, handler: BaseHTTPRequestHandler) -> Request:
        target = handler.path
        path, _, query = target.partition("?")
        with self._lock:
            hit = self.hits[path] = self.hits.get(path, 0) + 1
            request = Request(target, path, parse_qs(query), dict(handler.headers), hit, handler.headers)
            self.requests.append(request)
        return request

    def _answer(self, request: Request) -> Response | None:
        route = self.routes.get(request.path)
        if route is not None:
            return route if isinstance(route, Response) else route(request)
        return self.fallback(request) if self.fallback is not None else None


class _RouteHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        owner: LocalServer = self.server.owner  # type: ignore[attr-defined]
        request = owner._record(self)
        try:
            response = owner._answer(request)
            if response is None:
                self.send_error(404, "Not Found")
            else:
                self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should (its size cap, its deadline)

    def _send(self, response: Response) -> None:
        if response.hang_up is not None:
            if response.hang_up == "reset":  # an RST: SO_LINGER with a zero timeout, then close
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if response.raw is not None:
            self.close_connection = True
            self._write(response.raw)
            return
        body = response.body
        if response.gzip:
            body = gzip_module.compress(body if isinstance(body, bytes) else b"".join(_bytes_of(body)))
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.gzip:
            self.send_header("Content-Encoding", "gzip")
        length = response.length
        if length is _AUTO:
            length = len(body) if isinstance(body, bytes) else sum(len(b) for b in _bytes_of(body))
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self._write([body] if isinstance(body, bytes) else body)

    def _write(self, chunks: Chunks) -> None:
        for chunk in chunks:
            if isinstance(chunk, bytes):
                self.wfile.write(chunk)
                self.wfile.flush()
            else:
                time.sleep(chunk)


def _bytes_of(chunks: Chunks) -> list[bytes]:
    return [chunk for chunk in chunks if isinstance(chunk, bytes)]


class LocalProxy(_Background):
    """A minimal forward proxy: absolute-form GET for http, CONNECT tunnels for https. `seen` lists
    "GET <target> Host=<host>" and "CONNECT <authority>" for each request, in order."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(_ProxyHandler)

    def __enter__(self) -> LocalProxy:
        return self


class _ProxyHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.owner.seen.append(f"GET {self.path} Host={self.headers.get('Host')}")  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        upstream = socket.create_connection((parts.hostname, parts.port or 80), 5)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = f"GET {path} HTTP/1.0\r\nHost: {self.headers.get('Host')}\r\n\r\n"
        upstream.sendall(request.encode())
        with upstream:
            while chunk := upstream.recv(65536):
                self.wfile.write(chunk)
        self.close_connection = True

    def do_CONNECT(self) -> None:
        self.server.owner.seen.append(f"CONNECT {self.path}")  # type: ignore[attr-defined]
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host.strip("[]"), int(port)), 5)
        self.send_response(200)
        self.end_headers()
        self.wfile.flush()

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while chunk := source.recv(65536):
                    sink.sendall(chunk)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)

        back = threading.Thread(target=pump, args=(upstream, self.connection), daemon=True)
        back.start()
        pump(self.connection, upstream)
        back.join(5)
        upstream.close()
        self.close_connection = True
