"""Which format a file is in: from its media type, then its name, then its first bytes; and which
binary files are refused outright, named by their magic numbers."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import PurePosixPath

from index.errors import UnsupportedFormat

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


def _refuse_binary(data: bytes) -> None:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return  # UTF-16 is full of NUL bytes; _decode handles it
    for signature, description in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise UnsupportedFormat(f"That looks like {description}, not text; send {_SUPPORTED}.")
    if b"\x00" in data:
        raise UnsupportedFormat(f"That file is binary, not text; send {_SUPPORTED}.")
