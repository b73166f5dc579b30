"""Fetch one article URL safely: public addresses only, pinned to the vetted IP, within size and time limits.

Compressed answers (gzip, deflate, br) are decoded under the same size cap as plain bodies; the
HTTP_PROXY / HTTPS_PROXY / NO_PROXY environment variables are honoured, with every address check
still made on the final target (resolved here, before the proxy is asked); a connection reset before
the answer arrives is retried once; etag / last_modified make a conditional GET.

The package, by concern:

    policy.py      FetchPolicy (the limits), Fetched (the answer), the media types read
    addresses.py   the URL parsed, its host resolved and every address vetted (public only)
    transport.py   connections pinned to the vetted address, directly or through a proxy
    exchange.py    one request and its answer (redirect, 304, status, media type), under a watchdog
    body.py        the body read within the size cap and deadline, compressed bodies decoded
    __init__.py    fetch(): the redirect loop, each hop resolved and vetted again
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterable

from index.errors import FetchError
from index.ingest.fetch.addresses import _parse_networks, _parse_url, _resolve
from index.ingest.fetch.exchange import _request
from index.ingest.fetch.policy import ALLOWED_CONTENT_TYPES, Fetched, FetchPolicy, _Conditions
from index.ingest.fetch.transport import _proxy_for

__all__ = ["ALLOWED_CONTENT_TYPES", "FetchPolicy", "Fetched", "fetch"]


def fetch(
    url: str,
    policy: FetchPolicy = FetchPolicy(),  # noqa: B008 (frozen, so one shared default is safe)
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
