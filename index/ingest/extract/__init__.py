"""Turn uploaded or fetched bytes (HTML, PDF, Markdown, plain text, JSON Lines) into clean article text."""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import io
import json
import logging
import re
import time
import unicodedata
import warnings
from collections.abc import Iterator
from html import unescape
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import pypdf
import trafilatura
from markdown_it import MarkdownIt
from markdown_it.common.utils import normalizeReference
from markdown_it.token import Token

from index.errors import InputError, UnsupportedFormat
from index.types import Document

__all__ = ["Document", "clean_plain_text", "clean_title", "extract"]

log = logging.getLogger(__name__)


class _RelayToDebug(logging.Handler):
    """Re-log trafilatura's records at DEBUG under our logger: its warnings ("discarding data") are
    about its own heuristics, never something the user did, and must not reach stderr or the bot log."""

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("trafilatura %s: %s", record.levelname.lower(), record.getMessage())


_trafilatura_log = logging.getLogger("trafilatura")
_trafilatura_log.propagate = False
if not any(isinstance(handler, _RelayToDebug) for handler in _trafilatura_log.handlers):
    _trafilatura_log.addHandler(_RelayToDebug())


MAX_TITLE_CHARS = 200
MAX_PDF_PAGES = 2_000
# A PDF's page content (drawing instructions, decompressed) is a few times the text it yields (2.6x and
# 3.9x in two LaTeX manuals); more than this multiple of max_bytes across all pages is a decompression
# bomb: a 2.7 MB file of 40 pages x 70 MB of whitespace took 213 s and 3 GB before this limit.
PDF_CONTENT_BYTES_PER_TEXT_BYTE = 5
# Wall-clock limit for reading one file; PDF extraction checks it page by page and stream by stream,
# Markdown between chunks of _MARKDOWN_CHUNK_CHARS (the parser reads ~0.3-1 MB/s).
MAX_EXTRACT_SECONDS = 30.0
# libxml2 checks each new attribute against the element's others, so parsing is quadratic in the
# attribute count (100,000 attributes take minutes); no real page comes near this.
MAX_HTML_ATTRIBUTES_PER_TAG = 1_000
# Below this share of undecodable bytes we assume a few stray bytes in a UTF-8 file, not another encoding.
MAX_BAD_BYTE_RATIO = 0.01

_SUPPORTED = "plain text (.txt), Markdown (.md), HTML (.html), PDF (.pdf) or JSON Lines (.jsonl)"

_KIND_BY_EXTENSION = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

_KIND_BY_MEDIA_TYPE = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
}

# Media types that say nothing about the format: decide from the file name or the content instead.
_VAGUE_MEDIA_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}

# Magic numbers of common binary files, so the error can say what the file really is.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"RIFF", "a RIFF media file (WebP, WAV or AVI)"),
    (b"PK\x03\x04", "a ZIP archive (or a Word/OpenDocument file)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b"{\\rtf", "an RTF document"),
)

# Page furniture: lines a site wraps around an article that must never be quoted as if the author
# wrote them. A line is dropped only when it is short (see _FURNITURE_MAX_CHARS) and one of these
# matches it from its first character; patterns ending in $ must match the whole line.
_FURNITURE_MAX_CHARS = 160
_FURNITURE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # teasers for other stories, usually a label glued to another headline
        r"just in\s*:",
        r"breaking(?: news)?\s*:",
        r"read more(?:\s*[:»>…]|\s*$|\s+(?:about|on|here|at)\b)",
        r"(?:also )?read(?: also)?\s*:",
        r"(?:see|watch|listen)(?: also| more)?\s*:",
        r"related\s*:",
        r"related (?:articles?|stories|story|posts?|news|content|reading|topics)\b",
        r"more (?:on this story|stories)\b",
        r"more from (?:the )?[\w .&'-]{1,40}$",
        r"recommended(?: for you| articles?| stories)?\s*:?$",
        r"trending(?: now)?\s*:?$",
        # links to the neighbouring articles
        r"(?:«\s*|<\s*)?previous (?:article|post|story)",
        r"next (?:article|post|story)",
        r"(?:older|newer) (?:posts?|articles?)\s*[»>]?$",
        # comment forms
        r"please enter your (?:comment|name|e-?mail|website)",
        r"you have entered an incorrect email",
        r"leave a (?:comment|reply)\b",
        r"(?:post|add|write|view|show|load) (?:a |your |all |more )?comments?\b[^.!?]{0,40}$",
        r"\d+ comments?$",
        r"comments?\s*(?:\(\d+\))?$",
        r"cancel reply$",
        r"you must be logged in to post a comment",
        r"save my name, e-?mail,? and website",
        r"log ?in to (?:comment|reply)",
        # newsletters and sharing buttons
        r"sign up\b.{0,80}\bnewsletters?\b",
        r"sign up(?: now| here| today)?[.!]?$",
        r"subscribe\b.{0,60}\b(?:newsletters?|updates|today|now)\b",
        r"subscribe[.!]?$",
        r"get (?:our|the)\b.{0,40}\bnewsletter\b",
        r"share (?:this|on)\b[^.!?]{0,40}$",
        r"share(?: this)?(?: article| story| post| page)?\s*:?$",
        r"(?:tweet|email|print|whatsapp|facebook|twitter|linkedin|reddit|pinterest)\s*$",
        r"click here\b",
        r"follow us(?: on)?\b",
        r"like us on facebook",
        # advertising
        r"advertisements?\s*$",
        r"advert\s*$",
        r"ad(?:vertising)? feature\s*$",
        r"sponsored(?: content| post| story| links?)?\s*$",
        r"(?:promoted|paid)(?: content| stories| post)?\s*$",
        r"(?:story|article) continues below\b",
        r"continue reading(?: below| the main story)?\s*$",
        r"scroll (?:down )?to continue",
        # cookie, privacy and legal notices
        r".{0,120}\ball rights reserved\b",
        r"copyright\s*(?:©|\(c\)|\d{4})",
        r"©",
        r"\(c\) \d{4}",
        r"(?:this (?:web)?site|we) uses? cookies",
        r"by (?:continuing|using) (?:to use )?(?:this|our) (?:web)?site",
        r"(?:accept|reject|manage) (?:all )?cookies",
        r"cookie (?:policy|settings|preferences|consent|notice)",
        r"privacy (?:policy|notice|settings)\b[^.!?]{0,80}$",
        r"terms (?:of (?:use|service)|(?:and|&) conditions)\b[^.!?]{0,80}$",
        # picture credits
        r"\(?(?:photo|image|picture|pictures|credit|photograph)s?(?: credit)?\s*:",
        r"\(?[^.!?]{0,80}\bgetty images\)?\s*$",
        r"\(?(?:pa|ap|afp|reuters|epa|shutterstock|alamy)(?: (?:images|photo|wire))?\)?\s*$",
        # page numbers left in PDF text
        r"page \d{1,4}(?: of \d{1,4})?\s*$",
        r"\d{1,4}\s*$",
    )
)

