"""Tests for index.ingest.fetch against a real HTTP server on 127.0.0.1; nothing is ever sent anywhere else."""

from __future__ import annotations

import gzip
import ipaddress
import shutil
import socket
import ssl
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import pytest

import index.ingest.fetch.transport
from index.errors import FetchError
from index.ingest.fetch import FetchPolicy, fetch
from tests.support.http import LocalProxy, LocalServer, Request, Response, Route, drip, redirect

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


def encoded(body: bytes, encoding: str) -> Response:
    return Response(
        body=body, headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": encoding}
    )


def conditional(request: Request) -> Response:
    if request.header("If-None-Match") == ETAG or request.header("If-Modified-Since") == LAST_MODIFIED:
        return Response(status=304, headers={"ETag": ETAG}, length=None)
    headers = {"Content-Type": "text/html", "ETag": ETAG, "Last-Modified": LAST_MODIFIED}
    return Response(body=ARTICLE, headers=headers)


def flaky(request: Request) -> Response:
    """The first request (every request, for /always-reset) is hung up on: closed, or reset (an RST)."""
    if request.hit == 1 or request.path == "/always-reset":
        return Response(hang_up="close" if request.path == "/flaky-close" else "reset")
    return Response(body=ARTICLE, headers={"Content-Type": "text/html"})


def hop(request: Request) -> Response:
    remaining = int(request.path.rsplit("/", 1)[1])
    return redirect(f"/hop/{remaining - 1}" if remaining else "/article")


