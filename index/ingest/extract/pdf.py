"""PDF: text read page by page with pypdf, within a page count, a budget of unpacked page content
and a deadline (so no decompression bomb or slow file holds a worker), then its line wrapping undone."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
import unicodedata
import warnings
from collections.abc import Iterator
from typing import Any

import pypdf

from index.errors import InputError
from index.ingest.extract.text import (
    _CONTROL,
    _INVISIBLE,
    _LINE_BREAKS,
    _SENTENCE_END,
    _SPACES,
    MAX_TITLE_CHARS,
    _megabytes,
    _tidy_title,
)

log = logging.getLogger(__package__)


MAX_PDF_PAGES = 2_000
# A PDF's page content (drawing instructions, decompressed) is a few times the text it yields (2.6x and
# 3.9x in two LaTeX manuals); more than this multiple of max_bytes across all pages is a decompression
# bomb: a 2.7 MB file of 40 pages x 70 MB of whitespace took 213 s and 3 GB before this limit.
PDF_CONTENT_BYTES_PER_TEXT_BYTE = 5


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