# Characters removed from every text: invisible format characters that break quoting or can
# disguise text (soft hyphen, zero-width space, bidirectional overrides, BOM, word joiners).
_INVISIBLE = dict.fromkeys(
    [
        0x00AD,
        0x200B,
        0x200E,
        0x200F,
        0x2060,
        0x2061,
        0x2062,
        0x2063,
        0x2064,
        0xFEFF,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)
_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_SPACES = re.compile(r"[ \t\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_SENTENCE_END = re.compile(r"[.!?…:;][\"'”’»)\]]*$")


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


def clean_plain_text(raw: str) -> tuple[str | None, str]:
    """Return (title or None, cleaned text) for text scraped from a web page: characters and
    whitespace normalised, the title line taken out, page furniture dropped."""
    return _clean_plain_text(raw, None)


def _clean_plain_text(
    raw: str, dropped: list[str] | None, *, furniture: bool = True
) -> tuple[str | None, str]:
    lines = _clean_lines(raw, dropped, furniture=furniture)
    title: str | None = None
    first = next((i for i, line in enumerate(lines) if line), None)
    if first is not None:
        candidate = lines[first]
        rest_has_text = any(lines[first + 1 :])
        if len(candidate) <= MAX_TITLE_CHARS and not _SENTENCE_END.search(candidate) and rest_has_text:
            title = candidate
            lines = lines[first + 1 :]
    return title, _join_lines(lines)


# ------------------------------------------------------------------------------------ format choice


def _detect_kind(data: bytes, filename: str | None, content_type: str | None) -> str:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    extension = PurePosixPath(filename).suffix.lower() if filename else ""
    by_name = _KIND_BY_EXTENSION.get(extension)
    if media_type not in _VAGUE_MEDIA_TYPES and media_type not in _KIND_BY_MEDIA_TYPE:
        raise UnsupportedFormat(f"I can't read {media_type} content; send {_SUPPORTED}.")
    by_type = _KIND_BY_MEDIA_TYPE.get(media_type)
    if by_type == "text":
        by_type = None  # many upload paths say text/plain for any text file; the name knows better
    kind = by_type or by_name or _sniff_kind(data)
    # Servers and people mislabel PDFs; the signature is unambiguous.
    if kind != "pdf" and data.lstrip()[:5] == b"%PDF-":
        kind = "pdf"
    return kind


def _sniff_kind(data: bytes) -> str:
    head = data[:4096].lstrip()
    if head.startswith(b"%PDF-"):
        return "pdf"
    lowered = head[:1024].lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml")) or any(
        tag in lowered for tag in (b"<html", b"<head", b"<body", b"<article")
    ):
        return "html"
    if head.startswith(b"{"):
        first_line = head.split(b"\n", 1)[0].strip()
        try:
            record = json.loads(first_line)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict) and "text" in record:
            return "jsonl"
    if head.startswith((b"---\n", b"---\r\n", b"# ")) or re.search(rb"(?m)^#{1,6} \S", head):
        return "markdown"
    return "text"


