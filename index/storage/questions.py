"""Questions asked and what they got, and the helpful / not helpful votes on the answers."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select

from index.storage.database import Database
from index.storage.models import (
    Feedback,
    Question,
    _now,
)


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
