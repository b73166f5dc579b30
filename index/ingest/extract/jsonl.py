"""JSON Lines: one Document per record, its text kept exactly as written; what no engine can store
(NUL, lone surrogates) and ids or urls that could disguise or misdirect are refused, naming the line."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from index.errors import InputError
from index.ingest.extract.text import _INVISIBLE, _tidy_title
from index.types import Document

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
