"""Faults found from outside (issue 16, items 1-5 and 10), each reproduced with real processes on one
data directory: concurrent writers, a long write beside readers, a full disk (a real tmpfs), a
crash that leaves an index of the same shape, source ids that look like database ids, and
records PostgreSQL would refuse."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from index.embedding import FakeEmbedder
from index.errors import InputError
from index.library import Library
from index.search.shelf import passage_vectors
from index.settings import LibrarySettings
from index.types import Document
from index.writing import INSERT_ARTICLES
from tests.conftest import REPO, fake_model_cli
from tests.reliability.crash_driver import article_text, question

C = "local"


def driver(data: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.fault_driver", str(data), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_driver(data: Path, *args: str, timeout: float = 60) -> tuple[int, dict | list, str]:
    proc = driver(data, *args)
    out, err = proc.communicate(timeout=timeout)
    lines = out.strip().splitlines()
    return proc.returncode, (json.loads(lines[-1]) if lines else {}), err


def open_lib(data: Path) -> Library:
    return Library(LibrarySettings(data_dir=data, threshold=0.0), embedder=FakeEmbedder())


# -- 1. concurrent writers of one source id -------------------------------------------------------


def _race(data: Path, a: tuple[str, ...], b: tuple[str, ...]) -> list[tuple[int, dict | list, str]]:
    go = data / "go"
    procs = [driver(data, *args, "--go", str(go), "--slow", "0.5") for args in (a, b)]
    time.sleep(2.0)  # both are open and waiting
    go.touch()
    out = []
    for p in procs:
        o, e = p.communicate(timeout=60)
        lines = o.strip().splitlines()
        out.append((p.returncode, json.loads(lines[-1]) if lines else {}, e))
    return out


def test_two_processes_adding_one_new_source_id_leave_one_article(tmp_path: Path) -> None:
    open_lib(tmp_path).close()  # the schema exists before the race
    results = _race(tmp_path, ("add", "news-1", "alpha", "4"), ("add", "news-1", "beta", "5"))
    assert all(code == 0 for code, _, _ in results), results
    statuses = sorted(r["status"] for _, r, _ in results)  # type: ignore[call-overload]
    assert statuses == ["added", "replaced"], results
    lib = open_lib(tmp_path)
    try:
        arts = lib.articles(C)
        assert [a.source_id for a in arts] == ["news-1"]
        # The one kept is the second writer's, and the first one's text is never quoted.
        kept = arts[0].title.split()[1]
        gone = "beta" if kept == "alpha" else "alpha"
        ans = lib.ask(C, question(gone, 1))
        assert ans.quote is None or gone not in ans.quote.text
        ans = lib.ask(C, question(kept, 1))
        assert ans.quote is not None and kept in ans.quote.text
    finally:
        lib.close()


def test_two_processes_adding_the_same_file_report_added_and_unchanged(tmp_path: Path) -> None:
    open_lib(tmp_path).close()
    results = _race(tmp_path, ("add", "same", "gamma", "4"), ("add", "same", "gamma", "4"))
    assert all(code == 0 for code, _, _ in results), results
    assert "IntegrityError" not in "".join(err for _, _, err in results)
    assert sorted(r["status"] for _, r, _ in results) == ["added", "unchanged"]  # type: ignore[call-overload]
    lib = open_lib(tmp_path)
    try:
        assert len(lib.articles(C)) == 1
    finally:
        lib.close()


# -- 2. a long write beside readers ----------------------------------------------------------------


def test_other_commands_run_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """A long write transaction (as a big ingest's used to be) must not stop other processes from
    starting, listing and answering: readers never wait on a writer."""
    lib = open_lib(tmp_path)
    lib.add_documents("222", [Document(article_text("other", 4), "Article other", source_id="o")])
    lib.close()
    db = sqlite3.connect(tmp_path / "quotebot.db", timeout=1)
    db.execute("BEGIN IMMEDIATE")  # holds SQLite's write lock until rollback
    db.execute("INSERT INTO meta(key, value) VALUES ('held', 'yes')")
    try:
        t0 = time.monotonic()
        code, listed, err = run_driver(tmp_path, "list", "--collection", "222")
        assert code == 0, err
        assert [a["source_id"] for a in listed] == ["o"]  # type: ignore[index]
        code, ans, err = run_driver(tmp_path, "ask", "other", "2", "--collection", "222")
        assert code == 0, err
        assert "other" in ans["quote"]  # type: ignore[index,call-overload]
        assert time.monotonic() - t0 < 20, "readers waited for the writer"
    finally:
        db.rollback()
        db.close()


def test_a_big_ingest_writes_in_bounded_transactions(tmp_path: Path) -> None:
    lib = open_lib(tmp_path)
    commits = 0

    def count(_conn: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(lib.store.engine, "commit", count)
    try:
        docs = [
            Document(f"Record {i} says the {i}th tiny fact here.", f"r{i}", source_id=f"r{i}")
            for i in range(1_600)
        ]
        seen = []
        results = lib.add_documents(C, docs, progress=lambda d, t: seen.append((d, t)))
        assert [r.status for r in results] == ["added"] * 1_600
        assert commits >= -(-1_600 // INSERT_ARTICLES), commits
        assert len({d for d, _ in seen}) >= 3 and seen[-1] == (1_600, 1_600)  # progress moves
        assert lib.count(C) == 1_600
        ans = lib.ask(C, "What does record 1234 say?")
        assert ans.quote is not None and "1234" in ans.quote.text
    finally:
        lib.close()


# -- 3. disk full -----------------------------------------------------------------------------------


@pytest.fixture
def full_index_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose index/ is a 2 MiB tmpfs (root only), filled up on demand by `fill`."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    index = tmp_path / "data" / "index"
    index.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(index)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield tmp_path / "data"
    finally:
        subprocess.run(["umount", "-l", str(index)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    for k in range(64):  # the last bytes of the last block
        try:
            (directory / f"filler-{k}").write_bytes(b"\0" * 512)
        except OSError:
            break
    return filler


def test_a_full_index_disk_keeps_the_collection_usable(full_index_dir: Path) -> None:
    data = full_index_dir
    code, _first, err = run_driver(data, "add", "a", "first", "5")
    assert code == 0, err
    fill(data / "index")
    # The article is stored in SQL; the index cannot be saved: warned, not failed.
    code, second, err = run_driver(data, "add", "b", "second", "4")
    assert code == 0, err
    assert second["status"] == "added"  # type: ignore[index,call-overload]
    assert "disk is full" in err and "Traceback" not in err
    # Another process answers (its shelf is rebuilt in memory: the file is a generation behind).
    for tag in ("first", "second"):
        code, ans, err = run_driver(data, "ask", tag, "1")
        assert code == 0, err
        assert ans["quote"] is not None and tag in ans["quote"], ans  # type: ignore[index,call-overload]
    code, st, err = run_driver(data, "stats")
    assert code == 0 and st["articles"] == "2", (st, err)  # type: ignore[index,call-overload]
    code, doc, err = run_driver(data, "doctor")
    assert code == 0 and any("generation" in p for p in doc["problems"]), doc  # type: ignore[index,call-overload]
    # Removing still works (to free space), and the removed article is never quoted.
    code, _rm, err = run_driver(data, "remove", "a")
    assert code == 0, err
    code, ans, err = run_driver(data, "ask", "first", "1")
    assert code == 0 and (ans["quote"] is None or "first" not in ans["quote"])  # type: ignore[index,call-overload]
    # Space again: the next write saves an index that agrees with SQL.
    for f in (data / "index").glob("filler*"):
        f.unlink()
    code, _third, err = run_driver(data, "add", "c", "third", "3")
    assert code == 0, err
    code, doc, err = run_driver(data, "doctor")
    assert code == 0 and doc == {"problems": []}, doc
    assert not list((data / "index").glob(".*.tmp"))


def test_the_database_on_a_full_disk_refuses_in_plain_words(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    data = tmp_path / "data"
    data.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(data)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        code, _first, err = run_driver(data, "add", "a", "first", "5")
        assert code == 0, err
        filler = fill(data)
        code, out, err = run_driver(data, "add", "b", "second", "2000")
        assert code == 1 and "disk is full" in out["error"], (out, err)  # type: ignore[index,call-overload]
        assert "Traceback" not in err
        filler.unlink()
        for f in data.glob("filler-*"):
            f.unlink()
        code, ans, err = run_driver(data, "ask", "first", "2")
        assert code == 0 and "first" in ans["quote"], (ans, err)  # type: ignore[index,call-overload]
        code, listed, err = run_driver(data, "list")
        assert [a["source_id"] for a in listed] == ["a"]  # type: ignore[index]
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


# -- 4. a stale index of the same shape -----------------------------------------------------------


def test_a_crash_after_replacing_the_last_article_never_serves_its_old_vectors(tmp_path: Path) -> None:
    """SQLite reuses the row ids of the last article: replacing it by a text of as many passages and
    dying before the index save leaves an index with SQL's ids and count but the old vectors."""
    code, _, err = run_driver(tmp_path, "add", "first", "one", "5")
    assert code == 0, err
    code, old, err = run_driver(tmp_path, "add", "last", "two", "6")
    assert code == 0, err
    proc = driver(tmp_path, "add-and-die", "last", "three", "6")
    proc.communicate(timeout=60)
    assert proc.returncode == 9
    lib = open_lib(tmp_path)
    try:
        [new] = [a for a in lib.articles(C) if a.source_id == "last"]
        assert new.id == old["id"]  # type: ignore[index,call-overload]  # the id was reused
        problems = lib.doctor()
        assert any("generation" in p for p in problems), problems
        shelf = lib.shelf(C)  # loads: the stale file is rebuilt from SQL
        rows, passage_rows = lib.shelves.read_rows(C)
        ids, want = passage_vectors(rows, passage_rows, lib.embedder.dim)
        got = np.stack([shelf.passages.faiss.reconstruct(int(i)) for i in ids])
        assert np.allclose(got, want, atol=1e-5)
        assert lib.doctor() == []
        ans = lib.ask(C, question("three", 3))
        assert ans.quote is not None and "three" in ans.quote.text
    finally:
        lib.close()


# -- 5. source ids that look like database ids ------------------------------------------------------


def test_remove_and_show_take_a_source_id_before_a_database_id(tmp_path: Path) -> None:
    lib = open_lib(tmp_path)
    try:
        a, b = lib.add_documents(
            C,
            [
                Document(article_text("aa", 3), "Article aa", source_id="7"),
                Document(article_text("bb", 3), "Article bb", source_id="1"),
            ],
        )
        assert a.article.id == 1 and b.article.id == 2
        info, _ = lib.article_text(C, "1")
        assert info.source_id == "1" and info.id == 2
        assert lib.remove(C, "1").id == 2
        assert [x.source_id for x in lib.articles(C)] == ["7"]
        # "#1" (or an int) is always the database id.
        assert lib.remove(C, "#1").source_id == "7"
        assert lib.count(C) == 0
    finally:
        lib.close()


# -- 10. the same rules on every engine --------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "added_by", "message"),
    [
        (Document("Text with a NUL \x00 in it.", "nul", source_id="n"), None, "NUL"),
        (Document("A fine sentence here.", "long id", source_id="x" * 600), None, "at most 512"),
        (Document("A fine sentence here.", "author", source_id="au"), "u" * 70, "at most 64"),
        (Document("Lone \ud800 surrogate here.", "sur", source_id="s"), None, "surrogate"),
    ],
)
def test_records_postgresql_would_refuse_are_refused_on_every_engine(
    db_url: str, tmp_path: Path, doc: Document, added_by: str | None, message: str
) -> None:
    lib = Library(
        LibrarySettings(data_dir=tmp_path, database_url=db_url, threshold=0.0), embedder=FakeEmbedder()
    )
    try:
        before = lib.store.counts(C)
        with pytest.raises(InputError, match=message):
            lib.add_documents(C, [doc], added_by=added_by)
        assert lib.store.counts(C) == before
    finally:
        lib.close()


