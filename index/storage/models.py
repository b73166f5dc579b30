"""The SQL tables (sqlmodel): articles, sentences, passages, questions, feedback, per-server
settings and the database's own facts. The schema itself is made by the migrations
(index/storage/migrations), which must match these classes; `index.storage.store` holds every
statement run on them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# Also kept in the meta table: quotebots from before Alembic refuse a database whose number is higher.
# The schema itself is defined by the migrations (index/migrations), which must match these tables.
SCHEMA_VERSION = 1


def _now() -> datetime:
    return datetime.now(UTC)


class Article(SQLModel, table=True):
    """One article of one collection; `text` is the exact string every quote is sliced from."""

    __table_args__ = (
        UniqueConstraint("collection", "content_hash", name="uq_article_content"),
        Index("ix_article_collection_source", "collection", "source_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    collection: str = Field(index=True, max_length=64)
    source_id: str | None = Field(default=None, max_length=512)
    title: str = Field(max_length=512)
    url: str | None = Field(default=None, max_length=2048)
    kind: str = Field(default="text", max_length=16)
    text: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(max_length=64)
    n_sentences: int = 0
    n_chunks: int = 0
    added_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=_now)
    # What the source said about itself (web pages: refresh validators; PDFs: page starts).
    etag: str | None = Field(default=None, max_length=512)
    last_modified: str | None = Field(default=None, max_length=64)
    published: str | None = Field(default=None, max_length=32)  # ISO date, when the page gives one
    fetched_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    pages: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON: page start offsets


class Sentence(SQLModel, table=True):
    """A sentence as offsets into its article's text, with its embedding (float32 bytes)."""

    __table_args__ = (Index("ix_sentence_collection_article", "collection", "article_id", "ordinal"),)

    id: int | None = Field(default=None, primary_key=True)
    collection: str = Field(max_length=64)
    article_id: int = Field(foreign_key="article.id", ondelete="CASCADE")
    ordinal: int
    start: int
    end: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Passage(SQLModel, table=True):
    """A passage: a window of consecutive sentences `[first, last]` (ordinals) of one article.

    Its id is its id in the FAISS index. (The table and `Article.n_chunks` keep the name passages
    had in the first schema; renaming them would only cost every database a migration.)
    """

    __tablename__ = "chunk"
    __table_args__ = (Index("ix_chunk_collection_article", "collection", "article_id"),)

    id: int | None = Field(default=None, primary_key=True)
    collection: str = Field(max_length=64)
    article_id: int = Field(foreign_key="article.id", ondelete="CASCADE")
    first: int
    last: int
    start: int
    end: int


class Question(SQLModel, table=True):
    """A question asked, with what the bot answered: feeds /unanswered and quality work."""

    id: int | None = Field(default=None, primary_key=True)
    collection: str = Field(index=True, max_length=64)
    user_id: str | None = Field(default=None, max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))
    answered: bool = False
    article_id: int | None = Field(default=None)
    start: int | None = None
    end: int | None = None
    score: float | None = None
    created_at: datetime = Field(default_factory=_now, index=True)


class Feedback(SQLModel, table=True):
    """A helpful / not helpful vote on an answer; one per user and question (last vote wins)."""

    __table_args__ = (UniqueConstraint("question_id", "user_id", name="uq_feedback_vote"),)

    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id", ondelete="CASCADE", index=True)
    collection: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    helpful: bool
    created_at: datetime = Field(default_factory=_now)


class CollectionState(SQLModel, table=True):
    """A collection's write generation: bumped in the same transaction as every change to its
    articles; the index file records the generation it was built at (a stale index never passes)."""

    collection: str = Field(primary_key=True, max_length=64)
    generation: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class Meta(SQLModel, table=True):
    """Key/value facts about the database itself (schema version)."""

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)


class GuildSettings(SQLModel, table=True):
    """A server's /config settings; NULL columns fall back to config.toml."""

    collection: str = Field(primary_key=True, max_length=64)
    threshold: float | None = None  # quote confidently from this confidence
    may_threshold: float | None = None  # "this may answer it" from this confidence
    moderator_role_ids: str | None = Field(default=None, max_length=1024)
    admin_role_ids: str | None = Field(default=None, max_length=1024)
    answer_channel_ids: str | None = Field(default=None, max_length=2048)  # NULL: every channel
    auto_answer_channel_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    retention_days: int | None = None
    private_answers: bool | None = None
    updated_by: str | None = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=_now)
