"""Schema migrations on SQLite and PostgreSQL: a 0001 database keeps its rows, a pre-Alembic database is
stamped, a newer one is refused, and the migrations build exactly the SQLModel tables."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from index.embedding import FakeEmbedder
from index.errors import StoreError
from index.ingest.sentences import split_sentences
from index.library import Library
from index.settings import LibrarySettings
from index.storage import migrations
from index.storage.database import make_engine
from index.storage.store import Store, vector_bytes

TEXT = "Kites fly best in steady winds. A sailboat tacks against the wind. Rowing needs no wind at all."
SPANS = split_sentences(TEXT)


def at_revision(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrations.alembic_config(conn), revision)
    finally:
        engine.dispose()


def revisions(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return migrations.current_revisions(conn)
    finally:
        engine.dispose()


def insert_rows_plain_sql(url: str) -> None:
    """One article with its sentences and passage, a question with a vote, and meta: as 0001 stores them."""
    emb = FakeEmbedder()
    assert [TEXT[s:e] for s, e in SPANS][-1] == "Rowing needs no wind at all."
    vecs = emb.encode([TEXT[s:e] for s, e in SPANS])
    now = datetime.now(UTC)
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO article (id, collection, source_id, title, url, kind, text, content_hash,"
                    " n_sentences, n_chunks, added_by, created_at) VALUES (7, 'g', 'wind', 'Wind sports',"
                    " 'https://example.org/wind', 'text', :t, 'h', 3, 1, 'alice', :now)"
                ),
                {"t": TEXT, "now": now},
            )
            for i, ((s, e), v) in enumerate(zip(SPANS, vecs, strict=True)):
                c.execute(
                    text(
                        'INSERT INTO sentence (id, collection, article_id, ordinal, start, "end", vector)'
                        " VALUES (:id, 'g', 7, :o, :s, :e, :v)"
                    ),
                    {"id": 100 + i, "o": i, "s": s, "e": e, "v": vector_bytes(np.asarray(v))},
                )
            c.execute(
                text(
                    'INSERT INTO chunk (id, collection, article_id, first, last, start, "end")'
                    " VALUES (50, 'g', 7, 0, 2, 0, :end)"
                ),
                {"end": len(TEXT)},
            )
            c.execute(
                text(
                    "INSERT INTO question (id, collection, user_id, text, answered, created_at)"
                    " VALUES (3, 'g', 'bob', 'Why row?', false, :now)"
                ),
                {"now": now},
            )
            c.execute(
                text(
                    "INSERT INTO feedback (question_id, collection, user_id, helpful, created_at)"
                    " VALUES (3, 'g', 'carol', false, :now)"
                ),
                {"now": now},
            )
            c.execute(text("INSERT INTO meta (key, value) VALUES ('model', :m)"), {"m": emb.model_id})
    finally:
        engine.dispose()


def assert_rows_read_back(url: str, data_dir: Path) -> None:
    lib = Library(
        LibrarySettings(data_dir=data_dir, database_url=url, threshold=0.0), embedder=FakeEmbedder()
    )
    try:
        art = lib.find("g", "wind")
        assert (art.id, art.title, art.text, art.added_by) == (7, "Wind sports", TEXT, "alice")
        ans = lib.ask("g", "Rowing needs no wind at all?")  # the FAISS file is rebuilt from SQL
        assert ans.quote is not None and ans.quote.text == "Rowing needs no wind at all."
        assert lib.doctor() == []
        assert [(q.text, n) for q, n in lib.unanswered("g")] == [("Why row?", 1)]
        # New rows still get ids (autoincrement / SERIAL sequences work after the migration).
        added = lib.add_text("g", "Surfers wait for the biggest waves of the day.", title="Surf")
        assert added.status in ("added", "unchanged")
        assert {a.title for a in lib.articles("g")} == {"Wind sports", "Surf"}
    finally:
        lib.close()


def test_head_is_known_and_fresh_database_is_at_head(db_url: str) -> None:
    Store(db_url).close()
    assert revisions(db_url) == {migrations.head_revision()}


def test_database_created_by_0001_keeps_its_data(db_url: str, tmp_path: Path) -> None:
    at_revision(db_url, "0001")
    insert_rows_plain_sql(db_url)
    assert_rows_read_back(db_url, tmp_path / "data")
    assert revisions(db_url) == {migrations.head_revision()}
    # Opening again is a no-op.
    assert_rows_read_back(db_url, tmp_path / "data")


def test_database_from_before_alembic_is_stamped_and_kept(db_url: str, tmp_path: Path) -> None:
    # What quotebot had before migrations: revision 0001's tables, without alembic_version.
    at_revision(db_url, "0001")
    engine = make_engine(db_url)
    with engine.begin() as c:
        c.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    insert_rows_plain_sql(db_url)
    assert revisions(db_url) == set()
    assert_rows_read_back(db_url, tmp_path / "data")
    assert revisions(db_url) == {migrations.head_revision()}


def test_a_half_quotebot_database_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE article (id INTEGER PRIMARY KEY, title VARCHAR(10))"))
    engine.dispose()
    with pytest.raises(StoreError, match="not the schema quotebot expects"):
        Store(db_url)


def test_unrelated_tables_do_not_stop_a_fresh_install(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE someone_else (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    Store(db_url).close()
    assert revisions(db_url) == {migrations.head_revision()}


def test_a_newer_revision_is_refused(db_url: str) -> None:
    Store(db_url).close()
    engine = make_engine(db_url)
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"newer quotebot.*9999_from_the_future.*upgrade quotebot"):
        Store(db_url)


def test_migrations_build_exactly_the_sqlmodel_tables(db_url: str) -> None:
    Store(db_url).close()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(ctx, SQLModel.metadata)
            insp = inspect(conn)
            tables = set(insp.get_table_names()) - {"alembic_version"}
            assert tables == set(SQLModel.metadata.tables)
            for name, table in SQLModel.metadata.tables.items():
                assert [c["name"] for c in insp.get_columns(name)] == [c.name for c in table.columns]
                assert {i["name"] for i in insp.get_indexes(name)} >= {i.name for i in table.indexes}
    finally:
        engine.dispose()
    assert diffs == []


def test_downgrade_to_base_and_back(db_url: str) -> None:
    """0001's downgrade drops what it created (so a later revision can rely on a clean base)."""
    Store(db_url).close()
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            command.downgrade(migrations.alembic_config(conn), "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    Store(db_url).close()
    assert revisions(db_url) == {migrations.head_revision()}


def test_processes_starting_together_on_a_fresh_database(db_url: str) -> None:
    """A bot, a CLI and more shards may open a new database at the same moment: all of them succeed."""
    code = f"from index.storage.store import Store\nStore({db_url!r}).close()\n"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    assert revisions(db_url) == {migrations.head_revision()}
