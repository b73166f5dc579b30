"""One request and its answer: tried on each vetted address (a reset before the answer retried once)
under a watchdog that enforces the deadline; the answer read as a redirect, a 304, an error status or
a body of an accepted media type."""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from urllib.parse import urljoin

from index.errors import FetchError
from index.ingest.fetch.addresses import _Target
from index.ingest.fetch.body import _decoder, _read_body
from index.ingest.fetch.policy import (
    _VAGUE_CONTENT_TYPES,
    ALLOWED_CONTENT_TYPES,
    Fetched,
    FetchPolicy,
    _Conditions,
    _timeout,
    _too_large,
)
from index.ingest.fetch.transport import _abort, _authority, _connection, _describe, _host_header, _Proxy

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()
