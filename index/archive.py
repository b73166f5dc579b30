"""The archive format (`quotebot export` / `quotebot import`): a collection's articles as JSON Lines,
for backups and moves.

One line per article: `{"id", "title", "text", "url", "kind", "added_by", "created_at"}`; `id` is the
article's source id, or its database id when it has none. The text is the exact stored string (quotes
are slices of it), written as ASCII-escaped JSON so no terminal encoding or line separator can alter
it. Import adds the articles again through `Library.add_documents` (sentences re-split and re-embedded,
no URL is fetched), keeps the ids as source ids and the original `created_at`; importing the same
file twice changes nothing. A record that cannot be stored (malformed, or refused by the rules
every engine shares: no NUL, source ids up to 512 characters, added_by up to 64) is reported with
its line number and the others are imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from index.errors import InputError
from index.library import Library
from index.types import Document

PAGE = 200  # articles read (export) or added (import) per batch: bounded memory, one encoding pass each


def export_records(lib: Library, collection: str) -> Iterator[dict[str, Any]]:
    offset = 0
    while page := lib.articles(collection, offset=offset, limit=PAGE):
        offset += len(page)
        for info in page:
            _, text = lib.article_text(collection, info.id)
            yield {
                "id": info.source_id or str(info.id),
                "title": info.title,
                "text": text,
                "url": info.url,
                "kind": info.kind,
                "added_by": info.added_by,
                "created_at": info.created_at,
            }


def _check_record(rec: object) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise InputError("expected a JSON object.")
    for key in ("id", "title", "text"):
        if not isinstance(rec.get(key), str) or not rec[key].strip():
            raise InputError(f'"{key}" must be a non-empty string.')
    for key in ("url", "kind", "added_by", "created_at"):
        if rec.get(key) is not None and not isinstance(rec[key], str):
            raise InputError(f'"{key}" must be a string or null.')
    if rec.get("added_by") is not None and len(rec["added_by"]) > 64:
        raise InputError(f'"added_by" is {len(rec["added_by"])} characters long; at most 64 are stored.')
    if rec.get("created_at"):
        try:
            datetime.fromisoformat(rec["created_at"])
        except ValueError as e:
            raise InputError(f"created_at is not an ISO date: {rec['created_at']!r}.") from e
    return rec


def read_records(path: Path, errors: list[str] | None = None) -> list[dict[str, Any]]:
    """The records of an export file, each with its line number under "_line". A bad line raises
    InputError, or with `errors` is listed there ("FILE:LINE: why") and skipped."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror}") from e
    records = []
    # Split on "\n" only: str.splitlines would also cut at U+2028 and friends inside a text.
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            try:
                rec = _check_record(json.loads(line.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise InputError(f"not a JSON line ({e}).") from e
        except InputError as e:
            if errors is None:
                raise InputError(f"{path}:{n}: {e}") from e
            errors.append(f"{path}:{n}: {e}")
            continue
        rec["_line"] = n
        records.append(rec)
    return records


def import_records(
    lib: Library,
    collection: str,
    records: list[dict[str, Any]],
    errors: list[str] | None = None,
    where: str = "line",
) -> dict[str, int]:
    """Add the records; returns the count of each AddResult status ("added", "replaced", "unchanged").
    A record the library refuses raises InputError, or with `errors` is listed there and skipped."""
    counts = {"added": 0, "replaced": 0, "unchanged": 0}
    # add_documents takes one added_by per batch: batch consecutive records of the same author.
    batch: list[dict[str, Any]] = []
    for rec in [*records, None]:
        if batch and (rec is None or rec.get("added_by") != batch[0].get("added_by") or len(batch) >= PAGE):
            docs = [
                Document(
                    r["text"], r["title"], r.get("url"), r["id"], r.get("kind") or "text", created_at=_when(r)
                )
                for r in batch
            ]
            refused: list[tuple[int, str]] = []
            results = lib.add_documents(
                collection,
                docs,
                added_by=batch[0].get("added_by"),
                errors=None if errors is None else refused,
            )
            for i, why in refused:
                assert errors is not None
                errors.append(f"{where}:{batch[i].get('_line', '?')}: {why}")
            for res in results:
                counts[res.status] += 1
            batch = []
        if rec is not None:
            batch.append(rec)
    return counts


def _when(rec: dict[str, Any]) -> datetime | None:
    """The record's `created_at` when it is timezone-aware (a naive one: the import time is kept)."""
    if not rec.get("created_at"):
        return None
    when = datetime.fromisoformat(rec["created_at"])
    return when if when.tzinfo is not None else None
