"""Questions asked and what they got, and the helpful / not helpful votes on the answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from index.storage.database import Database
from index.storage.models import (
    Feedback,
    Question,
    _now,
)


class LoggedQuestion(NamedTuple):
    id: int
    text: str
    answered: bool
    article_id: int | None
    score: float | None
    created_at: datetime


@dataclass(frozen=True)
class RecentQuestions:
    """A collection's questions since some moment (newest first), and the votes on them."""

    questions: list[LoggedQuestion]
    helpful: int
    not_helpful: int


class QuestionLog(Database):
    """The question log and its votes (thread-safe)."""

    def log_question(self, q: Question) -> int:
        with self.session() as s:
            s.add(q)
            s.commit()
            s.refresh(q)
            assert q.id is not None
            return q.id

    def get_question(self, collection: str, question_id: int) -> Question | None:
        with self.session() as s:
            q = s.get(Question, question_id)
            return q if q is not None and q.collection == collection else None

    def record_feedback(self, collection: str, question_id: int, user_id: str, helpful: bool) -> None:
        with self.session() as s:
            existing = s.exec(
                select(Feedback).where(Feedback.question_id == question_id, Feedback.user_id == user_id)
            ).first()
            if existing is None:
                s.add(
                    Feedback(question_id=question_id, collection=collection, user_id=user_id, helpful=helpful)
                )
            else:
                existing.helpful = helpful
                existing.created_at = _now()
                s.add(existing)
            s.commit()

    def unanswered(self, collection: str, limit: int = 20) -> list[tuple[Question, int]]:
        """Recent questions declined, or voted not helpful (with the count of such votes)."""
        with self.session() as s:
            unhelpful = (
                select(Feedback.question_id, func.count().label("n"))
                .where(Feedback.collection == collection, col(Feedback.helpful).is_(False))
                .group_by(col(Feedback.question_id))
                .subquery()
            )
            rows = s.exec(
                select(Question, func.coalesce(unhelpful.c.n, 0))
                .join(unhelpful, unhelpful.c.question_id == Question.id, isouter=True)
                .where(Question.collection == collection)
                .where((col(Question.answered).is_(False)) | (unhelpful.c.n > 0))
                .order_by(col(Question.created_at).desc(), col(Question.id).desc())
                .limit(limit)
            ).all()
            return [(r[0], int(r[1])) for r in rows]

    def recent_questions(self, collection: str, since: datetime, *, limit: int) -> RecentQuestions:
        """The last `limit` questions asked since `since`, newest first, with their votes."""
        with self.session() as s:
            columns = (
                Question.id,
                Question.text,
                Question.answered,
                Question.article_id,
                Question.score,
                Question.created_at,
            )
            rows = s.execute(
                sa_select(*(col(c) for c in columns))
                .where(col(Question.collection) == collection, col(Question.created_at) >= since)
                .order_by(col(Question.created_at).desc(), col(Question.id).desc())
                .limit(limit)
            ).all()
            ids = [r[0] for r in rows]
            votes = {True: 0, False: 0}
            for k in range(0, len(ids), 900):  # SQLite's bound-parameter limit
                part = ids[k : k + 900]
                for helpful in s.exec(
                    select(Feedback.helpful).where(
                        Feedback.collection == collection, col(Feedback.question_id).in_(part)
                    )
                ).all():
                    votes[bool(helpful)] += 1
        return RecentQuestions([LoggedQuestion(*r) for r in rows], votes[True], votes[False])
