"""Reading an answer's body: within the size cap and the deadline, its Content-Encoding (gzip,
deflate, br) undone under the same cap, so a decompression bomb stops at max_bytes."""

from __future__ import annotations

import http.client
import time
import zlib
from typing import Any

import brotli

from index.errors import FetchError
from index.ingest.fetch.policy import FetchPolicy, _timeout, _too_large

_CHUNK_BYTES = 64 * 1024


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