def test_an_import_reports_bad_records_and_imports_the_rest(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite export holding what PostgreSQL refuses: each bad record is named, the rest imported."""
    records = [
        {"id": "ok-1", "title": "One", "text": article_text("okone", 3)},
        {"id": "bad-nul", "title": "Nul", "text": "A NUL \u0000 here."},
        {"id": "x" * 600, "title": "Long", "text": article_text("longid", 2)},
        {"id": "ok-2", "title": "Two", "text": article_text("oktwo", 3), "added_by": "u" * 80},
        {"id": "ok-3", "title": "Three", "text": article_text("okthree", 3)},
    ]
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    run = fake_model_cli(tmp_path, monkeypatch, capsys)
    monkeypatch.setenv("QUOTEBOT_DATABASE_URL", db_url)
    code, out, err = run(tmp_path / "d", "import", str(path))
    assert code == 1, (out, err)  # some records were refused
    assert "2 added" in out and "3 records refused" in out, out
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert ":2:" in lines[0] and "NUL" in lines[0]
    assert ":3:" in lines[1] and "512" in lines[1]
    assert ":4:" in lines[2] and "64" in lines[2]
    lib = Library(LibrarySettings(data_dir=tmp_path / "d", database_url=db_url), embedder=FakeEmbedder())
    try:
        assert sorted(a.source_id or "" for a in lib.articles(C)) == ["ok-1", "ok-3"]
    finally:
        lib.close()


def test_writes_never_wait_for_a_reader_thread(tmp_path: Path) -> None:
    """Questions asked during a write are answered from the shelf in place (no blocking)."""
    lib = Library(
        LibrarySettings(data_dir=tmp_path, threshold=0.0),
        embedder=__import__("tests.reliability.fault_driver", fromlist=["SlowEmbedder"]).SlowEmbedder(0.0),
    )
    try:
        lib.add_documents(C, [Document(article_text("base", 4), "Article base", source_id="base")])
        lib.embedder.delay = 1.5  # type: ignore[attr-defined]
        writing = threading.Thread(
            target=lib.add_documents, args=(C, [Document(article_text("more", 4), "Article more")])
        )
        writing.start()
        time.sleep(0.2)
        lib.embedder.delay = 0.0  # type: ignore[attr-defined]
        t0 = time.monotonic()
        ans = lib.ask(C, question("base", 1))
        assert time.monotonic() - t0 < 1.0
        assert ans.quote is not None and "base" in ans.quote.text
        writing.join()
    finally:
        lib.close()


# -- 6 (part). a garbled database file ----------------------------------------------------------------


def test_a_garbled_database_gives_one_line_everywhere_and_doctor_says_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = fake_model_cli(tmp_path, monkeypatch, capsys)
    data = tmp_path / "d"
    lib = Library(LibrarySettings(data_dir=data, model="fake-hash-64"), embedder=FakeEmbedder())
    lib.add_documents(C, [Document("Zebras graze on the open plains at dawn.", "Zebras", source_id="z")])
    lib.close()
    db = data / "quotebot.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    raw = db.read_bytes()
    at = raw.index(b"Zebras graze")
    db.write_bytes(raw[:at] + b"\xff\xfe\xfd" + raw[at + 3 :])  # invalid UTF-8 inside the text
    for argv in (["list"], ["stats"], ["ask", "What do zebras graze on?"], ["remove", "z"], ["export"]):
        code, out, err = run(data, *argv)
        assert code == 1, (argv, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "damaged" in lines[0] and "Traceback" not in err, (argv, err)
    code, out, _ = run(data, "doctor")
    assert code == 3 and "damaged" in out and "quotebot reindex" not in out, out


def test_temporaries_a_crash_left_are_removed_on_start(tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    index_dir.mkdir(parents=True)
    old, fresh = index_dir / ".local.faiss.abc123.tmp", index_dir / ".local.faiss.def456.tmp"
    for f in (old, fresh):
        f.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    open_lib(tmp_path).close()
    assert not old.exists()
    assert fresh.exists()  # it may be another process's save in progress
