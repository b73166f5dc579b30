"""Crash consistency: a writer SIGKILLed at random points never loses a completed add, and the
next start serves only articles that are in SQL from an index that agrees with SQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import LibrarySettings
from index.storage.vectors import VectorIndex
from index.types import Answer, Document
from tests.conftest import REPO
from tests.reliability.crash_driver import COLLECTION, article_text, open_library, question, tag_of

KILLS = 22


def cited(ans: Answer) -> set[int]:
    return {q.article.id for q in [ans.quote, ans.best, *ans.alternatives, *ans.related] if q is not None}


def index_agrees_with_sql(lib: Library) -> bool:
    """Read the index file as left by the dead writer, without loading (and repairing) it."""
    path = lib.settings.index_dir / f"{COLLECTION}.faiss"
    index = VectorIndex.load(path)
    if index is None:
        return False
    ids = index.ids() or []
    return sorted(ids) == sorted(r[0] for r in lib.store.passage_rows(COLLECTION))


def check_answerable(lib: Library, article_id: int) -> None:
    info, text = lib.article_text(COLLECTION, article_id)
    tag = tag_of(info.title)
    k = info.n_sentences // 2
    ans = lib.ask(COLLECTION, question(tag, k))
    assert ans.quote is not None, info
    assert ans.quote.article.id == article_id, (info, ans.quote)
    assert ans.quote.text == text[ans.quote.start : ans.quote.end]


@pytest.mark.slow
def test_random_sigkills_never_lose_completed_writes(tmp_path: Path) -> None:
    rng = random.Random(6)
    present: set[int] = set()
    stale = mid_write = 0
    outputs: list[str] = []
    for run in range(KILLS):
        errors = tmp_path / f"driver-{run}.err"
        with errors.open("w") as err_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.crash_driver", str(tmp_path), str(run)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=err_file,
                text=True,
            )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.strip() == "READY", (first, errors.read_text())
        try:
            proc.wait(timeout=rng.uniform(0.0, 0.6))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # Not communicate(): it reads the raw pipe and would drop what readline() buffered.
        out = proc.stdout.read()
        proc.stdout.close()
        outputs.append(out)
        assert proc.returncode == -signal.SIGKILL, errors.read_text()

        # What the dead writer promised: completed adds present, completed removes gone.
        pending: tuple[str, int | None] | None = None
        for line in out.splitlines():
            word, _, arg = line.partition(" ")
            if word == "BEGIN":
                op, _, ref = arg.partition(" ")
                pending = (op, int(ref) if ref else None)
            elif word == "DONE":
                if pending and pending[0] == "replace":
                    present.discard(pending[1])  # type: ignore[arg-type]
                present.add(int(arg))
                pending = None
            elif word == "REMOVED":
                present.discard(int(arg))
                pending = None
            elif word == "REBUILT":
                pending = None
        if pending is not None:
            mid_write += 1
            if pending[1] is not None:
                present.discard(pending[1])  # a remove or replace in flight may or may not have landed

        lib = Library(LibrarySettings(data_dir=tmp_path, threshold=0.0), embedder=FakeEmbedder())
        try:
            stale += not index_agrees_with_sql(lib)
            lib.shelf(COLLECTION)  # loading rebuilds a stale index
            assert lib.doctor() == []
            in_sql = {a.id for a in lib.articles(COLLECTION)}
            lost = present - in_sql
            assert not lost, f"run {run}: completed adds lost: {lost}\n" + "\n".join(
                f"run {r}: {line}"
                for r, o in enumerate(outputs)
                for line in o.splitlines()
                if any(line.endswith(f" {i}") for i in lost)
            )
            sample = sorted(present)
            sample = sample[-8:] + rng.sample(sample[:-8], min(8, len(sample[:-8])))
            for article_id in sample:
                check_answerable(lib, article_id)
            for q in ("Where did the meeting happen?", "Who met whom near what?", "the of near met"):
                assert cited(lib.ask(COLLECTION, q, alternatives=3)) <= in_sql
            present = in_sql
        finally:
            lib.close()
    print(f"\n{KILLS} kills: {mid_write} mid-write, {stale} left an index that disagreed with SQL")
    assert mid_write >= KILLS // 3  # the kills really landed inside writes


def test_crash_between_sql_and_index_after_a_same_size_replace_is_repaired(tmp_path: Path) -> None:
    """Replace an article by one with as many passages and "crash" before the index is saved: the
    index file then holds as many vectors as SQL has passages, but other ids. Loading must rebuild."""
    lib = open_library(tmp_path)
    [old] = lib.add_documents(COLLECTION, [Document(article_text("a", 6), "Article a", source_id="x")])
    [other] = lib.add_documents(COLLECTION, [Document(article_text("b", 5), "Article b", source_id="y")])
    saved = VectorIndex.save
    VectorIndex.save = lambda self, path, generation=None: None  # type: ignore[method-assign]
    try:
        [new] = lib.add_documents(COLLECTION, [Document(article_text("c", 6), "Article c", source_id="x")])
    finally:
        VectorIndex.save = saved  # type: ignore[method-assign]
    lib.close()
    assert new.status == "replaced"

    lib = open_library(tmp_path)
    try:
        path = lib.settings.index_dir / f"{COLLECTION}.faiss"
        stale = VectorIndex.load(path)
        assert stale is not None and stale.count == len(lib.store.passage_rows(COLLECTION))
        assert not index_agrees_with_sql(lib)
        shelf = lib.shelf(COLLECTION)
        assert lib.doctor() == []
        assert index_agrees_with_sql(lib)
        ids = np.sort(np.asarray(shelf.passages.ids()))
        assert ids.tolist() == sorted(r[0] for r in lib.store.passage_rows(COLLECTION))
        check_answerable(lib, new.article.id)
        check_answerable(lib, other.article.id)
        assert old.article.id not in {a.id for a in lib.articles(COLLECTION)}
    finally:
        lib.close()
