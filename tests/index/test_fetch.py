"""Tests for index.ingest.fetch against a real HTTP server on 127.0.0.1; nothing is ever sent anywhere else."""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import brotli
import pytest

import index.ingest.fetch.transport
from index.errors import FetchError
from index.ingest.fetch import FetchPolicy, fetch

ARTICLE = (
    b"<html><head><title>Local article</title></head><body><p>Hello from the test server.</p></body></html>"
)
LOOPBACK = FetchPolicy(allow_networks=("127.0.0.0/8",), timeout_s=5.0)
ETAG = '"v1-abc"'
LAST_MODIFIED = "Tue, 05 Mar 2024 10:00:00 GMT"
COMPRESSED = {
    "gzip": gzip.compress(ARTICLE),
    "deflate": zlib.compress(ARTICLE),
    "deflate-raw": zlib.compress(ARTICLE)[2:-4],  # a raw deflate stream, as some servers send
    "br": brotli.compress(ARTICLE),
}
# 60 MB of zeros in ~60 KB of gzip: a decompression bomb.
GZIP_BOMB = gzip.compress(bytes(60_000_000), compresslevel=9)


@dataclass
class Server:
    base: str
    port: int
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def send_body(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_encoded(self, body: bytes, encoding: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host")))
        self.server.headers.append(dict(self.headers))
        parts = urlsplit(self.path)
        path = parts.path
        hits = self.server.hits
        hits[path] = hits.get(path, 0) + 1
        try:
            if path.startswith("/encoded/"):
                name = path.rsplit("/", 1)[1]
                self.send_encoded(COMPRESSED[name], name.split("-")[0])
            elif path == "/gzip-bomb":
                self.send_encoded(GZIP_BOMB, "gzip")
            elif path == "/compress":
                self.send_encoded(b"whatever", "compress")
            elif path == "/conditional":
                if self.headers.get("If-None-Match") == ETAG or (
                    self.headers.get("If-Modified-Since") == LAST_MODIFIED
                ):
                    self.send_response(304)
                    self.send_header("ETag", ETAG)
                    self.end_headers()
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("ETag", ETAG)
                    self.send_header("Last-Modified", LAST_MODIFIED)
                    self.send_header("Content-Length", str(len(ARTICLE)))
                    self.end_headers()
                    self.wfile.write(ARTICLE)
            elif path in {"/flaky-close", "/flaky-reset", "/always-reset"}:
                if hits[path] == 1 or path == "/always-reset":
                    if path != "/flaky-close":  # an RST: SO_LINGER with a zero timeout, then close
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_body(ARTICLE, "text/html")
            elif path == "/article":
                self.send_body(ARTICLE, "text/html; charset=utf-8")
            elif path == "/notes.md":
                self.send_body(b"# Notes\n\nSome notes.\n", "text/markdown")
            elif path == "/echo-host":
                self.send_body((self.headers.get("Host") or "").encode(), "text/plain")
            elif path == "/drip":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif path == "/huge-declared":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "50000000")
                self.end_headers()
                self.wfile.write(b"x" * 1024)
            elif path == "/huge-stream":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()  # no Content-Length: the body runs until the connection closes
                for _ in range(64):
                    self.wfile.write(b"y" * 32 * 1024)
            elif path == "/image":
                self.send_body(b"\x89PNG\r\n\x1a\n", "image/png")
            elif path == "/no-type":
                self.send_response(200)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"hello")
            elif path == "/gzip":
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"\x1f\x8b")
            elif path == "/redirect":
                self.redirect(parse_qs(parts.query)["to"][0])
            elif path == "/loop":
                self.redirect("/loop")
            elif path.startswith("/hop/"):
                remaining = int(path.rsplit("/", 1)[1])
                self.redirect(f"/hop/{remaining - 1}" if remaining else "/article")
            else:
                self.send_error(404, "Not Found")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    state = Server(base=f"http://127.0.0.1:{port}", port=port)
    httpd.requests = state.requests  # type: ignore[attr-defined]
    httpd.headers = state.headers  # type: ignore[attr-defined]
    httpd.hits = state.hits  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without proxy variables, whatever the machine running them has set."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every outgoing connection and fail the test on any non-loopback one."""
    connected: list[str] = []
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        connected.append(address[0])
        assert ipaddress.ip_address(address[0]).is_loopback, f"tried to connect to {address[0]}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return connected


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            return real(host, port, *args, **kwargs)
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (address, port, 0, 0) if ":" in address else (address, port),
            )
            for address in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# ------------------------------------------------------------------------------------------- success