def _title_from_filename(filename: str | None) -> str:
    if not filename:
        return "Untitled"
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    words = re.sub(r"[-_]+", " ", stem).strip()
    return _tidy_title(words) or "Untitled"


def clean_title(title: str) -> str:
    """A title fit to store and show: NFC, one line, no control or invisible characters, capped."""
    return _tidy_title(title)


def _tidy_title(title: str) -> str:
    title = unicodedata.normalize("NFC", title).translate(_INVISIBLE)
    title = _CONTROL.sub("", _LINE_BREAKS.sub(" ", title))
    title = _SPACES.sub(" ", title).strip()
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return title


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


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size:,} bytes"


# ----------------------------------------------------------------------------------------- decoding


def _refuse_binary(data: bytes) -> None:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return  # UTF-16 is full of NUL bytes; _decode handles it
    for signature, description in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise UnsupportedFormat(f"That looks like {description}, not text; send {_SUPPORTED}.")
    if b"\x00" in data:
        raise UnsupportedFormat(f"That file is binary, not text; send {_SUPPORTED}.")


def _decode(data: bytes, fallback_encoding: str | None = None) -> str:
    return _decode_noting(data, fallback_encoding)[0]


def _decode_noting(data: bytes, fallback_encoding: str | None = None) -> tuple[str, list[str]]:
    """The text, and what decoding changed (a byte order mark dropped, bad bytes replaced)."""
    notes = []
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        notes.append("the leading byte order mark removed")
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8"]
    if fallback_encoding:
        candidates.append(fallback_encoding)
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        if encoding == fallback_encoding:
            notes.append(f"decoded from {encoding}")
        return _refuse_control_heavy(text), notes
    if candidates[0] == "utf-16":
        raise InputError(
            "That file says it is UTF-16 but isn't valid UTF-16; save it as UTF-8 and try again."
        )
    text = data.decode("utf-8", errors="replace")
    # Each replacement character stands for at least one bad byte; genuine U+FFFD in the file don't count.
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    if bad > MAX_BAD_BYTE_RATIO * len(data):
        raise InputError("That file isn't UTF-8 text; save it as UTF-8 and try again.")
    notes.append(f"{bad:,} undecodable byte sequence{'s' if bad != 1 else ''} replaced with U+FFFD")
    return _refuse_control_heavy(text), notes


def _refuse_control_heavy(text: str) -> str:
    sample = text[:8192]
    controls = len(_CONTROL.findall(sample))
    if controls > 0.05 * len(sample):
        raise UnsupportedFormat(f"That file looks binary, not text; send {_SUPPORTED}.")
    return text


_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE)


def _decode_html(data: bytes) -> str:
    declared = _META_CHARSET.search(data[:4096])
    fallback = declared.group(1).decode("ascii") if declared else None
    if fallback:
        try:
            if codecs.lookup(fallback).name in {"utf-8", "utf-16", "utf-32"}:
                fallback = None
        except LookupError:
            fallback = None
    return _decode(data, fallback)


# --------------------------------------------------------------------------------------- plain text


def _exact_text(raw: str) -> tuple[str, list[str]]:
    """Plain text as given: only CRLF line endings become LF (a lone CR, tabs, spacing, invisible and
    control characters are all kept; outputs neutralise what a terminal or Discord would act on)."""
    if "\r\n" not in raw:
        return raw, []
    return raw.replace("\r\n", "\n"), ["CRLF line endings changed to LF"]


def _plain_title(text: str) -> str | None:
    """The first line, when it reads as a title (short, no closing punctuation, more text after it).
    It stays in the text too: the text is what was given."""
    lines = text.split("\n", 64)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or first == len(lines) - 1:
        return None
    candidate = _tidy_title(lines[first])
    if not candidate or len(lines[first].strip()) > MAX_TITLE_CHARS or _SENTENCE_END.search(candidate):
        return None
    if not any(line.strip() for line in lines[first + 1 :]):
        return None
    return candidate


def _clean_lines(raw: str, dropped: list[str] | None = None, *, furniture: bool = True) -> list[str]:
    """Normalise characters and whitespace, strip each line and (if furniture) drop furniture lines,
    appending them to dropped when given."""
    text = unicodedata.normalize("NFC", raw).translate(_INVISIBLE)
    text = _CONTROL.sub("", _LINE_BREAKS.sub("\n", text))
    lines = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if furniture and line and _is_furniture(line):
            if dropped is not None:
                dropped.append(line)
            continue
        lines.append(line)
    return lines


# Lines only a web page's template writes (a comment form, links to the neighbouring stories, a
# "JUST IN:" teaser): a text file holding two different ones is a web page saved as text.
_SCRAPE_MARKERS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"just in\s*:",
        r"(?:«\s*|<\s*)?previous (?:article|post|story)\s*$",
        r"next (?:article|post|story)\s*[»>]?\s*$",
        r"please enter your (?:comment|name|e-?mail)",
        r"you have entered an incorrect email",
        r"leave a reply\s*$",
        r"cancel reply\s*$",
        r"you must be logged in to post a comment",
        r"save my name, e-?mail,? and website",
    )
)


