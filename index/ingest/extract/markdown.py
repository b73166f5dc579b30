"""Markdown: parsed with markdown-it (CommonMark, tables, strikethrough) and rendered as plain text,
in pieces so the time limit is checked while a large file is read."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html import unescape
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import normalizeReference
from markdown_it.token import Token

from index.errors import InputError
from index.ingest.extract.text import _ANY_TAG, _LINE_BREAKS, MAX_EXTRACT_SECONDS, _tidy_title

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
