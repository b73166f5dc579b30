"""Concurrency: questions during writes in the same process, and two processes on one data dir.

Policy under test (see index/search/shelves.py): writers of a collection serialise on a thread lock and an
advisory flock on `index/<collection>.lock`; every process reloads its shelf when another process
has replaced the collection's index file.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from index.embedding import FakeEmbedder
from index.errors import NotFound
from index.library import Library
from index.settings import LibrarySettings
from index.types import Document
from tests.conftest import REPO
from tests.reliability.crash_driver import COLLECTION, article_text, question, tag_of
from tests.reliability.test_crash import check_answerable, index_agrees_with_sql


def test_asks_during_adds_removes_and_rebuilds_never_quote_a_removed_article(tmp_path: Path) -> None:
    lib = Library(LibrarySettings(data_dir=tmp_path, threshold=0.0), embedder=FakeEmbedder())
    tags = [f"t{i}" for i in range(60)]
    for tag in tags[:30]:
        lib.add_documents(COLLECTION, [Document(article_text(tag, 5), f"Article {tag}", source_id=tag)])
    # By source id (each tag is added once): SQLite may give a new article a removed article's id.
    removed_at: dict[str, float] = {}  # tag -> when its article's remove() returned
    stop = threading.Event()
    failures: list[str] = []
    asked = [0]

    def writer() -> None:
        rng = random.Random(1)
        pending = tags[30:]
        try:
            for step in range(90):
                if step % 15 == 14:
                    lib.rebuild(COLLECTION)
                elif pending and step % 2 == 0:
                    tag = pending.pop()
                    lib.add_documents(
                        COLLECTION, [Document(article_text(tag, 5), f"Article {tag}", source_id=tag)]
                    )
                else:
                    live = [a.source_id or "" for a in lib.articles(COLLECTION)]
                    if len(live) > 5:
                        victim = rng.choice(live)
                        lib.remove(COLLECTION, victim)
                        removed_at[victim] = time.monotonic()
        except Exception as e:  # pragma: no cover - reported below
            failures.append(f"writer: {e!r}")
        finally:
            stop.set()

    def asker(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            tag = rng.choice(tags)
            started = time.monotonic()
            try:
                ans = lib.ask(COLLECTION, question(tag, rng.randrange(5)), alternatives=3)
            except Exception as e:  # pragma: no cover - reported below
                failures.append(f"ask: {e!r}")
                return
            asked[0] += 1
            for q in [ans.quote, ans.best, *ans.alternatives, *ans.related]:
                gone = removed_at.get(q.article.source_id or "") if q is not None else None
                if q is not None and gone is not None and gone < started:
                    failures.append(f"quoted {q.article}, removed before the question was asked")

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=asker, args=(i,)) for i in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:5]
    assert asked[0] > 50 and removed_at
    assert lib.doctor() == []
    for info in lib.articles(COLLECTION):
        check_answerable(lib, info.id)
    lib.close()


def test_two_processes_writing_one_data_dir_serialise_and_see_each_other(tmp_path: Path) -> None:
    """A second process adds, replaces, removes and rebuilds while this one adds, removes and asks:
    no write is lost, the index file agrees with SQL afterwards, and this process's open library
    answers from the other's articles without a restart."""
    lib = Library(LibrarySettings(data_dir=tmp_path, threshold=0.0), embedder=FakeEmbedder())
    lib.add_documents(COLLECTION, [Document(article_text("seed", 4), "Article seed", source_id="seed")])
    other = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.crash_driver", str(tmp_path), "7", "150"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    mine: list[int] = []
    rng = random.Random(2)
    for i in range(120):
        if other.poll() is not None and i > 20:
            break
        tag = f"mine{i}"
        [res] = lib.add_documents(
            COLLECTION, [Document(article_text(tag, 3), f"Article {tag}", source_id=tag)]
        )
        mine.append(res.article.id)
        if i % 4 == 3:
            victim = mine.pop(rng.randrange(len(mine)))
            with contextlib.suppress(NotFound):  # the other process removed it first
                lib.remove(COLLECTION, victim)
        lib.ask(COLLECTION, question(tag, 1))
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    assert "Traceback" not in err

    # No restart: the open library notices the other process's last write.
    assert index_agrees_with_sql(lib)  # the file as the two writers left it, before any repair
    in_sql = {a.id for a in lib.articles(COLLECTION)}
    theirs = [int(line.split()[1]) for line in out.splitlines() if line.startswith("DONE ")]
    last_theirs = [a for a in theirs if a in in_sql][-5:]
    assert last_theirs
    for article_id in last_theirs:
        check_answerable(lib, article_id)
    for article_id in [a for a in mine if a in in_sql][-5:]:
        check_answerable(lib, article_id)
    assert lib.doctor() == []
    lib.close()

    fresh = Library(LibrarySettings(data_dir=tmp_path, threshold=0.0), embedder=FakeEmbedder())
    try:
        assert fresh.doctor() == []
        for info in fresh.articles(COLLECTION):
            assert tag_of(info.title)
            check_answerable(fresh, info.id)
    finally:
        fresh.close()