def looks_scraped(raw: str) -> bool:
    """Whether a plain text is a web page saved as text (two different template lines of
    `_SCRAPE_MARKERS`): then its page furniture is dropped, and reported, as for HTML. A text
    anyone wrote (a paste, server rules with "Click here to verify..." lines) is kept exact."""
    seen: set[int] = set()
    for line in raw.splitlines():
        line = line.strip()
        if not line or len(line) > _FURNITURE_MAX_CHARS:
            continue
        for k, pattern in enumerate(_SCRAPE_MARKERS):
            if pattern.match(line):
                seen.add(k)
                if len(seen) >= 2:
                    return True
    return False


def _is_furniture(line: str) -> bool:
    if len(line) > _FURNITURE_MAX_CHARS:
        return False
    return any(pattern.match(line) for pattern in _FURNITURE_PATTERNS)


def _join_lines(lines: list[str]) -> str:
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


# ----------------------------------------------------------------------------------------- Markdown

_FRONT_MATTER = re.compile(r"\A(?:---|\+\+\+)[ \t]*\n(.*?)\n(?:---|\+\+\+|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_TITLE = re.compile(r"""^title\s*[:=]\s*(?P<q>["']?)(.+?)(?P=q)\s*$""", re.MULTILINE)
# CommonMark plus GitHub's tables and strikethrough; maxNesting bounds the parser's recursion on
# hostile nesting ("> > > > ...", lists in lists): deeper content is kept as plain text.
_MARKDOWN = MarkdownIt("commonmark", {"maxNesting": 50}).enable(["table", "strikethrough"])
# A large file is parsed in pieces of about this size, cut at a blank line outside fenced code (else,
# past twice the size, at any line), so the time limit is checked between pieces.
_MARKDOWN_CHUNK_CHARS = 64 * 1024
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[([^\]\n]{1,999})\]:[ \t]*\S", re.MULTILINE)
# Inline tokens whose own content is not text: markup around text (kept) or things with no text.
_SKIPPED_INLINE = frozenset({"image", "html_inline"})


def _extract_markdown(raw: str, *, time_limit_s: float = MAX_EXTRACT_SECONDS) -> tuple[str, str | None]:
    """Parse Markdown and render it as plain text: headings, paragraphs, list items, blockquotes and
    table rows (cells joined by " | ") as their own lines; code blocks' text as written; links as
    their text. A front-matter title, else the first level-1 heading, is the title."""
    text = _LINE_BREAKS.sub("\n", raw.lstrip("\ufeff"))
    title: str | None = None
    front = _FRONT_MATTER.match(text)
    if front:
        found = _FRONT_MATTER_TITLE.search(front.group(1))
        title = found.group(2).strip() if found and found.group(2).strip() else None
        text = text[front.end() :]
    deadline = time.monotonic() + time_limit_s
    tokens: list[Token] = []
    # Every piece knows every link reference label ("[text][label]" is a link wherever "[label]: url"
    # is defined); only the labels matter, since URLs are not kept.
    env: dict[str, Any] = {"references": {}}
    if len(text) > _MARKDOWN_CHUNK_CHARS:
        for found in _REFERENCE_DEFINITION.finditer(text):
            env["references"].setdefault(normalizeReference(found.group(1)), {"href": "", "title": ""})
    for piece in _markdown_pieces(text):
        if time.monotonic() > deadline:
            raise InputError(f"That Markdown took more than {time_limit_s:g} seconds to read, so I gave up.")
        try:
            tokens.extend(_MARKDOWN.parse(piece, env))
        except RecursionError as error:
            raise InputError("That Markdown is nested too deeply to read.") from error

    blocks: list[tuple[str, bool]] = []  # (text, inside a list item)
    list_depth = 0
    row: list[str] | None = None
    rows: list[str] = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        kind = token.type
        if kind == "list_item_open":
            list_depth += 1
        elif kind == "list_item_close":
            list_depth -= 1
        elif kind == "heading_open":
            words = _render_inline(tokens[position]) if position < len(tokens) else ""
            position += 1
            if title is None and token.tag == "h1" and words.strip():
                title = words.strip()
            elif not (title is not None and not blocks and words.strip() == _tidy_title(title)):
                blocks.append((words, list_depth > 0))  # (the front-matter title repeated is skipped)
        elif kind == "inline":
            if row is not None:
                row.append(_render_inline(token).strip())
            else:
                blocks.append((_render_inline(token), list_depth > 0))
        elif kind in {"fence", "code_block"}:
            blocks.append((token.content.rstrip("\n"), list_depth > 0))
        elif kind == "html_block":
            words = _ANY_TAG.sub("", _remove_html_comments(token.content)).strip()
            if words:
                blocks.append((unescape(words), list_depth > 0))
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            rows.append(" | ".join(row))
            row = None
        elif kind == "table_close":
            if rows:
                blocks.append(("\n".join(rows), False))
            rows = []
    parts: list[str] = []
    previous_in_list = False
    for words, in_list in blocks:
        if not words.strip():
            continue
        if parts:
            parts.append("\n" if in_list and previous_in_list else "\n\n")
        parts.append(words)
        previous_in_list = in_list
    return "".join(parts).strip("\n"), title


def _markdown_pieces(text: str) -> Iterator[str]:
    start = 0
    while len(text) - start > _MARKDOWN_CHUNK_CHARS:
        cut = _markdown_cut(text, start)
        yield text[start:cut]
        start = cut
    yield text[start:]


def _markdown_cut(text: str, start: int) -> int:
    """Where the piece from start ends: a blank line outside fenced code, else any line break."""
    limit = start + 2 * _MARKDOWN_CHUNK_CHARS
    fences = _FENCE.finditer(text, start, limit)
    inside = False  # whether the blank line being tried is inside fenced code
    fence = next(fences, None)
    blank = text.find("\n\n", start + _MARKDOWN_CHUNK_CHARS, limit)
    while blank != -1:
        while fence is not None and fence.start() < blank:
            inside = not inside
            fence = next(fences, None)
        if not inside:
            return blank + 2
        blank = text.find("\n\n", blank + 2, limit)
    newline = text.find("\n", limit)
    return len(text) if newline == -1 else newline + 1


def _render_inline(token: Token) -> str:
    """An inline token's text: emphasis and link markup dropped, link texts and code spans kept."""
    out: list[str] = []
    for child in token.children or ():
        if child.type in {"softbreak", "hardbreak"}:
            out.append("\n")
        elif child.type in {"text", "code_inline"} or (
            child.type not in _SKIPPED_INLINE and not child.nesting and child.content
        ):
            out.append(child.content)
    return "".join(out)


def _remove_html_comments(text: str) -> str:
    # str.find keeps this linear; a lazy regex rescans to the end for every unclosed "<!--".
    parts = []
    position = 0
    while (start := text.find("<!--", position)) != -1:
        parts.append(text[position:start])
        end = text.find("-->", start + 4)
        if end == -1:
            position = len(text)
            break
        position = end + 3
    parts.append(text[position:])
    return "".join(parts)


# --------------------------------------------------------------------------------------------- HTML

_TAG_WITH_ATTRIBUTES = re.compile(
    r"""<[A-Za-z][^\s/>]*+(?:[\s/]++[^\s/>=]++(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>]*+))?+)*+"""
)
_ATTRIBUTE = re.compile(r"""[\s/]++[^\s/>=]++(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>]*+))?+""")
_TITLE_TAG = re.compile(r"<title\b[^>]{0,500}>([^<]{1,1000})", re.IGNORECASE)
_H1_TAG = re.compile(r"<h1\b[^>]{0,500}>(.{1,2000}?)</h1\s*>", re.IGNORECASE | re.DOTALL)
_ANY_TAG = re.compile(r"<[^>]{0,2000}>")


def _extract_html(
    html: str, url: str | None, max_bytes: int, dropped: list[str]
) -> tuple[str, str | None, str | None, str | None]:
    """(text, title, the page's own URL, published date): paragraphs and headings one per block,
    tables as rows of cells joined by " | " (one row per line), furniture lines moved to dropped."""
    _refuse_attribute_bomb(html)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = trafilatura.bare_extraction(
                html,
                url=url,
                with_metadata=True,
                include_comments=False,
                include_tables=True,
                include_images=False,
                include_links=False,
                favor_precision=True,
                # The date the page states (meta tags, a <time>, a dateline); without extensive
                # search htmldate does not guess one from a copyright line or the URL.
                date_extraction_params={"extensive_search": False, "original_date": True},
            )
    except (RecursionError, MemoryError) as error:
        raise InputError("That HTML is nested too deeply or is too large to read.") from error
    except Exception as error:  # lxml and trafilatura raise many types on hostile markup
        log.info("trafilatura failed: %r", error)
        raise InputError("I couldn't read that HTML page.") from error

    text = getattr(result, "text", None) if result is not None else None
    title = getattr(result, "title", None) if result is not None else None
    found_url = getattr(result, "url", None) if result is not None else None
    if not text or not text.strip():
        raise InputError("I couldn't find any article text in that HTML page.")
    if len(text) > max_bytes:
        raise InputError("That page's text is too large.")
    title = title or _fallback_html_title(html)
    blocks = _html_blocks(text, dropped)
    if title and blocks and _tidy_title(blocks[0]).casefold() == _tidy_title(title).casefold():
        blocks = blocks[1:]
    if not blocks:
        raise InputError("I couldn't find any article text in that HTML page.")
    date = getattr(result, "date", None)
    published = date[:10] if isinstance(date, str) and _ISO_DATE.match(date) else None
    # A blank line between paragraphs matches the plain-text layout.
    return "\n\n".join(blocks), title, found_url if isinstance(found_url, str) else None, published


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:$|T)")
# trafilatura writes a table as Markdown-style rows, "| a | b | ", with a "|---|---|" rule after the head.
_TABLE_ROW = re.compile(r"^\|.*\|$")
_TABLE_RULE = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+$")


