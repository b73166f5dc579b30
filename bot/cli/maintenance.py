"""`quotebot reindex | stats | doctor | health`: keeping the database and the vector index in shape."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TextIO

from bot.cli.common import (
    EXIT_DOCTOR,
    EXIT_USER,
    LOCAL_COLLECTION,
    collection_of,
    flat,
    open_library,
    progress_bar,
)
from bot.config import Settings


def cmd_reindex(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = open_library(settings)
    colls = [collection_of(args)] if args.guild else (lib.collections() or [LOCAL_COLLECTION])
    for c in colls:
        with progress_bar(f"re-embedding {c}", sys.stderr.isatty() and args.reencode) as bar:
            shelf = lib.rebuild(c, reencode=args.reencode, progress=bar)
        print(f"reindexed {c}: {shelf.passages.count} passage vectors ({shelf.passages.kind})", file=out)
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = open_library(settings)
    st = dataclasses.asdict(lib.stats(collection_of(args)))
    if args.json:
        out.write(json.dumps(st, default=str) + "\n")
    else:
        for k, v in st.items():
            print(f"{k:>15}: {v}", file=out)
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = open_library(settings)
    problems = lib.doctor()
    if problems:
        for p in problems:
            print(f"problem: {flat(p)}", file=out)
        if any(p.startswith("the database file is damaged") for p in problems):
            print(
                "The database itself is damaged: reindexing cannot help. Restore a backup (a copy of "
                "the database file, or `quotebot import` of an export).",
                file=out,
            )
        else:
            print("Run `quotebot reindex` to rebuild the index from the database.", file=out)
        return EXIT_DOCTOR
    print(f"ok: database and index agree ({len(lib.collections())} collections)", file=out)
    return 0


def cmd_health(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.health import check

    ls = settings.library_settings()
    result = check(ls.db_url, Path(ls.data_dir), bot=args.bot)
    print(flat(result.line), file=out if result.ok else sys.stderr)
    return 0 if result.ok else EXIT_USER
