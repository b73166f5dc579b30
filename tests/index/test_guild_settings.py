"""Per-server settings and the privacy deletions on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from index.storage import guild_settings as gs
from index.storage.models import Feedback, Question
from index.storage.store import Store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def ask(store: Store, collection: str, user: str, text: str, *, days_ago: float = 0) -> int:
    created = datetime.now(UTC) - timedelta(days=days_ago)
    return store.log_question(Question(collection=collection, user_id=user, text=text, created_at=created))


def questions(store: Store) -> set[tuple[str, str | None, str]]:
    with store.session() as s:
        return {(q.collection, q.user_id, q.text) for q in s.exec(select(Question)).all()}


def votes(store: Store) -> set[tuple[str, int, str]]:
    with store.session() as s:
        return {(f.collection, f.question_id, f.user_id) for f in s.exec(select(Feedback)).all()}


def test_settings_round_trip_and_reset(store: Store) -> None:
    assert gs.get_settings(store, "1") is None
    row = gs.update_settings(
        store,
        "1",
        {
            "threshold": 0.7,
            "may_threshold": 0.4,
            "moderator_role_ids": gs.encode_ids([820000000000000001, 820000000000000002]),
            "admin_role_ids": gs.encode_ids([]),
            "answer_channel_ids": gs.encode_ids([810000000000000001]),
            "auto_answer_channel_id": 810000000000000009,  # above 2**31: a BIGINT column
            "retention_days": 30,
            "private_answers": True,
        },
        updated_by="42",
    )
    assert row.updated_by == "42"
    got = gs.get_settings(store, "1")
    assert got is not None
    assert (got.threshold, got.may_threshold, got.retention_days, got.private_answers) == (0.7, 0.4, 30, True)
    assert gs.decode_ids(got.moderator_role_ids) == (820000000000000001, 820000000000000002)
    assert gs.decode_ids(got.admin_role_ids) == ()  # explicitly none, not the default
    assert gs.decode_ids(got.answer_channel_ids) == (810000000000000001,)
    assert got.auto_answer_channel_id == 810000000000000009
    # A partial update keeps the rest; None resets one setting to the default.
    gs.update_settings(store, "1", {"threshold": None, "retention_days": 7})
    got = gs.get_settings(store, "1")
    assert got is not None and got.threshold is None and got.may_threshold == 0.4 and got.retention_days == 7
    assert gs.get_settings(store, "2") is None
    assert [r.collection for r in gs.all_settings(store)] == ["1"]


def test_bad_settings_are_refused_and_change_nothing(store: Store) -> None:
    gs.update_settings(store, "1", {"retention_days": 30})
    for bad in ({"retention_days": 0}, {"retention_days": 100_000}, {"colour": "red"}):
        with pytest.raises(ValueError):
            gs.update_settings(store, "1", bad)
    got = gs.get_settings(store, "1")
    assert got is not None and got.retention_days == 30


def test_retention_purge_uses_each_servers_period(store: Store) -> None:
    ask(store, "A", "u1", "old in A", days_ago=40)
    keep_a = ask(store, "A", "u1", "recent in A", days_ago=10)
    old_b = ask(store, "B", "u2", "old in B", days_ago=40)
    ask(store, "B", "u2", "ancient in B", days_ago=100)
    ask(store, "C", "u3", "recent in C", days_ago=1)
    store.record_feedback("B", old_b, "voter", False)
    store.record_feedback("A", keep_a, "voter", True)
    gs.update_settings(store, "A", {"retention_days": 30})  # B and C use the default (90)
    d = gs.purge_expired_questions(store, 90)
    assert d == gs.Deleted(questions=2, feedback=0)
    assert questions(store) == {
        ("A", "u1", "recent in A"),
        ("B", "u2", "old in B"),
        ("C", "u3", "recent in C"),
    }
    # A shorter default removes B's 40-day-old question and its vote; A's own period still applies.
    d = gs.purge_expired_questions(store, 20)
    assert d == gs.Deleted(questions=1, feedback=1)
    assert questions(store) == {("A", "u1", "recent in A"), ("C", "u3", "recent in C")}
    assert votes(store) == {("A", keep_a, "voter")}


def test_guild_deletion_removes_only_that_servers_questions_and_votes(store: Store) -> None:
    qa = ask(store, "A", "u1", "in A")
    qb = ask(store, "B", "u1", "in B")
    store.record_feedback("A", qa, "u2", True)
    store.record_feedback("B", qb, "u2", True)
    gs.update_settings(store, "A", {"retention_days": 5})
    assert gs.delete_guild_data(store, "A") == gs.Deleted(questions=1, feedback=1)
    assert questions(store) == {("B", "u1", "in B")}
    assert votes(store) == {("B", qb, "u2")}
    assert gs.get_settings(store, "A") is not None  # settings are kept for a re-invite


def test_user_deletion_removes_their_questions_and_votes_in_one_server(store: Store) -> None:
    mine = ask(store, "A", "me", "my question")
    theirs = ask(store, "A", "other", "their question")
    elsewhere = ask(store, "B", "me", "my question elsewhere")
    store.record_feedback("A", mine, "other", True)  # a vote on my question goes with it
    store.record_feedback("A", theirs, "me", False)  # my vote on their question goes
    store.record_feedback("A", theirs, "third", True)
    store.record_feedback("B", elsewhere, "me", True)
    assert gs.delete_user_data(store, "A", "me") == gs.Deleted(questions=1, feedback=2)
    assert questions(store) == {("A", "other", "their question"), ("B", "me", "my question elsewhere")}
    assert votes(store) == {("A", theirs, "third"), ("B", elsewhere, "me")}
    assert gs.delete_user_data(store, "A", "me") == gs.Deleted(0, 0)


def test_question_outcome_can_be_corrected(store: Store) -> None:
    qid = ask(store, "A", "u", "q")
    gs.set_question_outcome(store, qid, answered=True, article_id=None, start=3, end=9)
    q = store.get_question("A", qid)
    assert q is not None and q.answered and (q.start, q.end) == (3, 9)
