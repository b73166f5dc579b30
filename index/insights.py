"""What a collection's questions say over the last N days: the numbers behind the bot's /insights.

From the Question and Feedback tables: questions per day, how many were quoted confidently,
shown as "this may answer it" or declined (a logged question only says answered or not, so an
answered one is "may answer" when its score is under the confident threshold), helpful vs not
helpful votes, the most-quoted articles, and the declined questions grouped into topics by their
embeddings (greedy: each question joins the first topic whose first question is at least
`similarity` cosine-close, else starts one).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from index.library import Library
from index.storage.store import Store

MAX_QUESTIONS = 50_000  # rows read for one report (the newest)
MAX_TOPIC_QUESTIONS = 500  # declined questions embedded for topics (the newest)


@dataclass(frozen=True)
class Topic:
    """Declined questions that ask about the same thing: the newest one stands for them."""

    example: str
    count: int
    others: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Insights:
    days: int
    since: datetime
    per_day: list[tuple[str, int]]  # (YYYY-MM-DD, questions), every day of the window, oldest first
    quoted: int
    may: int
    declined: int
    helpful: int
    not_helpful: int
    top_articles: list[tuple[int, str, int]]  # (article id, title, times quoted), most first
    topics: list[Topic]
    declined_texts: list[str] = field(default_factory=list, repr=False)  # newest first

    @property
    def total(self) -> int:
        return self.quoted + self.may + self.declined


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def question_stats(
    store: Store, collection: str, *, days: int, threshold: float, now: datetime | None = None
) -> Insights:
    """The numbers of the last `days` days (topics left empty: `group_topics` adds them)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    now = _utc(now or datetime.now(UTC))
    since = now - timedelta(days=days)
    recent = store.recent_questions(collection, since, limit=MAX_QUESTIONS)
    rows = [(q.id, q.text, q.answered, q.article_id, q.score, q.created_at) for q in recent.questions]
    votes = Counter[bool]({True: recent.helpful, False: recent.not_helpful})
    quoted_articles = Counter(int(r[3]) for r in rows if r[2] and r[3] is not None)
    top = quoted_articles.most_common(5)
    titles = store.article_titles([a for a, _ in top])
    first_day = (now - timedelta(days=days - 1)).date()
    per_day = Counter(_utc(r[5]).date() for r in rows)
    quoted = sum(1 for r in rows if r[2] and (r[4] is None or r[4] >= threshold))
    may = sum(1 for r in rows if r[2]) - quoted
    declined_texts = [r[1] for r in rows if not r[2]]
    return Insights(
        days=days,
        since=since,
        per_day=[
            ((first_day + timedelta(days=i)).isoformat(), per_day.get(first_day + timedelta(days=i), 0))
            for i in range(days)
        ],
        quoted=quoted,
        may=may,
        declined=len(declined_texts),
        helpful=votes[True],
        not_helpful=votes[False],
        top_articles=[(a, titles.get(a) or "(removed)", n) for a, n in top],
        topics=[],
        declined_texts=declined_texts,
    )


def group_topics(texts: list[str], vectors: np.ndarray, *, similarity: float, limit: int = 5) -> list[Topic]:
    """Greedy grouping of questions (newest first) by cosine similarity of their L2-normalised
    vectors; the `limit` biggest groups, ties by recency."""
    seeds: list[int] = []
    members: list[list[int]] = []
    for i in range(len(texts)):
        if seeds:
            sims = vectors[seeds] @ vectors[i]
            j = int(np.argmax(sims))
            if float(sims[j]) >= similarity:
                members[j].append(i)
                continue
        seeds.append(i)
        members.append([i])
    order = sorted(range(len(seeds)), key=lambda j: (-len(members[j]), j))[:limit]
    out = []
    for j in order:
        others = list(dict.fromkeys(texts[i] for i in members[j] if texts[i] != texts[seeds[j]]))
        out.append(Topic(texts[seeds[j]], len(members[j]), others[:3]))
    return out


def insights(
    lib: Library,
    collection: str,
    *,
    days: int,
    threshold: float | None = None,
    similarity: float = 0.6,
    topics: int = 5,
    now: datetime | None = None,
) -> Insights:
    """`question_stats` with the declined questions grouped into topics (embedded with the
    library's model). `threshold`: quoted confidently from (default: the library's)."""
    t = lib.threshold if threshold is None else threshold
    stats = question_stats(lib.store, collection, days=days, threshold=t, now=now)
    asked = stats.declined_texts[:MAX_TOPIC_QUESTIONS]  # repeats included: they count
    if not asked:
        return stats
    unique = list(dict.fromkeys(asked))
    vectors = np.asarray(lib.embedder.encode(unique), dtype=np.float32)
    row = {text: i for i, text in enumerate(unique)}
    found = group_topics(asked, vectors[[row[x] for x in asked]], similarity=similarity, limit=topics)
    return dataclasses.replace(stats, topics=found)
