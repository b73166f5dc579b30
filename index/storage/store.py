"""The SQL source of truth: sqlmodel tables for articles, sentences, passages and questions.

Any SQLAlchemy URL works (SQLite by default, PostgreSQL for larger deployments). Everything the
vector index holds can be rebuilt from these tables: sentence vectors are stored here once, as
float32 bytes, and passage vectors are derived from them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import (
    func,
    insert,
)
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, delete, select, update

from index.errors import NotFound, StoreError
from index.storage.database import check_collection, db_reason
from index.storage.models import (
    Article,
    Passage,
    Sentence,
    _now,
)
from index.storage.questions import QuestionLog
from index.types import PassageSpan


class SentenceRow(NamedTuple):
    """A stored sentence as the shelf is built from it."""

    id: int
    article_id: int
    ordinal: int
    start: int
    end: int
    vector: bytes  # float32


class PassageRow(NamedTuple):
    """A stored passage: sentences `first..last` (ordinals) of an article; `id` is its FAISS id."""

    id: int
    article_id: int
    first: int
    last: int


@dataclass
class StoredBatch:
    """What `Store.insert_batch` wrote in its one transaction."""

    sentence_ids: list[int]  # in the order of the articles' spans
    passages: list[PassageRow]
    removed_articles: list[int]  # the replaced articles
    removed_passages: list[int]  # ... and their passages (to take out of the FAISS index)
    generation: int  # the collection's generation after the commit


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vector_bytes(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype=np.float32).tobytes()


def vectors_from_bytes(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1).copy()


class Store(QuestionLog):
    """The articles, sentences and passages of every collection (and, inherited, the questions and
    the database itself): short sessions, every method one unit of work (thread-safe)."""

    # -- articles ---------------------------------------------------------------------------

    def find_by_hash(self, collection: str, digest: str) -> Article | None:
        with self.session() as s:
            return s.exec(
                select(Article).where(Article.collection == collection, Article.content_hash == digest)
            ).first()

    def find_by_hashes(self, collection: str, digests: Sequence[str]) -> dict[str, Article]:
        """content hash -> stored article, for those of `digests` that are stored (batched IN queries)."""
        return self._find_many(collection, Article.content_hash, digests)

    def find_by_sources(self, collection: str, source_ids: Sequence[str]) -> dict[str, Article]:
        """source id -> stored article, for those of `source_ids` that are stored."""
        return self._find_many(collection, Article.source_id, source_ids)

    def _find_many(self, collection: str, column: Any, values: Sequence[str]) -> dict[str, Article]:
        out: dict[str, Article] = {}
        unique = list(dict.fromkeys(values))
        name = column.key
        with self.session() as s:
            for i in range(0, len(unique), 500):
                query = select(Article).where(
                    Article.collection == collection, col(column).in_(unique[i : i + 500])
                )
                for a in s.exec(query):
                    out.setdefault(getattr(a, name), a)
        return out

    def find_by_source(self, collection: str, source_id: str) -> Article | None:
        with self.session() as s:
            return s.exec(
                select(Article).where(Article.collection == collection, Article.source_id == source_id)
            ).first()

    def find(self, collection: str, ref: str | int) -> Article:
        """An article by source id (what exports and `list` show), else by database id: a str ref is
        a source id first, so "1" is the article imported with id "1" when there is one; "#12" or an
        int is always database id 12."""
        check_collection(collection)
        art = None
        if isinstance(ref, str):
            if ref.startswith("#") and ref[1:].isdigit():
                ref = int(ref[1:])
            else:
                art = self.find_by_source(collection, ref)
                if art is None and ref.isdigit() and len(ref) < 19:
                    art = self.get_article(collection, int(ref))
        if isinstance(ref, int):
            art = self.get_article(collection, ref)
        if art is None:
            raise NotFound(f"There is no article {ref!s} in this collection.")
        return art

    def set_source_meta(self, article_id: int, etag: str | None, last_modified: str | None) -> None:
        """Record a fetch of the article's page: its validators (for the next conditional GET) and when."""
        with self.session() as s:
            s.exec(
                update(Article)  # type: ignore[call-overload]
                .where(col(Article.id) == article_id)
                .values(
                    etag=(etag or None) and etag[:512],
                    last_modified=(last_modified or None) and last_modified[:64],
                    fetched_at=_now(),
                )
            )
            s.commit()

    def article_pages(self, article_id: int) -> list[int]:
        """Where each page of a PDF article starts in its text (empty for other kinds)."""
        with self.session() as s:
            raw = s.exec(select(Article.pages).where(col(Article.id) == article_id)).first()
        try:
            pages = json.loads(raw) if raw else []
        except ValueError:
            return []
        return [int(x) for x in pages] if isinstance(pages, list) else []

    def get_article(self, collection: str, article_id: int) -> Article | None:
        with self.session() as s:
            a = s.get(Article, article_id)
            return a if a is not None and a.collection == collection else None

    def articles(self, collection: str, *, offset: int = 0, limit: int | None = None) -> list[Article]:
        with self.session() as s:
            q = (
                select(Article)
                .where(Article.collection == collection)
                .order_by(col(Article.id))
                .offset(offset)
            )
            if limit is not None:
                q = q.limit(limit)
            return list(s.exec(q).all())

    def article_titles(self, article_ids: Sequence[int]) -> dict[int, str]:
        """Titles of these articles (those that still exist)."""
        if not article_ids:
            return {}
        with self.session() as s:
            rows = s.exec(
                select(Article.id, Article.title).where(col(Article.id).in_(list(article_ids)))
            ).all()
            return {int(a or 0): t for a, t in rows}

    def article_counts(self) -> dict[str, int]:
        """Articles per collection: one grouped COUNT (the article table's collection index)."""
        with self.session() as s:
            rows = s.execute(
                sa_select(col(Article.collection), func.count()).group_by(col(Article.collection))
            ).all()
        return {str(c): int(n) for c, n in rows}

    def count_articles(self, collection: str) -> int:
        with self.session() as s:
            return int(
                s.exec(
                    select(func.count()).select_from(Article).where(Article.collection == collection)
                ).one()
            )

    def search_titles(self, collection: str, needle: str, limit: int = 25) -> list[Article]:
        with self.session() as s:
            q = select(Article).where(Article.collection == collection)
            if needle:
                q = q.where(func.lower(Article.title).contains(needle.lower()))
            return list(s.exec(q.order_by(col(Article.id).desc()).limit(limit)).all())

    def collections(self) -> list[str]:
        with self.session() as s:
            return sorted(set(s.exec(select(Article.collection).distinct()).all()))

    def delete_article(self, s: Session, article_id: int) -> None:
        # Explicit deletes: SQLite only cascades with foreign_keys=ON, and bulk deletes are faster.
        s.exec(delete(Sentence).where(col(Sentence.article_id) == article_id))  # type: ignore[call-overload]
        s.exec(delete(Passage).where(col(Passage.article_id) == article_id))  # type: ignore[call-overload]
        s.exec(delete(Article).where(col(Article.id) == article_id))  # type: ignore[call-overload]

    # -- writes of the ingest path -------------------------------------------------------------

    def insert_batch(
        self,
        collection: str,
        articles: list[Article],
        spans: list[list[tuple[int, int]]],
        vectors: np.ndarray,
        passages: list[list[PassageSpan]],
        replaces: list[int],
    ) -> StoredBatch:
        """One transaction: delete the `replaces` articles, bulk-insert `articles` (their ids are set
        on them), their sentences (`spans`, one vector each, in order) and passages, bump the
        generation. Raises StoreError in words (nothing is written then)."""
        removed_passage_ids: list[int] = []
        try:
            with self.session() as s:
                for old in replaces:
                    old_passages = s.exec(select(Passage.id).where(Passage.article_id == old)).all()
                    removed_passage_ids.extend(int(c) for c in old_passages if c is not None)
                    self.delete_article(s, old)
                columns = ("collection", "source_id", "title", "url", "kind", "text", "content_hash")
                more = ("n_sentences", "n_chunks", "added_by", "created_at", "published", "pages")
                aids = (
                    s.execute(
                        insert(Article).returning(col(Article.id), sort_by_parameter_order=True),
                        [{k: getattr(a, k) for k in columns + more} for a in articles],
                    )
                    .scalars()
                    .all()
                )
                for a, aid in zip(articles, aids, strict=True):
                    a.id = int(aid)
                sent_params = []
                row = 0
                for art, article_spans in zip(articles, spans, strict=True):
                    for k, (x, y) in enumerate(article_spans):
                        sent_params.append(
                            {
                                "collection": collection,
                                "article_id": art.id,
                                "ordinal": k,
                                "start": x,
                                "end": y,
                                "vector": vector_bytes(vectors[row]),
                            }
                        )
                        row += 1
                sids = (
                    s.execute(
                        insert(Sentence).returning(col(Sentence.id), sort_by_parameter_order=True),
                        sent_params,
                    )
                    .scalars()
                    .all()
                )
                passage_params = [
                    {
                        "collection": collection,
                        "article_id": a.id,
                        "first": c.first,
                        "last": c.last,
                        "start": c.start,
                        "end": c.end,
                    }
                    for a, ps in zip(articles, passages, strict=True)
                    for c in ps
                ]
                cids = (
                    s.execute(
                        insert(Passage).returning(col(Passage.id), sort_by_parameter_order=True),
                        passage_params,
                    )
                    .scalars()
                    .all()
                )
                flat = [(a.id, c) for a, ps in zip(articles, passages, strict=True) for c in ps]
                stored = []
                for cid, (aid, c) in zip(cids, flat, strict=True):
                    assert aid is not None
                    stored.append(PassageRow(int(cid), aid, c.first, c.last))
                self.bump(s, collection)
                s.commit()
                gen = self.generation(collection)
        except (SQLAlchemyError, StoreError) as e:
            raise StoreError(f"Could not store the article: {db_reason(e)}") from e
        return StoredBatch([int(x) for x in sids], stored, list(replaces), removed_passage_ids, gen)

    def remove_article(self, collection: str, article_id: int) -> tuple[list[int], int]:
        """Delete one article (its sentences and passages) and bump the generation, in one
        transaction; returns its passage ids and the new generation."""
        try:
            with self.session() as s:
                passage_ids = [
                    int(c)
                    for c in s.exec(select(Passage.id).where(Passage.article_id == article_id)).all()
                    if c is not None
                ]
                self.delete_article(s, article_id)
                self.bump(s, collection)
                s.commit()
        except (SQLAlchemyError, StoreError) as e:
            raise StoreError(f"Could not remove the article: {db_reason(e)}") from e
        return passage_ids, self.generation(collection)

    def set_vectors(self, collection: str, sentence_ids: Sequence[int], vectors: np.ndarray) -> None:
        """Replace sentence vectors (a re-encode with another model) and bump the generation."""
        with self.session() as s:
            for sid, v in zip(sentence_ids, vectors, strict=True):
                row = s.get(Sentence, sid)
                if row is not None:
                    row.vector = vector_bytes(v)
                    s.add(row)
            self.bump(s, collection)
            s.commit()

    def bad_offsets(self, collection: str) -> int | None:
        """The id of a sentence whose offsets cannot be a slice of its article (None: all fine)."""
        with self.session() as s:
            return s.exec(
                select(Sentence.id)
                .join(Article, col(Article.id) == Sentence.article_id)
                .where(Sentence.collection == collection)
                .where((col(Sentence.start) < 0) | (col(Sentence.end) <= col(Sentence.start)))
                .limit(1)
            ).first()

    # -- bulk reads for building indexes --------------------------------------------------------

    def sentence_rows(self, collection: str) -> list[SentenceRow]:
        """A collection's sentences, ordered by article and ordinal."""
        with self.session() as s:
            rows = s.execute(
                sa_select(
                    *(
                        col(c)
                        for c in (
                            Sentence.id,
                            Sentence.article_id,
                            Sentence.ordinal,
                            Sentence.start,
                            Sentence.end,
                            Sentence.vector,
                        )
                    )
                )
                .where(col(Sentence.collection) == collection)
                .order_by(col(Sentence.article_id), col(Sentence.ordinal))
            ).all()
            return [SentenceRow(*r) for r in rows]

    def passage_rows(self, collection: str) -> list[PassageRow]:
        """A collection's passages (FAISS ids), by id."""
        with self.session() as s:
            rows = s.exec(
                select(Passage.id, Passage.article_id, Passage.first, Passage.last)
                .where(Passage.collection == collection)
                .order_by(col(Passage.id))
            ).all()
            return [PassageRow(*r) for r in rows]

    def article_texts(self, collection: str) -> dict[int, tuple[str, str]]:
        """article id -> (title, text)."""
        with self.session() as s:
            rows = s.exec(
                select(col(Article.id), Article.title, Article.text).where(Article.collection == collection)
            ).all()
            return {int(r[0] or 0): (r[1], r[2]) for r in rows}

    def article_refs(self, collection: str) -> dict[int, tuple[str | None, str | None]]:
        """article id -> (url, source id)."""
        with self.session() as s:
            rows = s.exec(
                select(col(Article.id), Article.url, Article.source_id).where(
                    Article.collection == collection
                )
            ).all()
            return {int(r[0] or 0): (r[1], r[2]) for r in rows}

    def counts(self, collection: str | None = None) -> dict[str, int]:
        with self.session() as s:
            out = {}
            for name, model in (("articles", Article), ("sentences", Sentence), ("passages", Passage)):
                q = select(func.count()).select_from(model)
                if collection is not None:
                    q = q.where(model.collection == collection)  # type: ignore[attr-defined]
                out[name] = int(s.exec(q).one())
            return out