def test_fetches_an_article(server: Server) -> None:
    fetched = fetch(f"{server.base}/article", LOOPBACK)
    assert fetched.url == f"{server.base}/article"
    assert fetched.content_type == "text/html"
    assert fetched.data == ARTICLE


def test_markdown_content_type(server: Server) -> None:
    assert fetch(f"{server.base}/notes.md", LOOPBACK).content_type == "text/markdown"


def test_follows_redirects_and_reports_the_final_url(server: Server) -> None:
    fetched = fetch(f"{server.base}/hop/3", LOOPBACK)
    assert fetched.url == f"{server.base}/article"
    assert fetched.data == ARTICLE


def test_connects_to_the_vetted_ip_but_sends_the_host_name(
    server: Server, monkeypatch: pytest.MonkeyPatch, loopback_only: list[str]
) -> None:
    fake_dns(monkeypatch, {"pinned.test": ["127.0.0.1"]})
    fetched = fetch(f"http://pinned.test:{server.port}/echo-host", LOOPBACK)
    assert fetched.data == f"pinned.test:{server.port}".encode()
    assert loopback_only == ["127.0.0.1"]


# ----------------------------------------------------------------------------------- refused URLs


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file.txt", "only fetch http"),
        ("file:///etc/passwd", "only fetch http"),
        ("javascript:alert(1)", "only fetch http"),
        ("example.com/article", "only fetch http"),
        ("http://user:secret@example.com/", "user name or password"),
        ("http://example.com:99999/", "valid link"),
        ("http:///nohost", "no host"),
        ("http://example.com/a b", "spaces"),
    ],
)
def test_refuses_bad_urls_without_connecting(url: str, message: str, loopback_only: list[str]) -> None:
    with pytest.raises(FetchError, match=message):
        fetch(url, LOOPBACK)
    assert loopback_only == []


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::1]", "10.0.0.1", "169.254.169.254", "192.168.1.1", "0.0.0.0", "[::ffff:127.0.0.1]"],
)
def test_default_policy_refuses_private_addresses_without_connecting(
    host: str, server: Server, loopback_only: list[str]
) -> None:
    before = len(server.requests)
    with pytest.raises(FetchError, match="private or local network"):
        fetch(f"http://{host}:{server.port}/article")
    assert loopback_only == []
    assert len(server.requests) == before


@pytest.mark.parametrize("target", ["http://10.0.0.1/secret", "http://169.254.169.254/latest/meta-data/"])
def test_redirect_to_a_private_address_is_refused_even_when_loopback_is_allowed(
    target: str, server: Server, loopback_only: list[str]
) -> None:
    with pytest.raises(FetchError, match="private or local network"):
        fetch(f"{server.base}/redirect?to={target}", LOOPBACK)
    assert loopback_only == ["127.0.0.1"]  # only the first hop connected


def test_every_hop_is_checked_against_the_allowed_networks(server: Server, loopback_only: list[str]) -> None:
    policy = FetchPolicy(allow_networks=("127.0.0.1/32",), timeout_s=5.0)
    with pytest.raises(FetchError, match="private or local network"):
        fetch(f"{server.base}/redirect?to=http://127.0.0.2:{server.port}/article", policy)
    assert loopback_only == ["127.0.0.1"]


