"""The SQL store on SQLite and PostgreSQL (the `db_url` fixture of tests/conftest.py): schema, meta,
questions, feedback, the unanswered list."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlmodel import select

from index.embedding import FakeEmbedder
from index.errors import StoreError
from index.library import Library
from index.settings import LibrarySettings
from index.storage.models import SCHEMA_VERSION, Feedback, Meta, Question
from index.storage.store import Store
from tests.conftest import make_doc, sample_docs

TABLES = {"article", "sentence", "chunk", "question", "feedback", "meta"}


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def ask_logged(store: Store, collection: str, text: str, *, answered: bool, age_s: float = 0.0) -> int:
    return store.log_question(
        Question(
            collection=collection,
            text=text,
            answered=answered,
            user_id="u",
            created_at=datetime.now(UTC) - timedelta(seconds=age_s),
        )
    )


def test_schema_is_created_with_its_version(store: Store, db_url: str) -> None:
    assert set(inspect(store.engine).get_table_names()) >= TABLES
    with store.session() as s:
        row = s.get(Meta, "schema_version")
        assert row is not None and row.value == str(SCHEMA_VERSION)
    # Opening again is idempotent.
    again = Store(db_url)
    with again.session() as s:
        assert len(s.exec(select(Meta).where(Meta.key == "schema_version")).all()) == 1
    again.close()


def test_a_newer_schema_is_refused(store: Store, db_url: str) -> None:
    with store.session() as s:
        row = s.get(Meta, "schema_version")
        assert row is not None
        row.value = str(SCHEMA_VERSION + 1)
        s.add(row)
        s.commit()
    with pytest.raises(StoreError, match="newer"):
        Store(db_url)


def test_feedback_last_vote_wins(store: Store) -> None:
    qid = ask_logged(store, "g", "What is it?", answered=True)
    store.record_feedback("g", qid, "alice", helpful=True)
    store.record_feedback("g", qid, "alice", helpful=False)
    store.record_feedback("g", qid, "bob", helpful=True)
    with store.session() as s:
        votes = {
            f.user_id: f.helpful for f in s.exec(select(Feedback).where(Feedback.question_id == qid)).all()
        }
    assert votes == {"alice": False, "bob": True}
    assert [(q.id, n) for q, n in store.unanswered("g")] == [(qid, 1)]
    store.record_feedback("g", qid, "alice", helpful=True)
    assert store.unanswered("g") == []


def test_unanswered_lists_declined_and_unhelpful_questions(store: Store) -> None:
    declined_old = ask_logged(store, "g", "Old declined?", answered=False, age_s=30)
    answered_fine = ask_logged(store, "g", "Answered fine?", answered=True, age_s=20)
    answered_bad = ask_logged(store, "g", "Answered badly?", answered=True, age_s=10)
    declined_new = ask_logged(store, "g", "New declined?", answered=False, age_s=0)
    other = ask_logged(store, "other", "Elsewhere?", answered=False)
    store.record_feedback("g", answered_fine, "a", helpful=True)
    store.record_feedback("g", answered_bad, "a", helpful=False)
    store.record_feedback("g", answered_bad, "b", helpful=False)
    store.record_feedback("g", answered_bad, "c", helpful=True)

    listed = [(q.id, n) for q, n in store.unanswered("g")]
    assert listed == [(declined_new, 0), (answered_bad, 2), (declined_old, 0)]  # newest first
    assert [q.id for q, _ in store.unanswered("g", limit=1)] == [declined_new]
    assert [q.id for q, _ in store.unanswered("other")] == [other]
    assert store.get_question("g", other) is None
    assert store.get_question("other", other) is not None


def test_question_timestamps_order_ties_by_id(store: Store) -> None:
    when = datetime.now(UTC)
    ids = [store.log_question(Question(collection="g", text=f"q{i}", created_at=when)) for i in range(3)]
    assert [q.id for q, _ in store.unanswered("g")] == ids[::-1]


def test_library_round_trip_keeps_offsets(db_url: str, tmp_path: Path) -> None:
    """Offsets are character offsets on every backend (not bytes): quotes stay exact."""
    text = "Ünïcödé 😀 comes first. Jupiter is the largest planet in the Solar System. Ende."
    settings = LibrarySettings(data_dir=tmp_path / "data", database_url=db_url)
    lib = Library(settings, embedder=FakeEmbedder())
    try:
        lib.add_documents("g", [*sample_docs(), make_doc(text, "Ünïcödé", source_id="u")])
        assert lib.doctor() == []
        t0 = time.perf_counter()
        ans = lib.ask("g", "What is the largest planet in the Solar System?", alternatives=3)
        assert time.perf_counter() - t0 < 5
        for q in [ans.best, *ans.alternatives]:
            assert q is not None
            assert q.text == lib.article_text("g", q.article.id)[1][q.start : q.end]
    finally:
        lib.close()
    reopened = Library(settings, embedder=FakeEmbedder())
    try:
        assert reopened.find("g", "u").text == text
        ans = reopened.ask("g", "What comes first?", alternatives=3)
        for q in [ans.best, *ans.alternatives]:
            assert q is not None
            assert q.text == reopened.article_text("g", q.article.id)[1][q.start : q.end]
        assert reopened.doctor() == []
    finally:
        reopened.close()


def test_unusable_database_url_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store("nosuchdriver://x/y")
    with pytest.raises(StoreError):
        Store(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
