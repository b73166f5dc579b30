"""One library operation in its own process, for the fault tests (fake embedder: fast, no model).

    python -m tests.reliability.fault_driver DATA_DIR COMMAND [ARGS...]

Commands (each prints one JSON line on success, or {"error": message} and exits 1 on a QuotebotError):
    add SOURCE TAG N [--go FILE] [--slow SECONDS] [--collection C]
        add an article of N sentences made of TAG's words under source id SOURCE; with --go, wait
        until FILE exists first (two processes start their writes together); --slow makes every
        encoding pass take that long (a real model's pace: the window where writers race)
    add-and-die SOURCE TAG N      add, but die (os._exit) when the index is about to be saved
    ask TAG K [--collection C]    ask about sentence K of TAG's article
    serve                         answer "ask TAG K" lines from stdin until EOF (a long-lived host)
    (every command: --db URL uses that database instead of DATA_DIR's SQLite file)
    list [--collection C] | remove REF | doctor | stats
    writer SEED POOL              add / replace / remove forever over source ids src0..src{POOL-1},
                                  printing BEGIN/DONE/GONE lines (the randomized fault run)
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from index.embedding import FakeEmbedder
from index.errors import NotFound, QuotebotError
from index.library import Library
from index.settings import LibrarySettings
from index.storage.vectors import VectorIndex
from index.types import Document
from tests.reliability.crash_driver import article_text, question, tag_of


class SlowEmbedder(FakeEmbedder):
    """The fake embedder at a real model's pace: every encoding pass takes `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        time.sleep(self.delay)
        return super().encode(texts, batch_size=batch_size)


def open_library(data_dir: Path, slow: float = 0.0, database_url: str | None = None) -> Library:
    embedder = SlowEmbedder(slow) if slow else FakeEmbedder()
    settings = LibrarySettings(data_dir=data_dir, threshold=0.0, database_url=database_url)
    return Library(settings, embedder=embedder)


def serve(lib: Library, collection: str) -> None:
    """One long-lived process answering "ask TAG K" lines from stdin (a second host's bot)."""
    say({"ready": True})
    for line in sys.stdin:
        tag, k = line.split()[1:3]
        ans = lib.ask(collection, question(tag, int(k)))
        q = ans.quote
        say({"quote": q.text if q else None, "title": q.article.title if q else None})


def say(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _opt(args: list[str], name: str, default: str | None = None) -> str | None:
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i : i + 2]
        return value
    return default


def writer(lib: Library, collection: str, seed: int, pool: int) -> None:
    """Writes forever over source ids src0..src{pool-1}; each line carries CLOCK_MONOTONIC (the same
    clock in every process) and is flushed before the next write starts:

        BEGIN <t> add|remove <tag> <source>     before the write (before its lock is taken)
        DONE <t> <tag> <source> <status>        after an add or replace committed
        GONE <t> <tag> <source>                 after a remove committed
        NOOP <t>                                the article to remove was already gone
        FAILED <t> <message>                    a QuotebotError (disk full): maybe committed
    """
    rng = random.Random(seed)

    def line(*parts: object) -> None:
        sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
        sys.stdout.flush()

    n = 0
    while True:
        n += 1
        tag = f"w{seed}n{n}"
        try:
            if rng.random() < 0.2:
                arts = lib.articles(collection)
                if not arts:
                    continue
                victim = rng.choice(arts)
                line("BEGIN", time.monotonic_ns(), "remove", tag_of(victim.title), victim.source_id)
                try:
                    lib.remove(collection, victim.source_id or victim.id)
                except NotFound:
                    line("NOOP", time.monotonic_ns())  # the other writer removed or replaced it first
                    continue
                line("GONE", time.monotonic_ns(), tag_of(victim.title), victim.source_id)
            else:
                source = f"src{rng.randrange(pool)}"
                text = article_text(tag, rng.randint(2, 7))
                line("BEGIN", time.monotonic_ns(), "add", tag, source)
                [res] = lib.add_documents(collection, [Document(text, f"Article {tag}", source_id=source)])
                line("DONE", time.monotonic_ns(), tag, source, res.status)
        except QuotebotError as e:
            line("FAILED", time.monotonic_ns(), " ".join(str(e).split()))
            time.sleep(0.05)


def main() -> int:
    data_dir, command, *args = sys.argv[1:]
    collection = _opt(args, "--collection", "local") or "local"
    go = _opt(args, "--go")
    slow = float(_opt(args, "--slow", "0") or 0)
    database_url = _opt(args, "--db")
    try:
        lib = open_library(Path(data_dir), slow, database_url)
    except QuotebotError as e:
        say({"error": str(e)})
        return 1
    try:
        if command in ("add", "add-and-die"):
            source, tag, n = args[0], args[1], int(args[2])
            if command == "add-and-die":

                def die(self: VectorIndex, path: Path, generation: int | None = None) -> None:
                    os._exit(9)

                VectorIndex.save = die  # type: ignore[method-assign]
            if go:
                while not Path(go).exists():
                    time.sleep(0.005)
            [res] = lib.add_documents(
                collection, [Document(article_text(tag, n), f"Article {tag}", source_id=source)]
            )
            say({"status": res.status, "id": res.article.id, "source_id": res.article.source_id})
        elif command == "ask":
            tag, k = args[0], int(args[1])
            ans = lib.ask(collection, question(tag, k))
            q = ans.quote
            say({"quote": q.text if q else None, "title": q.article.title if q else None})
        elif command == "list":
            say([{"id": a.id, "source_id": a.source_id, "title": a.title} for a in lib.articles(collection)])
        elif command == "remove":
            info = lib.remove(collection, args[0])
            say({"removed": info.id, "source_id": info.source_id})
        elif command == "doctor":
            say({"problems": lib.doctor()})
        elif command == "stats":
            say({k: str(v) for k, v in dataclasses.asdict(lib.stats(collection)).items()})
        elif command == "serve":
            serve(lib, collection)
        elif command == "writer":
            writer(lib, collection, int(args[0]), int(args[1]))
        else:
            raise SystemExit(f"unknown command {command}")
    except QuotebotError as e:
        say({"error": str(e)})
        return 1
    finally:
        lib.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