@pytest.mark.parametrize(
    "addresses",
    [
        ["93.184.216.34", "10.0.0.5"],  # one public and one private answer: refused
        ["::ffff:10.0.0.5"],
        ["2002:a00:1::1"],  # 6to4 wrapping 10.0.0.1
        ["64:ff9b::a9fe:a9fe"],  # NAT64 wrapping 169.254.169.254
        ["fe80::1"],
        ["fd12:3456::1"],
        ["100.64.0.1"],
    ],
)
def test_host_names_resolving_to_private_addresses_are_refused(
    addresses: list[str], monkeypatch: pytest.MonkeyPatch, loopback_only: list[str]
) -> None:
    fake_dns(monkeypatch, {"sneaky.test": addresses})
    with pytest.raises(FetchError, match="private or local network"):
        fetch("http://sneaky.test/article", LOOPBACK)
    assert loopback_only == []


def test_unknown_host() -> None:
    with pytest.raises(FetchError, match="couldn't find the site"):
        fetch("http://does-not-exist.invalid/", LOOPBACK)


def test_slow_dns_counts_against_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_getaddrinfo(*args: Any, **kwargs: Any) -> list[Any]:
        time.sleep(2)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer"):
        fetch("http://slow.test/", FetchPolicy(timeout_s=0.3))
    assert time.monotonic() - started < 1.5


# ----------------------------------------------------------------------------------- bad answers


