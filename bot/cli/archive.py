"""`quotebot export | import`: a collection's articles as JSON Lines (the format: index/archive.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from bot.cli.common import collection_of
from bot.config import Settings
from bot.safe_text import visible
from index import archive
from index.library import Library


def cmd_export(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    collection = collection_of(args)
    lib = Library(settings.library_settings())
    try:
        n = 0
        for rec in archive.export_records(lib, collection):
            out.write(json.dumps(rec, ensure_ascii=True) + "\n")
            n += 1
        print(f"quotebot: exported {n} articles of collection {collection}", file=sys.stderr)
    finally:
        lib.close()
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    collection = collection_of(args)
    errors: list[str] = []
    records = archive.read_records(args.file, errors)
    lib = Library(settings.library_settings())
    try:
        counts = archive.import_records(lib, collection, records, errors, str(args.file))
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