def _html_blocks(text: str, dropped: list[str]) -> list[str]:
    """trafilatura's one-line-per-paragraph text as blocks; a table's rows form one block."""
    blocks: list[str] = []
    in_table = False
    for raw_line in _clean_lines(text, furniture=False):
        if not raw_line:
            continue
        if _TABLE_ROW.match(raw_line):
            if _TABLE_RULE.match(raw_line):
                continue
            row = " | ".join(cell.strip() for cell in raw_line[1:-1].split("|"))
            if in_table:
                blocks[-1] += "\n" + row
            else:
                blocks.append(row)
            in_table = True
            continue
        in_table = False
        if _is_furniture(raw_line):
            dropped.append(raw_line)
            continue
        blocks.append(raw_line)
    return blocks


def _refuse_attribute_bomb(html: str) -> None:
    for tag in _TAG_WITH_ATTRIBUTES.finditer(html):
        span = tag.group()
        # Cheap pre-filter: a tag cannot hold many attributes in a few characters.
        if len(span) > 2 * MAX_HTML_ATTRIBUTES_PER_TAG and span.count("=") > MAX_HTML_ATTRIBUTES_PER_TAG:
            count = sum(1 for _ in _ATTRIBUTE.finditer(span))
            if count > MAX_HTML_ATTRIBUTES_PER_TAG:
                raise InputError(
                    f"That HTML has a tag with {count:,} attributes; I stop reading at "
                    f"{MAX_HTML_ATTRIBUTES_PER_TAG:,}."
                )