ROUTES: dict[str, Route] = {
    **{f"/encoded/{name}": encoded(body, name.split("-")[0]) for name, body in COMPRESSED.items()},
    "/gzip-bomb": encoded(GZIP_BOMB, "gzip"),
    "/compress": encoded(b"whatever", "compress"),
    "/conditional": conditional,
    "/flaky-close": flaky,
    "/flaky-reset": flaky,
    "/always-reset": flaky,
    "/article": Response(body=ARTICLE, headers={"Content-Type": "text/html; charset=utf-8"}),
    "/notes.md": Response(body=b"# Notes\n\nSome notes.\n", headers={"Content-Type": "text/markdown"}),
    "/echo-host": lambda request: Response(
        body=(request.header("Host") or "").encode(), headers={"Content-Type": "text/plain"}
    ),
    "/drip": Response(body=drip(b"x" * 100, 0.2), headers={"Content-Type": "text/plain"}, length=100),
    # Declares 50 MB, sends 1 KB.
    "/huge-declared": Response(body=b"x" * 1024, headers={"Content-Type": "text/plain"}, length=50_000_000),
    # No Content-Length: the body runs until the connection closes.
    "/huge-stream": Response(
        body=[b"y" * 32 * 1024] * 64, headers={"Content-Type": "text/plain"}, length=None
    ),
    "/image": Response(body=b"\x89PNG\r\n\x1a\n", headers={"Content-Type": "image/png"}),
    "/no-type": Response(body=b"hello"),
    "/gzip": Response(body=b"\x1f\x8b", headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"}),
    "/redirect": lambda request: redirect(request.query["to"][0]),
    "/loop": redirect("/loop"),
    **{f"/hop/{n}": hop for n in range(10)},
}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(ROUTES) as httpd:
        yield httpd


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


def test_fetches_an_article(server: LocalServer) -> None:
    fetched = fetch(f"{server.base}/article", LOOPBACK)
    assert fetched.url == f"{server.base}/article"
    assert fetched.content_type == "text/html"
    assert fetched.data == ARTICLE


def test_markdown_content_type(server: LocalServer) -> None:
    assert fetch(f"{server.base}/notes.md", LOOPBACK).content_type == "text/markdown"


def test_follows_redirects_and_reports_the_final_url(server: LocalServer) -> None:
    fetched = fetch(f"{server.base}/hop/3", LOOPBACK)
    assert fetched.url == f"{server.base}/article"
    assert fetched.data == ARTICLE


def test_connects_to_the_vetted_ip_but_sends_the_host_name(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, loopback_only: list[str]
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
    host: str, server: LocalServer, loopback_only: list[str]
) -> None:
    before = len(server.requests)
    with pytest.raises(FetchError, match="private or local network"):
        fetch(f"http://{host}:{server.port}/article")
    assert loopback_only == []
    assert len(server.requests) == before


@pytest.mark.parametrize("target", ["http://10.0.0.1/secret", "http://169.254.169.254/latest/meta-data/"])
def test_redirect_to_a_private_address_is_refused_even_when_loopback_is_allowed(
    target: str, server: LocalServer, loopback_only: list[str]
) -> None:
    with pytest.raises(FetchError, match="private or local network"):
        fetch(f"{server.base}/redirect?to={target}", LOOPBACK)
    assert loopback_only == ["127.0.0.1"]  # only the first hop connected


def test_every_hop_is_checked_against_the_allowed_networks(
    server: LocalServer, loopback_only: list[str]
) -> None:
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


def test_slow_drip_body_hits_the_deadline(server: LocalServer) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 1 seconds"):
        fetch(f"{server.base}/drip", FetchPolicy(allow_networks=("127.0.0.0/8",), timeout_s=1.0))
    assert time.monotonic() - started < 2.5


def test_declared_size_over_the_limit_is_refused_early(server: LocalServer) -> None:
    with pytest.raises(FetchError, match="larger than 1 MB"):
        fetch(
            f"{server.base}/huge-declared", FetchPolicy(allow_networks=("127.0.0.0/8",), max_bytes=1_000_000)
        )


def test_streamed_size_over_the_limit_is_refused(server: LocalServer) -> None:
    with pytest.raises(FetchError, match=r"larger than 0\.1 MB"):
        fetch(f"{server.base}/huge-stream", FetchPolicy(allow_networks=("127.0.0.0/8",), max_bytes=100_000))


@pytest.mark.parametrize(("path", "message"), [("/image", "image/png"), ("/no-type", "unknown type")])
def test_wrong_content_type(server: LocalServer, path: str, message: str) -> None:
    with pytest.raises(FetchError, match=message):
        fetch(f"{server.base}{path}", LOOPBACK)


def test_truncated_gzip_is_refused(server: LocalServer) -> None:
    with pytest.raises(FetchError, match="gzip-compressed answer is damaged or cut short"):
        fetch(f"{server.base}/gzip", LOOPBACK)


def test_http_error_status(server: LocalServer) -> None:
    with pytest.raises(FetchError, match="404 Not Found"):
        fetch(f"{server.base}/missing", LOOPBACK)


def test_redirect_loop(server: LocalServer) -> None:
    with pytest.raises(FetchError, match="loop"):
        fetch(f"{server.base}/loop", LOOPBACK)


def test_too_many_redirects(server: LocalServer) -> None:
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
    with LocalServer(ROUTES, tls=context) as httpd:
        yield httpd.port, cert


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
def test_compressed_answers_are_decoded(server: LocalServer, name: str) -> None:
    fetched = fetch(f"{server.base}/encoded/{name}", LOOPBACK)
    assert fetched.data == ARTICLE
    assert server.requests[-1].headers["Accept-Encoding"] == "gzip, deflate, br"


def test_a_gzip_bomb_is_refused_at_the_size_cap(server: LocalServer) -> None:
    policy = FetchPolicy(allow_networks=("127.0.0.0/8",), timeout_s=5.0, max_bytes=1_000_000)
    assert len(GZIP_BOMB) < policy.max_bytes  # the bytes on the wire are under the cap
    started = time.monotonic()
    with pytest.raises(FetchError, match="unpacks to more than 1 MB"):
        fetch(f"{server.base}/gzip-bomb", policy)
    assert time.monotonic() - started < 2


def test_an_unknown_compression_is_refused_clearly(server: LocalServer) -> None:
    with pytest.raises(FetchError, match="compress-compressed data, which I can't read"):
        fetch(f"{server.base}/compress", LOOPBACK)


# -------------------------------------------------------------------------------- conditional GET


def test_conditional_get_sends_validators_and_reports_not_modified(server: LocalServer) -> None:
    first = fetch(f"{server.base}/conditional", LOOPBACK)
    assert (first.etag, first.last_modified, first.not_modified) == (ETAG, LAST_MODIFIED, False)
    assert first.data == ARTICLE and "If-None-Match" not in server.requests[-1].headers

    again = fetch(f"{server.base}/conditional", LOOPBACK, etag=first.etag, last_modified=first.last_modified)
    assert server.requests[-1].headers["If-None-Match"] == ETAG
    assert server.requests[-1].headers["If-Modified-Since"] == LAST_MODIFIED
    assert again.not_modified and again.data == b""
    assert (again.etag, again.last_modified) == (ETAG, LAST_MODIFIED)

    by_date = fetch(f"{server.base}/conditional", LOOPBACK, last_modified=LAST_MODIFIED)
    assert by_date.not_modified
    changed = fetch(f"{server.base}/conditional", LOOPBACK, etag='"v0-old"')
    assert not changed.not_modified and changed.data == ARTICLE


# ------------------------------------------------------------------------------ connection resets


@pytest.mark.parametrize("path", ["/flaky-close", "/flaky-reset"])
def test_a_connection_reset_before_the_answer_is_retried_once(server: LocalServer, path: str) -> None:
    server.hits.pop(path, None)
    fetched = fetch(f"{server.base}{path}", LOOPBACK)
    assert fetched.data == ARTICLE
    assert server.hits[path] == 2


def test_a_second_reset_is_a_clear_error(server: LocalServer) -> None:
    server.hits.pop("/always-reset", None)
    with pytest.raises(FetchError, match="closed the connection twice"):
        fetch(f"{server.base}/always-reset", LOOPBACK)
    assert server.hits["/always-reset"] == 2


# ------------------------------------------------------------------------------------------ proxies


@pytest.fixture(scope="module")
def proxy() -> Iterator[tuple[str, list[str]]]:
    with LocalProxy() as httpd:
        yield httpd.base, httpd.seen


def test_http_goes_through_the_proxy_in_absolute_form(
    server: LocalServer, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
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
    server: LocalServer, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
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
    server: LocalServer,
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
    server: LocalServer, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, seen = proxy
    seen.clear()
    monkeypatch.setenv("HTTP_PROXY", address)
    with pytest.raises(FetchError, match="private or local network"):
        fetch(f"{server.base}/redirect?to=http://10.0.0.1/secret", LOOPBACK)
    assert len(seen) == 1  # only the first hop went to the proxy


def test_a_redirect_loop_through_the_proxy_is_refused(
    server: LocalServer, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, _seen = proxy
    monkeypatch.setenv("HTTP_PROXY", address)
    with pytest.raises(FetchError, match="loop"):
        fetch(f"{server.base}/loop", LOOPBACK)