def test_slow_drip_body_hits_the_deadline(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 1 seconds"):
        fetch(f"{server.base}/drip", FetchPolicy(allow_networks=("127.0.0.0/8",), timeout_s=1.0))
    assert time.monotonic() - started < 2.5


def test_declared_size_over_the_limit_is_refused_early(server: Server) -> None:
    with pytest.raises(FetchError, match="larger than 1 MB"):
        fetch(
            f"{server.base}/huge-declared", FetchPolicy(allow_networks=("127.0.0.0/8",), max_bytes=1_000_000)
        )


def test_streamed_size_over_the_limit_is_refused(server: Server) -> None:
    with pytest.raises(FetchError, match=r"larger than 0\.1 MB"):
        fetch(f"{server.base}/huge-stream", FetchPolicy(allow_networks=("127.0.0.0/8",), max_bytes=100_000))


@pytest.mark.parametrize(("path", "message"), [("/image", "image/png"), ("/no-type", "unknown type")])
def test_wrong_content_type(server: Server, path: str, message: str) -> None:
    with pytest.raises(FetchError, match=message):
        fetch(f"{server.base}{path}", LOOPBACK)


def test_truncated_gzip_is_refused(server: Server) -> None:
    with pytest.raises(FetchError, match="gzip-compressed answer is damaged or cut short"):
        fetch(f"{server.base}/gzip", LOOPBACK)


def test_http_error_status(server: Server) -> None:
    with pytest.raises(FetchError, match="404 Not Found"):
        fetch(f"{server.base}/missing", LOOPBACK)


def test_redirect_loop(server: Server) -> None:
    with pytest.raises(FetchError, match="loop"):
        fetch(f"{server.base}/loop", LOOPBACK)


def test_too_many_redirects(server: Server) -> None:
    with pytest.raises(FetchError, match="more than 5 times"):
        fetch(f"{server.base}/hop/6", LOOPBACK)


def test_nothing_listening(loopback_only: list[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="couldn't connect"):
        fetch(f"http://127.0.0.1:{port}/", LOOPBACK)


# ------------------------------------------------------------------------------------------- HTTPS


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """An HTTPS server with a self-signed certificate for the name "pinned.test" (not for 127.0.0.1)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=pinned.test",
         "-addext", "subjectAltName=DNS:pinned.test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.requests = []  # type: ignore[attr-defined]
    httpd.headers = []  # type: ignore[attr-defined]
    httpd.hits = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], cert
    httpd.shutdown()
    httpd.server_close()


def trust(monkeypatch: pytest.MonkeyPatch, cert: Path) -> None:
    real = ssl.create_default_context
    monkeypatch.setattr(
        index.ingest.fetch.transport.ssl, "create_default_context", lambda: real(cafile=str(cert))
    )


def test_https_verifies_the_certificate_against_the_host_name(
    tls_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert = tls_server
    fake_dns(monkeypatch, {"pinned.test": ["127.0.0.1"]})
    with pytest.raises(FetchError, match="certificate"):
        fetch(f"https://pinned.test:{port}/article", LOOPBACK)  # self-signed: not trusted

    trust(monkeypatch, cert)
    fetched = fetch(f"https://pinned.test:{port}/echo-host", LOOPBACK)
    assert fetched.data == f"pinned.test:{port}".encode()
    with pytest.raises(FetchError, match="certificate"):
        fetch(f"https://127.0.0.1:{port}/article", LOOPBACK)  # trusted, but not issued for this name


# ------------------------------------------------------------------------------------ compression


@pytest.mark.parametrize("name", sorted(COMPRESSED))
def test_compressed_answers_are_decoded(server: Server, name: str) -> None:
    fetched = fetch(f"{server.base}/encoded/{name}", LOOPBACK)
    assert fetched.data == ARTICLE
    assert server.headers[-1]["Accept-Encoding"] == "gzip, deflate, br"


def test_a_gzip_bomb_is_refused_at_the_size_cap(server: Server) -> None:
    policy = FetchPolicy(allow_networks=("127.0.0.0/8",), timeout_s=5.0, max_bytes=1_000_000)
    assert len(GZIP_BOMB) < policy.max_bytes  # the bytes on the wire are under the cap
    started = time.monotonic()
    with pytest.raises(FetchError, match="unpacks to more than 1 MB"):
        fetch(f"{server.base}/gzip-bomb", policy)
    assert time.monotonic() - started < 2


def test_an_unknown_compression_is_refused_clearly(server: Server) -> None:
    with pytest.raises(FetchError, match="compress-compressed data, which I can't read"):
        fetch(f"{server.base}/compress", LOOPBACK)


# -------------------------------------------------------------------------------- conditional GET


def test_conditional_get_sends_validators_and_reports_not_modified(server: Server) -> None:
    first = fetch(f"{server.base}/conditional", LOOPBACK)
    assert (first.etag, first.last_modified, first.not_modified) == (ETAG, LAST_MODIFIED, False)
    assert first.data == ARTICLE and "If-None-Match" not in server.headers[-1]

    again = fetch(f"{server.base}/conditional", LOOPBACK, etag=first.etag, last_modified=first.last_modified)
    assert server.headers[-1]["If-None-Match"] == ETAG
    assert server.headers[-1]["If-Modified-Since"] == LAST_MODIFIED
    assert again.not_modified and again.data == b""
    assert (again.etag, again.last_modified) == (ETAG, LAST_MODIFIED)

    by_date = fetch(f"{server.base}/conditional", LOOPBACK, last_modified=LAST_MODIFIED)
    assert by_date.not_modified
    changed = fetch(f"{server.base}/conditional", LOOPBACK, etag='"v0-old"')
    assert not changed.not_modified and changed.data == ARTICLE


# ------------------------------------------------------------------------------ connection resets


@pytest.mark.parametrize("path", ["/flaky-close", "/flaky-reset"])
def test_a_connection_reset_before_the_answer_is_retried_once(server: Server, path: str) -> None:
    server.hits.pop(path, None)
    fetched = fetch(f"{server.base}{path}", LOOPBACK)
    assert fetched.data == ARTICLE
    assert server.hits[path] == 2


def test_a_second_reset_is_a_clear_error(server: Server) -> None:
    server.hits.pop("/always-reset", None)
    with pytest.raises(FetchError, match="closed the connection twice"):
        fetch(f"{server.base}/always-reset", LOOPBACK)
    assert server.hits["/always-reset"] == 2


# ------------------------------------------------------------------------------------------ proxies


class ProxyHandler(BaseHTTPRequestHandler):
    """A minimal forward proxy: absolute-form GET for http, CONNECT tunnels for https."""

    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(f"GET {self.path} Host={self.headers.get('Host')}")
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
        self.server.seen.append(f"CONNECT {self.path}")
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


@pytest.fixture(scope="module")
def proxy() -> Iterator[tuple[str, list[str]]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler)
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.seen  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def test_http_goes_through_the_proxy_in_absolute_form(
    server: Server, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, seen = proxy
    seen.clear()
    monkeypatch.setenv("HTTP_PROXY", address)
    fake_dns(monkeypatch, {"pinned.test": ["127.0.0.1"]})
    fetched = fetch(f"http://pinned.test:{server.port}/echo-host", LOOPBACK)
    assert fetched.data == f"pinned.test:{server.port}".encode()
    # The vetted address is in the request line, so the proxy cannot resolve the name differently.
    assert seen == [f"GET http://127.0.0.1:{server.port}/echo-host Host=pinned.test:{server.port}"]


def test_no_proxy_exempts_a_host(
    server: Server, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, seen = proxy
    seen.clear()
    monkeypatch.setenv("HTTP_PROXY", address)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert fetch(f"{server.base}/article", LOOPBACK).data == ARTICLE
    assert seen == []


def test_https_goes_through_a_connect_tunnel_to_the_vetted_address(
    tls_server: tuple[int, Path], proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert = tls_server
    address, seen = proxy
    seen.clear()
    monkeypatch.setenv("HTTPS_PROXY", address)
    fake_dns(monkeypatch, {"pinned.test": ["127.0.0.1"]})
    with pytest.raises(FetchError, match="certificate"):
        fetch(f"https://pinned.test:{port}/article", LOOPBACK)  # the tunnel does not skip TLS checks
    trust(monkeypatch, cert)
    fetched = fetch(f"https://pinned.test:{port}/echo-host", LOOPBACK)
    assert fetched.data == f"pinned.test:{port}".encode()
    assert seen == [f"CONNECT 127.0.0.1:{port}"] * 2


@pytest.mark.parametrize(
    ("url", "policy"),
    [
        ("http://10.0.0.1/secret", LOOPBACK),
        ("http://169.254.169.254/latest/meta-data/", LOOPBACK),
        ("http://127.0.0.1:{port}/article", FetchPolicy(timeout_s=5.0)),  # loopback not allowed
        ("https://127.0.0.1:{port}/article", FetchPolicy(timeout_s=5.0)),
    ],
)
def test_a_proxy_never_reaches_a_blocked_target(
    url: str,
    policy: FetchPolicy,
    server: Server,
    proxy: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    loopback_only: list[str],
) -> None:
    address, seen = proxy
    seen.clear()
    monkeypatch.setenv("HTTP_PROXY", address)
    monkeypatch.setenv("HTTPS_PROXY", address)
    with pytest.raises(FetchError, match="private or local network"):
        fetch(url.format(port=server.port), policy)
    assert seen == [] and loopback_only == []


def test_a_proxy_is_not_used_to_escape_a_redirect_to_a_blocked_target(
    server: Server, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, seen = proxy
    seen.clear()
    monkeypatch.setenv("HTTP_PROXY", address)
    with pytest.raises(FetchError, match="private or local network"):
        fetch(f"{server.base}/redirect?to=http://10.0.0.1/secret", LOOPBACK)
    assert len(seen) == 1  # only the first hop went to the proxy


def test_a_redirect_loop_through_the_proxy_is_refused(
    server: Server, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, _seen = proxy
    monkeypatch.setenv("HTTP_PROXY", address)
    with pytest.raises(FetchError, match="loop"):
        fetch(f"{server.base}/loop", LOOPBACK)