def _fallback_html_title(html: str) -> str | None:
    for pattern in (_TITLE_TAG, _H1_TAG):
        found = pattern.search(html)
        if found:
            title = _tidy_title(unescape(_ANY_TAG.sub(" ", found.group(1))))
            if title:
                return title
    return None


# ---------------------------------------------------------------------------------------------- PDF

_HYPHENATED = re.compile(r"[^\W\d_]-$")


def _extract_pdf(
    data: bytes, *, max_chars: int, time_limit_s: float
) -> tuple[str, str | None, tuple[int, ...]]:
    """(text, title, the offset in text where each page starts)."""
    deadline = time.monotonic() + time_limit_s
    # Page content is counted before pypdf parses it: parsing whitespace costs ~0.1 s per MB.
    content_budget = PDF_CONTENT_BYTES_PER_TEXT_BYTE * max_chars
    try:
        with warnings.catch_warnings(), _pdf_stream_limit(content_budget):
            warnings.simplefilter("ignore")
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                _decrypt_with_empty_password(reader)
            page_count = len(reader.pages)
            if page_count > MAX_PDF_PAGES:
                raise InputError(f"That PDF has {page_count:,} pages; I read at most {MAX_PDF_PAGES:,}.")
            pages: list[str] = []
            total = 0
            content = 0
            for page in reader.pages:
                streams = list(_page_content_streams(page))
                for stream in streams:
                    _check_pdf_deadline(deadline, time_limit_s)
                    content += _unpacked_size(stream)
                    if content > content_budget:
                        raise InputError(
                            f"That PDF unpacks to more than {_megabytes(content_budget)} of page content, "
                            "far more than its text could need, so I won't read it."
                        )
                _check_pdf_deadline(deadline, time_limit_s)
                page_text = page.extract_text() or ""
                _forget_decoded(streams)  # else pypdf keeps every page's unpacked content in memory
                total += len(page_text)
                if total > max_chars:
                    raise InputError("That PDF holds more text than I can store for one article.")
                pages.append(page_text)
            _check_pdf_deadline(deadline, time_limit_s)
            metadata_title = _pdf_metadata_title(reader)
    except InputError:
        raise
    except (RecursionError, MemoryError) as error:
        raise InputError("That PDF is malformed (its structure is nested too deeply).") from error
    except pypdf.errors.LimitReachedError as error:
        log.info("pypdf limit: %r", error)
        raise InputError("That PDF is too large or too complex to read safely.") from error
    except Exception as error:  # pypdf raises PdfReadError, ValueError, KeyError, ... on broken files
        log.info("pypdf failed: %r", error)
        raise InputError("That PDF is damaged or malformed, so I can't read it.") from error

    text, starts = _join_pdf_pages(pages)
    if not text.strip():
        raise InputError(
            "That PDF has no text I can extract (it may be scanned images); send a PDF with real text."
        )
    # Furniture is for web pages: a PDF's own lines are kept (its page numbers are gone already).
    first_end = text.find("\n")
    first = text if first_end == -1 else text[:first_end]
    title: str | None = None
    if first_end != -1 and len(first) <= MAX_TITLE_CHARS and not _SENTENCE_END.search(first):
        title = first  # a heading line: the title, unless the metadata names another one
    if metadata_title and (title is None or _tidy_title(title).casefold() != metadata_title.casefold()):
        return text, metadata_title, starts
    if title is None:
        return text, None, starts
    cut = first_end + 2  # the first paragraph and the blank line after it
    return text[cut:], metadata_title or title, tuple(max(0, start - cut) for start in starts)


