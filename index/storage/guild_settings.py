"""Per-server settings (what `/config` changes) and the privacy deletions, on the SQL store.

One `GuildSettings` row per collection (a guild's collection is str(guild_id)). Every column is
nullable: NULL means "not set in this server", and the bot falls back to config.toml. Role and
channel lists are stored as space-separated decimal ids; an empty string is an explicit empty list
(e.g. "no moderator role"), NULL is "use the default".

Privacy: questions (with their asker's user id) and feedback are kept for the retention period only
(`purge_expired_questions`), a server's are deleted when the bot leaves it (`delete_guild_data`) and a
member's on request (`delete_user_data`). Articles are not touched by any of these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import col, delete, select

from index.storage.models import Feedback, GuildSettings, Question, _now

if TYPE_CHECKING:
    from index.storage.store import Store

RETENTION_MIN_DAYS = 1
RETENTION_MAX_DAYS = 3650
# The settable columns (what `update_settings` accepts).
FIELDS = (
    "threshold",
    "may_threshold",
    "moderator_role_ids",
    "admin_role_ids",
    "answer_channel_ids",
    "auto_answer_channel_id",
    "retention_days",
    "private_answers",
)


def encode_ids(ids: Iterable[int] | None) -> str | None:
    """A list of ids as stored (None stays None: "use the default")."""
    return None if ids is None else " ".join(str(int(i)) for i in ids)


def decode_ids(value: str | None) -> tuple[int, ...] | None:
    return None if value is None else tuple(int(p) for p in value.split())


@dataclass(frozen=True)
class Deleted:
    """What a privacy deletion removed."""

    questions: int
    feedback: int


def get_settings(store: Store, collection: str) -> GuildSettings | None:
    with store.session() as s:
        return s.get(GuildSettings, collection)


def all_settings(store: Store) -> list[GuildSettings]:
    with store.session() as s:
        return list(s.exec(select(GuildSettings)).all())


def update_settings(
    store: Store, collection: str, changes: Mapping[str, Any], *, updated_by: str | None = None
) -> GuildSettings:
    """Set the given columns (a None value resets one to the default) in one transaction."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown guild settings: {sorted(unknown)}")
    days = changes.get("retention_days")
    if days is not None and not RETENTION_MIN_DAYS <= int(days) <= RETENTION_MAX_DAYS:
        raise ValueError(f"retention_days must be {RETENTION_MIN_DAYS}..{RETENTION_MAX_DAYS}")
    with store.session() as s:
        row = s.get(GuildSettings, collection)
        if row is None:
            row = GuildSettings(collection=collection)
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_by = updated_by
        row.updated_at = _now()
        s.add(row)
        s.commit()
        s.refresh(row)
        return row


def _delete_questions(store: Store, where: Any) -> Deleted:
    """Delete the questions matching `where` and every vote on them, in one transaction."""
    with store.session() as s:
        ids = select(Question.id).where(where)
        fb = s.exec(delete(Feedback).where(col(Feedback.question_id).in_(ids)))  # type: ignore[call-overload]
        qs = s.exec(delete(Question).where(where))  # type: ignore[call-overload]
        s.commit()
        return Deleted(int(qs.rowcount or 0), int(fb.rowcount or 0))


def purge_expired_questions(store: Store, default_days: int, *, now: datetime | None = None) -> Deleted:
    """Delete questions (and their feedback) older than each server's retention period
    (`default_days` where a server has not set one)."""
    now = now or datetime.now(UTC)
    custom = {r.collection: r.retention_days for r in all_settings(store) if r.retention_days is not None}
    total = Deleted(0, 0)
    for collection, days in custom.items():
        d = _delete_questions(
            store,
            (col(Question.collection) == collection)
            & (col(Question.created_at) < now - timedelta(days=days)),
        )
        total = Deleted(total.questions + d.questions, total.feedback + d.feedback)
    where = col(Question.created_at) < now - timedelta(days=default_days)
    if custom:
        where = where & col(Question.collection).not_in(list(custom))
    d = _delete_questions(store, where)
    return Deleted(total.questions + d.questions, total.feedback + d.feedback)


def delete_guild_data(store: Store, collection: str) -> Deleted:
    """A server's questions and feedback (the bot was removed from it). Articles and settings stay:
    an admin who invites the bot back finds the articles they curated."""
    d = _delete_questions(store, col(Question.collection) == collection)
    with store.session() as s:
        fb = s.exec(delete(Feedback).where(col(Feedback.collection) == collection))  # type: ignore[call-overload]
        s.commit()
    return Deleted(d.questions, d.feedback + int(fb.rowcount or 0))


def delete_user_data(store: Store, collection: str, user_id: str) -> Deleted:
    """A member's questions (with every vote on them) and their own votes, in one server."""
    d = _delete_questions(
        store, (col(Question.collection) == collection) & (col(Question.user_id) == user_id)
    )
    with store.session() as s:
        fb = s.exec(
            delete(Feedback).where(  # type: ignore[call-overload]
                col(Feedback.collection) == collection, col(Feedback.user_id) == user_id
            )
        )
        s.commit()
    return Deleted(d.questions, d.feedback + int(fb.rowcount or 0))


def set_question_outcome(
    store: Store,
    question_id: int,
    *,
    answered: bool,
    article_id: int | None,
    start: int | None,
    end: int | None,
) -> None:
    """Correct a logged question's outcome after a server's own thresholds changed the decision."""
    with store.session() as s:
        q = s.get(Question, question_id)
        if q is None:
            return
        q.answered, q.article_id, q.start, q.end = answered, article_id, start, end
        s.add(q)
        s.commit()
