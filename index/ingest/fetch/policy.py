"""What a fetch may do and what it returns: the limits (FetchPolicy), the answer (Fetched), the media
types read, and the errors every limit raises."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from index.errors import FetchError

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


class FetchPolicy(BaseModel):
    """[fetch]: limits for one fetch; the defaults are the production settings. Frozen (one shared
    default is safe) and validated, so a bad limit fails where it is set, not mid-fetch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(default=10_000_000, ge=1000)
    timeout_s: float = Field(default=15.0, gt=0, le=300)  # wall clock: DNS, connects, redirects, body
    max_redirects: int = Field(default=5, ge=0, le=20)
    # Networks exempt from the public-address rule, e.g. ("127.0.0.0/8",) in tests; never in production.
    allow_networks: tuple[str, ...] = ()
    user_agent: str = "quotebot/0.1 (+https://github.com/quotebot)"

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)  # as the address rule reads them
            except ValueError as e:
                raise ValueError(f"{network!r} is not an IP network (e.g. 127.0.0.0/8)") from e
        return value

    @field_validator("user_agent")
    @classmethod
    def _header_value(cls, value: str) -> str:
        if not value.strip() or any(not (" " <= c <= "~") for c in value):
            raise ValueError("must be printable ASCII on one line (it is sent as the User-Agent header)")
        return value


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


def _timeout(policy: FetchPolicy) -> FetchError:
    return FetchError(f"The site took longer than {policy.timeout_s:g} seconds to answer, so I gave up.")


def _too_large(policy: FetchPolicy) -> FetchError:
    return FetchError(f"That page is larger than {policy.max_bytes / 1_000_000:g} MB, which is my limit.")