def _check_pdf_deadline(deadline: float, time_limit_s: float) -> None:
    if time.monotonic() > deadline:
        raise InputError(f"That PDF took more than {time_limit_s:g} seconds to read, so I gave up.")


@contextlib.contextmanager
def _pdf_stream_limit(limit: int) -> Iterator[None]:
    """Let pypdf unpack no stream beyond limit bytes (its own cap is 75 MB), where pypdf supports it."""
    apply_configuration = getattr(pypdf, "apply_configuration", None)
    if apply_configuration is None:  # pypdf < 6.5: its 75 MB caps stand, and we count after each stream
        yield
        return
    # Fields that this pypdf has, so a renamed or new one never breaks reading.
    wanted = (
        "zlib_maximum_output_length",
        "lzw_maximum_output_length",
        "run_length_maximum_output_length",
        "brotli_maximum_output_length",
        "array_based_stream_maximum_output_length",
    )
    current = pypdf.get_configuration()
    overwrites = {name: min(getattr(current, name), limit + 1) for name in wanted if hasattr(current, name)}
    with apply_configuration(**overwrites):
        yield


def _page_content_streams(page: Any) -> Iterator[Any]:
    """The streams text extraction will unpack for page: its /Contents and its form XObjects."""
    seen: set[int] = set()

    def stream(value: Any) -> Any:
        value = value.get_object() if value is not None else None
        if isinstance(value, pypdf.generic.StreamObject) and id(value) not in seen:
            seen.add(id(value))
            return value
        return None

    contents = page.get("/Contents")
    contents = contents.get_object() if contents is not None else None
    for item in contents if isinstance(contents, pypdf.generic.ArrayObject) else [contents]:
        found = stream(item)
        if found is not None:
            yield found
    resources = [page.get("/Resources")]
    while resources:
        holder = resources.pop()
        holder = holder.get_object() if holder is not None else None
        if not isinstance(holder, pypdf.generic.DictionaryObject):
            continue
        xobjects = holder.get("/XObject")
        xobjects = xobjects.get_object() if xobjects is not None else None
        if not isinstance(xobjects, pypdf.generic.DictionaryObject):
            continue
        for value in xobjects.values():
            form = stream(value)
            if form is not None and form.get("/Subtype") == "/Form":
                yield form
                resources.append(form.get("/Resources"))


def _unpacked_size(stream: Any) -> int:
    try:
        return len(stream.get_data())
    except (pypdf.errors.LimitReachedError, RecursionError, MemoryError):
        raise
    except Exception as error:  # a broken stream: extract_text copes with it as it always has
        log.info("pypdf could not unpack a content stream: %r", error)
        return 0


def _forget_decoded(streams: list[Any]) -> None:
    for stream in streams:
        if isinstance(stream, pypdf.generic.EncodedStreamObject):
            stream.decoded_self = None


def _decrypt_with_empty_password(reader: Any) -> None:
    try:
        decrypted = reader.decrypt("")
    except Exception as error:  # pypdf raises DependencyError for AES without a crypto library
        raise InputError("That PDF is encrypted, so I can't read it; send an unprotected copy.") from error
    if not decrypted:
        raise InputError(
            "That PDF is encrypted with a password, so I can't read it; send an unprotected copy."
        )


def _pdf_metadata_title(reader: Any) -> str | None:
    metadata = reader.metadata
    raw = metadata.get("/Title") if metadata else None
    if not isinstance(raw, str):
        return None
    title = _tidy_title(raw)
    title = re.sub(r"^Microsoft (?:Word|PowerPoint) - ", "", title)
    if not title or title.lower() in {"untitled", "title", "document"}:
        return None
    return title


