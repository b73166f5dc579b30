"""`quotebot export` / `quotebot import`: a collection's articles as JSON Lines, for backups and moves.

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

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.config import Settings
from bot.safe_text import visible
from index.errors import InputError
from index.library import Library, LibrarySettings
from index.storage.models import Article
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
                Document(r["text"], r["title"], r.get("url"), r["id"], r.get("kind") or "text") for r in batch
            ]
            refused: list[tuple[int, str]] = []
            results = lib.add_documents(
                collection,
                docs,
                added_by=batch[0].get("added_by"),
                errors=None if errors is None else refused,
            )
            bad = {i for i, _ in refused}
            for i, why in refused:
                assert errors is not None
                errors.append(f"{where}:{batch[i].get('_line', '?')}: {why}")
            for r, res in zip([r for i, r in enumerate(batch) if i not in bad], results, strict=True):
                counts[res.status] += 1
                if res.status != "unchanged" and r.get("created_at"):
                    _keep_created_at(lib, res.article.id, r["created_at"])
            batch = []
        if rec is not None:
            batch.append(rec)
    return counts


def _keep_created_at(lib: Library, article_id: int, created_at: str) -> None:
    when = datetime.fromisoformat(created_at)
    if when.tzinfo is None:
        return  # only timezone-aware dates are stored; keep the import time
    with lib.store.session() as s:
        art = s.get(Article, article_id)
        if art is not None:
            art.created_at = when
            s.add(art)
            s.commit()


def _library(settings: Settings) -> Library:
    ls: LibrarySettings = settings.library_settings()
    return Library(ls)


def cmd_export(args: argparse.Namespace, settings: Settings, out: TextIO, collection: str) -> int:
    lib = _library(settings)
    try:
        n = 0
        for rec in export_records(lib, collection):
            out.write(json.dumps(rec, ensure_ascii=True) + "\n")
            n += 1
        print(f"quotebot: exported {n} articles of collection {collection}", file=sys.stderr)
    finally:
        lib.close()
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings, out: TextIO, collection: str) -> int:
    errors: list[str] = []
    records = read_records(args.file, errors)
    lib = _library(settings)
    try:
        counts = import_records(lib, collection, records, errors, str(args.file))
    finally:
        lib.close()
    prefix = f"{args.file}:"

    def line_of(e: str) -> int:
        head = e[len(prefix) :].split(":", 1)[0] if e.startswith(prefix) else ""
        return int(head) if head.isdigit() else 0

    for e in sorted(errors, key=line_of):
        print(f"quotebot: {visible(e, multiline=False)}", file=sys.stderr)
    stored = sum(counts.values())
    print(
        f"imported {stored} articles into {collection}: {counts['added']} added, "
        f"{counts['replaced']} replaced, {counts['unchanged']} unchanged"
        + (f"; {len(errors)} records refused (listed above)" if errors else ""),
        file=out,
    )
    return 1 if errors else 0
