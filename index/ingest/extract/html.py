"""HTML: the article found by trafilatura (metadata, tables, no comments or links), its blocks
cleaned of page furniture; a tag with an attribute bomb is refused before libxml2 sees it."""

from __future__ import annotations

import codecs
import logging
import re
import warnings
from html import unescape

import trafilatura

from index.errors import InputError
from index.ingest.extract.text import _ANY_TAG, _clean_lines, _decode, _is_furniture, _tidy_title

# The package's logger ("index.ingest.extract"): trafilatura's records are relayed under that name.
log = logging.getLogger(__package__)


class _RelayToDebug(logging.Handler):
    """Re-log trafilatura's records at DEBUG under our logger: its warnings ("discarding data") are
    about its own heuristics, never something the user did, and must not reach stderr or the bot log."""

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("trafilatura %s: %s", record.levelname.lower(), record.getMessage())


_trafilatura_log = logging.getLogger("trafilatura")
_trafilatura_log.propagate = False
if not any(isinstance(handler, _RelayToDebug) for handler in _trafilatura_log.handlers):
    _trafilatura_log.addHandler(_RelayToDebug())


# libxml2 checks each new attribute against the element's others, so parsing is quadratic in the
# attribute count (100,000 attributes take minutes); no real page comes near this.
MAX_HTML_ATTRIBUTES_PER_TAG = 1_000


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


_TAG_WITH_ATTRIBUTES = re.compile(
    r"""<[A-Za-z][^\s/>]*+(?:[\s/]++[^\s/>=]++(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>]*+))?+)*+"""
)
_ATTRIBUTE = re.compile(r"""[\s/]++[^\s/>=]++(?:\s*+=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>]*+))?+""")
_TITLE_TAG = re.compile(r"<title\b[^>]{0,500}>([^<]{1,1000})", re.IGNORECASE)
_H1_TAG = re.compile(r"<h1\b[^>]{0,500}>(.{1,2000}?)</h1\s*>", re.IGNORECASE | re.DOTALL)


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
