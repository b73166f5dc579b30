"""Turn uploaded or fetched bytes (HTML, PDF, Markdown, plain text, JSON Lines) into clean article text.

One module per format, beside the pieces they share:

    detect.py     which format: media type, then file name, then the first bytes; binary refused
    text.py       decoding, characters, titles, plain text (exact or cleaned), the furniture filter
    markdown.py   Markdown rendered as plain text, in pieces under the time limit
    html.py       HTML through trafilatura; attribute bombs refused
    pdf.py        PDF through pypdf, within page, content and time limits
    jsonl.py      JSON Lines: one Document per record, kept exact
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from index.errors import InputError
from index.ingest.extract.detect import _detect_kind, _refuse_binary
from index.ingest.extract.html import MAX_HTML_ATTRIBUTES_PER_TAG, _decode_html, _extract_html
from index.ingest.extract.jsonl import _extract_jsonl
from index.ingest.extract.markdown import _extract_markdown
from index.ingest.extract.pdf import MAX_PDF_PAGES, PDF_CONTENT_BYTES_PER_TEXT_BYTE, _extract_pdf
from index.ingest.extract.text import (
    MAX_BAD_BYTE_RATIO,
    MAX_EXTRACT_SECONDS,
    MAX_TITLE_CHARS,
    _clean_plain_text,
    _decode_noting,
    _exact_text,
    _megabytes,
    _plain_title,
    _tidy_title,
    _title_from_filename,
    clean_plain_text,
    clean_title,
    looks_scraped,
)
from index.types import Document

__all__ = [
    "MAX_BAD_BYTE_RATIO",
    "MAX_EXTRACT_SECONDS",
    "MAX_HTML_ATTRIBUTES_PER_TAG",
    "MAX_PDF_PAGES",
    "MAX_TITLE_CHARS",
    "PDF_CONTENT_BYTES_PER_TEXT_BYTE",
    "Document",
    "clean_plain_text",
    "clean_title",
    "extract",
    "looks_scraped",
]


# --------------------------------------------------------------------------------------------- public


def extract(
    data: bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    url: str | None = None,
    max_bytes: int = 20_000_000,
    max_record_bytes: int | None = None,
    time_limit_s: float = MAX_EXTRACT_SECONDS,
    scraped: bool = False,
    detect_scraped: bool = True,
) -> list[Document]:
    """Detect the format from content_type, then filename extension (.txt .md .markdown .html .htm .pdf .jsonl), then sniffing; return one Document (or many for .jsonl).

    max_bytes limits the file, and so the one article it holds; a PDF may also unpack to at most
    PDF_CONTENT_BYTES_PER_TEXT_BYTE x max_bytes of page content. max_record_bytes limits the UTF-8
    size of each JSON Lines record's text (default: max_bytes), so a caller can allow a large .jsonl
    file while holding each article in it to the per-article limit. time_limit_s bounds PDF reading.

    Plain text is stored as given (only a leading byte order mark and CRLF line endings are changed,
    and Document.normalised says so); the page-furniture filter runs on HTML, and on plain text that
    is a web page saved as text: when scraped=True, or (detect_scraped) when two different template
    lines mark it (see looks_scraped). Document.dropped lists what it removed.
    """
    if max_record_bytes is None:
        max_record_bytes = max_bytes
    if len(data) > max_bytes:
        raise InputError(
            f"That file is {_megabytes(len(data))}, which is over the {_megabytes(max_bytes)} limit."
        )
    if not data.strip():
        raise InputError("That file is empty.")
    if filename is None and url:
        filename = PurePosixPath(unquote(urlsplit(url).path)).name or None
    kind = _detect_kind(data, filename, content_type)
    fallback_title = _title_from_filename(filename)

    if kind == "pdf":
        text, title, page_starts = _extract_pdf(data, max_chars=max_bytes, time_limit_s=time_limit_s)
        return [dataclasses.replace(_document(text, title or fallback_title, url, "pdf"), pages=page_starts)]

    _refuse_binary(data)
    if kind == "html":
        html = _decode_html(data)
        dropped: list[str] = []
        text, title, found_url, published = _extract_html(html, url, max_bytes, dropped)
        document = _document(text, title or fallback_title, url or found_url, "html", dropped=dropped)
        return [dataclasses.replace(document, published=published)]
    raw, notes = _decode_noting(data)
    dropped = []
    if kind == "jsonl":
        return _extract_jsonl(raw, max_record_bytes)
    if kind == "markdown":
        text, title = _extract_markdown(raw, time_limit_s=time_limit_s)
        return [_document(text, title or fallback_title, url, "markdown")]
    if scraped or (detect_scraped and looks_scraped(raw)):
        title_or_none, text = _clean_plain_text(raw, dropped)
        return [_document(text, title_or_none or fallback_title, url, "text", dropped=dropped)]
    text, more_notes = _exact_text(raw)
    return [_document(text, _plain_title(text) or fallback_title, url, "text", notes=[*notes, *more_notes])]


def _document(
    text: str,
    title: str,
    url: str | None,
    kind: str,
    *,
    dropped: list[str] | None = None,
    notes: list[str] | None = None,
) -> Document:
    if not text.strip():
        raise InputError("I couldn't find any article text in that file.")
    return Document(
        text=text,
        title=_tidy_title(title) or "Untitled",
        url=url,
        kind=kind,
        dropped=tuple(dropped or ()),
        normalised="; ".join(notes) if notes else None,
    )
