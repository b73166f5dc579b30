"""`quotebot export` / `quotebot import`: a collection's articles as JSON Lines, for backups and moves.

One line per article: `{"id", "title", "text", "url", "kind", "added_by", "created_at"}`; `id` is the
article's source id, or its database id when it has none. The text is the exact stored string (quotes
are slices of it), written as ASCII-escaped JSON so no terminal encoding or line separator can alter
it. Import adds the articles again through `Library.add_documents` (sentences re-split and re-embedded,
no URL is fetched), keeps the ids as source ids and the original `created_at`; importing the same
file twice changes nothing.
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
from index.errors import InputError
from index.extract import Document
from index.library import Library, LibrarySettings
from index.store import Article

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


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record of an export file, checked before anything is added (a bad line adds nothing)."""
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
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{path}:{n}: not a JSON line ({e}).") from e
        if not isinstance(rec, dict):
            raise InputError(f"{path}:{n}: expected a JSON object.")
        for key in ("id", "title", "text"):
            if not isinstance(rec.get(key), str) or not rec[key].strip():
                raise InputError(f'{path}:{n}: "{key}" must be a non-empty string.')
        for key in ("url", "kind", "added_by", "created_at"):
            if rec.get(key) is not None and not isinstance(rec[key], str):
                raise InputError(f'{path}:{n}: "{key}" must be a string or null.')
        if rec.get("created_at"):
            try:
                datetime.fromisoformat(rec["created_at"])
            except ValueError as e:
                raise InputError(f"{path}:{n}: created_at is not an ISO date: {rec['created_at']!r}.") from e
        records.append(rec)
    return records


def import_records(lib: Library, collection: str, records: list[dict[str, Any]]) -> dict[str, int]:
    """Add the records; returns the count of each AddResult status ("added", "replaced", "unchanged")."""
    counts = {"added": 0, "replaced": 0, "unchanged": 0}
    # add_documents takes one added_by per batch: batch consecutive records of the same author.
    batch: list[dict[str, Any]] = []
    for rec in [*records, None]:
        if batch and (rec is None or rec.get("added_by") != batch[0].get("added_by") or len(batch) >= PAGE):
            docs = [
                Document(r["text"], r["title"], r.get("url"), r["id"], r.get("kind") or "text") for r in batch
            ]
            results = lib.add_documents(collection, docs, added_by=batch[0].get("added_by"))
            for r, res in zip(batch, results, strict=True):
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
    records = read_records(args.file)
    lib = _library(settings)
    try:
        counts = import_records(lib, collection, records)
    finally:
        lib.close()
    print(
        f"imported {len(records)} articles into {collection}: {counts['added']} added, "
        f"{counts['replaced']} replaced, {counts['unchanged']} unchanged",
        file=out,
    )
    return 0
