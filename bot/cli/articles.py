"""`quotebot ingest | refresh | list | remove`: a collection's articles from the command line.

Every item of an ingest is tried: the failures are printed on stderr (one line each) and the exit code
is non-zero when any failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from bot.cli.common import EXIT_USER, collection_of, error_line, flat, open_library, progress_bar
from bot.config import Settings
from bot.safe_text import json_line
from index.errors import InputError, QuotebotError

log = logging.getLogger("quotebot")


def cmd_ingest(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if not args.paths and not args.sitemap and not args.feed:
        raise InputError("Give files, folders or URLs to ingest (or --sitemap URL / --feed URL).")
    lib = open_library(settings)
    coll = collection_of(args)
    failures = 0
    items = [("path", p) for p in args.paths] + [("sitemap", u) for u in args.sitemap]
    items += [("feed", u) for u in args.feed]
    for how, item in items:
        try:
            bulk = None
            results: list[Any] = []
            tty = sys.stderr.isatty()
            if how in ("sitemap", "feed"):
                with progress_bar(f"{how} {item}", tty, unit="page") as bar:
                    add = lib.add_sitemap if how == "sitemap" else lib.add_feed
                    bulk = add(coll, item, progress=bar)
            elif item.lower().startswith(("http://", "https://")):
                results = [lib.add_url(coll, item)]
            elif "://" in item:
                raise InputError(f"Only http(s) URLs and local files can be ingested, not {item!r}.")
            elif Path(item).is_dir():
                with progress_bar(f"reading {Path(item).name or item}", tty, unit="file") as bar:
                    bulk = lib.add_folder(coll, Path(item), glob=args.glob, progress=bar)
            elif item.lower().endswith(".zip"):
                with progress_bar(f"reading {Path(item).name}", tty, unit="file") as bar:
                    data = lib.read_path(Path(item), None)
                    bulk = lib.add_zip(coll, data, Path(item).name, progress=bar)
            else:
                with progress_bar(f"embedding {Path(item).name}", tty) as bar:
                    results = lib.add_file(coll, Path(item), progress=bar)
        except QuotebotError as e:
            print(f"quotebot: {flat(item)}: {error_line(e)}", file=sys.stderr)
            failures += 1
            continue
        if bulk is not None:
            results = [r for _, r in bulk.added]
            for name, why in bulk.failed[:50]:
                print(f"quotebot: {flat(name)}: {flat(why)}", file=sys.stderr)
            if len(bulk.failed) > 50:
                print(f"quotebot: ... and {len(bulk.failed) - 50} more failures", file=sys.stderr)
            failures += len(bulk.failed)
        _print_added(results, item, out)
        if bulk is not None:
            c = bulk.counts()
            print(
                f"{flat(item)}: {c['added']} added, {c['replaced']} replaced, {c['unchanged']} unchanged, "
                f"{c['failed']} failed",
                file=out,
            )
    return EXIT_USER if failures else 0


def _print_added(results: list[Any], item: str, out: TextIO) -> None:
    added = [r for r in results if r.status != "unchanged"]
    same = len(results) - len(added)
    verbose = log.isEnabledFor(logging.INFO)
    for k, r in enumerate(added):
        a = r.article
        if k < 20:
            dropped = f", {len(r.dropped)} page-furniture lines dropped" if r.dropped else ""
            print(
                f"{r.status} [{a.id}] {flat(a.title)} ({a.n_sentences} sentences, {a.n_passages} passages"
                f"{dropped})",
                file=out,
            )
        if verbose:
            for line in r.dropped:
                print(f"  dropped: {flat(line)}", file=out)
    if len(added) > 20:
        print(f"... and {len(added) - 20} more", file=out)
    if same:
        print(f"{same} unchanged (already stored) from {flat(item)}", file=out)


def cmd_refresh(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = open_library(settings)
    coll = collection_of(args)
    with progress_bar("refreshing", sys.stderr.isatty(), unit="page") as bar:
        report = lib.refresh(coll, remove_gone=args.remove_gone, progress=bar)
    for a in report.changed:
        print(f"changed [{a.id}] {flat(a.title)} ({flat(a.url or '')})", file=out)
    for a, why in report.gone:
        verb = "removed" if args.remove_gone else "gone"
        print(f"{verb} [{a.id}] {flat(a.title)} ({flat(a.url or '')}): {flat(why)}", file=out)
    for a, why in report.failed:
        print(f"quotebot: [{a.id}] {flat(a.url or a.title)}: {flat(why)}", file=sys.stderr)
    print(
        f"refreshed {coll}: {len(report.unchanged)} unchanged, {len(report.changed)} changed, "
        f"{len(report.gone)} gone, {len(report.failed)} failed",
        file=out,
    )
    return EXIT_USER if report.failed else 0


def cmd_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = open_library(settings)
    arts = lib.articles(collection_of(args))
    if args.json:
        for a in arts:
            out.write(json_line(a.__dict__) + "\n")
        return 0
    if not arts:
        print("No articles yet.", file=out)
    for a in arts:
        src = flat(a.url or a.source_id or "")
        print(f"[{a.id}] {flat(a.title)}  ({a.n_sentences} sentences)  {src}".rstrip(), file=out)
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = open_library(settings)
    coll = collection_of(args)
    failures = 0
    for ref in args.ids:
        try:
            info = lib.remove(coll, ref)
            print(f"removed [{info.id}] {flat(info.title)}", file=out)
        except QuotebotError as e:
            print(f"quotebot: {error_line(e)}", file=sys.stderr)
            failures += 1
    return EXIT_USER if failures else 0