def _join_pdf_pages(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    """Undo PDF line wrapping: join soft breaks and hyphenation, keep paragraph breaks. Returns the
    text and the offset where each page's text starts (a page without text starts where the next
    text does)."""
    lines: list[tuple[int, str]] = []  # (page index, line); "" is a paragraph break
    for number, page in enumerate(pages):
        for raw_line in _LINE_BREAKS.sub("\n", page).split("\n"):
            line = unicodedata.normalize("NFC", raw_line).translate(_INVISIBLE)
            line = _SPACES.sub(" ", _CONTROL.sub("", line)).strip()
            if line and not re.fullmatch(r"(?:page )?\d{1,4}(?: of \d{1,4})?", line, re.I):
                lines.append((number, line))
        lines.append((number, ""))  # page boundary: a weak paragraph break, see below
    widths = sorted(len(line) for _, line in lines if line)
    typical = widths[len(widths) * 3 // 4] if widths else 0

    parts: list[str] = []
    length = 0
    starts: list[int | None] = [None] * len(pages)
    previous = ""  # the previous physical line, not the paragraph built so far
    pending_blank = False
    for number, line in lines:
        if not line:
            pending_blank = True
            continue
        starts_lower = line[0].islower()
        if not parts:
            separator = ""
        elif _HYPHENATED.search(previous) and starts_lower:
            parts[-1] = parts[-1][:-1]  # the hyphen goes; the word continues
            length -= 1
            separator = ""
        elif starts_lower or (
            # A short line without a full stop is a heading or the end of a paragraph, not a wrap.
            not pending_blank and not _SENTENCE_END.search(previous) and len(previous) >= 0.6 * typical
        ):
            separator = " "
        else:
            separator = "\n\n"
        length += len(separator)
        if starts[number] is None:
            starts[number] = length
        parts.append(separator + line if separator else line)
        length += len(line)
        previous = line
        pending_blank = False
    text = "".join(parts)
    # Pages without text start where the next page with text does (or at the end).
    following = len(text)
    for index in range(len(starts) - 1, -1, -1):
        if starts[index] is None:
            starts[index] = following
        following = starts[index] or 0
    if starts:
        starts[0] = 0
    return text, tuple(start or 0 for start in starts)


# -------------------------------------------------------------------------------------- JSON Lines


_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ID_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _extract_jsonl(raw: str, max_record_bytes: int) -> list[Document]:
    """One Document per record, its text kept exactly as written (a record is data someone
    prepared: quotes must be slices of it byte for byte), so ESC, bidirectional overrides or
    zero-width characters are stored as given; every output (terminal, Discord) neutralises them.
    What no engine can store is refused: a NUL (PostgreSQL cannot hold one; a .txt file with one is
    binary) and a lone surrogate (JSON "\\ud800") in any field. Ids may hold no control or
    invisible characters; urls must be http(s)."""
    documents: list[Document] = []
    first_line_of_id: dict[str, int] = {}
    # Split on "\n" only: str.splitlines would also split inside strings at U+2028 and friends.
    for number, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:
            reason = error.msg if isinstance(error, json.JSONDecodeError) else "it is nested too deeply"
            raise InputError(f"Line {number} is not valid JSON ({reason}).") from error
        if not isinstance(record, dict):
            raise InputError(f'Line {number} is not a JSON object like {{"id": ..., "text": ...}}.')
        source_id = _record_id(record.get("id"), number)
        where = f"Line {number}"
        named = f'{where} (id "{source_id}")' if source_id is not None else where
        text = record.get("text")
        if text is None:
            raise InputError(f'{where} has no "text" field.')
        if not isinstance(text, str):
            raise InputError(f'{where}: "text" must be a string.')
        _refuse_bad_characters(text, "text", where)
        size = len(text.encode("utf-8"))
        if size > max_record_bytes:
            raise InputError(
                f'{named}: "text" is {size:,} bytes, over the {max_record_bytes:,}-byte limit for one article.'
            )
        if not text.strip():
            raise InputError(f'{where}: "text" is empty.')
        if source_id is not None:
            if source_id in first_line_of_id:
                raise InputError(
                    f'Line {number} repeats the id "{source_id}" from line {first_line_of_id[source_id]}.'
                )
            first_line_of_id[source_id] = number
        title = record.get("title")
        if title is not None and not isinstance(title, str):
            raise InputError(f'{where}: "title" must be a string.')
        if title is not None:
            _refuse_bad_characters(title, "title", where, allow_nul=True)  # a title is cleaned anyway
        url = _record_url(record.get("url"), where)
        documents.append(
            Document(
                text=text,
                title=_tidy_title(title or "") or source_id or "Untitled",
                url=url,
                source_id=source_id,
                kind="jsonl",
            )
        )
    if not documents:
        raise InputError("That JSON Lines file has no records.")
    return documents


def _record_id(value: object, number: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f'Line {number}: "id" must be a string or a whole number.')
    source_id = str(value)
    _refuse_bad_characters(source_id, "id", f"Line {number}")
    if _ID_FORBIDDEN.search(source_id) or source_id.translate(_INVISIBLE) != source_id:
        raise InputError(f'Line {number}: "id" contains control or invisible characters.')
    return source_id


def _record_url(value: object, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f'{where}: "url" must be a string.')
    _refuse_bad_characters(value, "url", where)
    if (
        any(ord(char) < 33 or 127 <= ord(char) <= 160 for char in value)
        or value.translate(_INVISIBLE) != value
    ):
        raise InputError(f'{where}: "url" contains spaces, control or invisible characters.')
    try:
        parts = urlsplit(value)
    except ValueError as error:
        raise InputError(f'{where}: "url" is not a valid link.') from error
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        raise InputError(f'{where}: "url" must be an http:// or https:// link.')
    return value


def _refuse_bad_characters(value: str, field: str, where: str, *, allow_nul: bool = False) -> None:
    if _SURROGATE.search(value):
        raise InputError(
            f'{where}: "{field}" contains a lone UTF-16 surrogate (like \\ud800), which is not a character.'
        )
    if not allow_nul and "\x00" in value:
        raise InputError(f'{where}: "{field}" contains a NUL character (\\u0000).')
