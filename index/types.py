"""The values that cross module boundaries: what goes in (`Document`), what comes out (`Answer`,
`Quote`, `ArticleInfo`, `AddResult`, `BulkResult`, `RefreshResult`, `CollectionStats`). Plain frozen
dataclasses with named fields; nothing here imports the rest of the package at run time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from index.storage.models import Article

# A long job's progress: called with (done, total) as it goes.
Progress = Callable[[int, int], None]

# A declined question shows its closest sentence only from this confidence up: unrelated questions
# score under 0.05, near misses 0.2-0.45 (e.g. a correct quote the judge is unsure of).
SHOW_CLOSEST_FROM = 0.2


@dataclass(frozen=True)
class Document:
    """One article's text, ready to be split into sentences and quoted."""

    text: str  # clean article text; quotes will be slices of this exact string
    title: str
    url: str | None = None  # source URL if known
    source_id: str | None = None  # caller-chosen id (the "id" field of a JSON Lines record)
    kind: str = "text"  # "text" | "markdown" | "html" | "pdf" | "jsonl"
    # Lines removed as page furniture ("Read more: ...", "Share this article"): only scraped web pages
    # (HTML, or text extracted with scraped=True) are filtered, so this is empty for every other kind.
    dropped: tuple[str, ...] = ()
    # What was changed from the input on the way to `text`, in words (e.g. "CRLF line endings changed to
    # LF"), or None when `text` is the input exactly. Offsets always index `text`, never the input.
    normalised: str | None = None
    # For PDFs: the offset in `text` where each page starts (pages[0] == 0), so the page of a sentence
    # starting at offset i is bisect.bisect_right(pages, i) (1-based). Empty for other kinds.
    pages: tuple[int, ...] = ()
    # The publication date a web page states (trafilatura's metadata), as an ISO date "YYYY-MM-DD".
    published: str | None = None
    # When the article was first added, timezone-aware (an import keeps its original); None: now.
    created_at: datetime | None = None


@dataclass(frozen=True)
class ArticleRef:
    """The article a quote comes from."""

    id: int
    title: str
    url: str | None
    source_id: str | None


@dataclass(frozen=True)
class Quote:
    """A sentence of an article: `text == article.text[start:end]`."""

    text: str
    article: ArticleRef
    start: int
    end: int
    score: float
    answer_start: int | None = None  # the answer phrase inside the sentence, as article offsets
    answer_end: int | None = None
    page: int | None = None  # 1-based page of a PDF article the sentence is on

    @property
    def answer_phrase(self) -> str | None:
        """The highlighted phrase (a slice of `text`), when the reader was sure of one."""
        if self.answer_start is None or self.answer_end is None:
            return None
        return self.text[self.answer_start - self.start : self.answer_end - self.start]


@dataclass(frozen=True)
class Answer:
    """What `Library.ask` returns: a quote with its confidence, or a decline (`quote is None`)."""

    question: str
    quote: Quote | None
    confidence: float  # calibrated probability that the best quote is right
    best: Quote | None = None  # the best candidate even when declining
    alternatives: list[Quote] = field(default_factory=list)  # next best quotes, other sentences
    related: list[Quote] = field(default_factory=list)  # nearest passages, shown when declining
    question_id: int | None = None  # set when the question was logged
    confident: bool = True  # False: the quote is shown as "this may answer it"
    # The reader's best answer phrase in `best` (article offsets, probability), shown or not.
    answer_guess: tuple[int, int, float] | None = None

    @property
    def answered(self) -> bool:
        return self.quote is not None

    @property
    def kind(self) -> str:
        """ "quote" (confident), "may" (this may answer it) or "decline"."""
        if self.quote is None:
            return "decline"
        return "quote" if self.confident else "may"

    @property
    def closest(self) -> Quote | None:
        """The best candidate of a declined question, when it is close enough to be worth showing."""
        if self.quote is None and self.best is not None and self.confidence >= SHOW_CLOSEST_FROM:
            return self.best
        return None


@dataclass(frozen=True)
class ArticleInfo:
    """A stored article's metadata (no text)."""

    id: int
    collection: str
    title: str
    url: str | None
    source_id: str | None
    kind: str
    n_sentences: int
    n_passages: int
    n_chars: int
    added_by: str | None
    created_at: str

    @classmethod
    def of(cls, a: Article) -> ArticleInfo:
        assert a.id is not None
        return cls(
            a.id,
            a.collection,
            a.title,
            a.url,
            a.source_id,
            a.kind,
            a.n_sentences,
            a.n_chunks,
            len(a.text),
            a.added_by,
            a.created_at.isoformat(timespec="seconds"),
        )


@dataclass(frozen=True)
class AddResult:
    """The outcome of adding one document: "added", "unchanged" (same text already stored) or "replaced"."""

    article: ArticleInfo
    status: str
    dropped: tuple[str, ...] = ()  # lines a scraped web page lost as page furniture (menus, prompts)


@dataclass
class BulkResult:
    """What a folder, archive, sitemap or feed ingest did: (name, result) per article stored or
    found unchanged, (name, message) per item that could not be added."""

    added: list[tuple[str, AddResult]]
    failed: list[tuple[str, str]]

    def counts(self) -> dict[str, int]:
        out = {"added": 0, "replaced": 0, "unchanged": 0, "failed": len(self.failed)}
        for _, r in self.added:
            out[r.status] += 1
        return out


@dataclass
class RefreshResult:
    """What `refresh` found for each web article."""

    unchanged: list[ArticleInfo]
    changed: list[ArticleInfo]
    gone: list[tuple[ArticleInfo, str]]  # 404 / 410 (removed when asked)
    failed: list[tuple[ArticleInfo, str]]  # could not be fetched now: left as they are


@dataclass(frozen=True)
class PassageSpan:
    """Sentences `first..last` (ordinals, inclusive) spanning `text[start:end]`."""

    first: int
    last: int
    start: int
    end: int


@dataclass(frozen=True)
class CollectionStats:
    """What `Library.stats` reports about one collection."""

    collection: str
    articles: int
    sentences: int
    passages: int
    vectors: int  # in the FAISS index (equal to `passages` when all is well)
    model: str
    dim: int
    index_type: str  # "flat" (exact) or "ivf"
    index_bytes: int
    database: str  # the URL, password hidden
    database_bytes: int | None  # the SQLite file's size (None for a server database)
    threshold: float  # quote confidently from this confidence
