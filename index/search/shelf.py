"""A `Shelf`: the in-memory, read-only view of one collection that questions are answered from.

Sentence offsets and vectors, a BM25 index over sentences, article texts and titles, and the FAISS
passage index. Changes produce a new `Shelf` (copy on write) that is swapped in whole, so a question
never sees half an update, and a reindex can build the next shelf while questions are still
answered from the current one. `ShelfRows` is what a shelf is built from (read from SQL, or the
rows an ingest batch just stored).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from index.search.lexical import BM25, Vocabulary, term_matrix, terms
from index.search.questions import _CAPITALISED, _DATE, _NUMBER, said_over_and_over
from index.storage.store import PassageRow
from index.storage.vectors import VectorIndex


@dataclass
class ShelfRows:
    """Sentence rows of some articles, ordered by (article id, ordinal)."""

    sentence_ids: np.ndarray  # int64
    article_ids: np.ndarray  # int64
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    vectors: np.ndarray  # float32 (n, dim)
    texts: dict[int, str]  # article id -> text
    titles: dict[int, str]  # article id -> title
    passage_spans: dict[int, tuple[int, int, int]]  # passage id -> (article id, first ordinal, last ordinal)
    refs: dict[int, tuple[str | None, str | None]] = field(
        default_factory=dict
    )  # article id -> (url, source id)


@dataclass(frozen=True)
class SentenceFacts:
    """What the question-type features need to know about each sentence, computed once at build."""

    has_number: np.ndarray  # bool
    has_date: np.ndarray  # bool
    names: list[frozenset[str]]  # terms of capitalised words (names, places) after the first word

    @classmethod
    def of(cls, texts: list[str]) -> SentenceFacts:
        return cls(
            np.array([bool(_NUMBER.search(t)) for t in texts], bool),
            np.array([bool(_DATE.search(t)) for t in texts], bool),
            [frozenset(terms(" ".join(_CAPITALISED.findall(t)))) for t in texts],
        )

    def take(self, idx: np.ndarray) -> SentenceFacts:
        return SentenceFacts(self.has_number[idx], self.has_date[idx], [self.names[i] for i in idx.tolist()])

    def plus(self, other: SentenceFacts) -> SentenceFacts:
        return SentenceFacts(
            np.concatenate([self.has_number, other.has_number]),
            np.concatenate([self.has_date, other.has_date]),
            self.names + other.names,
        )


# How far a sentence's paragraph reaches for the paragraph features (index.search.features): at
# most this many sentences of the same paragraph either side, so that a long block of text without
# blank lines (a pasted transcript) is no one paragraph-sized bag of words.
PARAGRAPH_REACH = 4
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


@dataclass(frozen=True)
class Paragraphs:
    """For each sentence, how many sentences of its paragraph (text between blank lines) come
    before and after it, at most PARAGRAPH_REACH: rows r - before[r] .. r + after[r] are its
    paragraph window. Relative counts, so they survive appending and removing articles."""

    before: np.ndarray  # int64
    after: np.ndarray  # int64

    @classmethod
    def of(cls, rows: ShelfRows) -> Paragraphs:
        n = len(rows.article_ids)
        before = np.zeros(n, np.int64)
        after = np.zeros(n, np.int64)
        if n == 0:
            return cls(before, after)
        arts = rows.article_ids
        cut = np.flatnonzero(arts[1:] != arts[:-1]) + 1
        for lo, hi in zip(np.r_[0, cut].tolist(), np.r_[cut, n].tolist(), strict=True):
            text = rows.texts[int(arts[lo])]
            breaks = np.array([m.start() for m in _PARAGRAPH_BREAK.finditer(text)], np.int64)
            para = np.searchsorted(breaks, rows.starts[lo:hi], side="right")
            idx = np.arange(hi - lo)
            # First and last sentence index of each sentence's paragraph within the article.
            first = np.r_[0, np.flatnonzero(para[1:] != para[:-1]) + 1]
            last = np.r_[first[1:] - 1, hi - lo - 1]
            which = np.searchsorted(first, idx, side="right") - 1
            before[lo:hi] = np.minimum(idx - first[which], PARAGRAPH_REACH)
            after[lo:hi] = np.minimum(last[which] - idx, PARAGRAPH_REACH)
        return cls(before, after)

    def take(self, idx: np.ndarray) -> Paragraphs:
        """The windows of rows `idx`: whole articles only (a removed article takes its rows along)."""
        return Paragraphs(self.before[idx], self.after[idx])

    def plus(self, other: Paragraphs) -> Paragraphs:
        return Paragraphs(
            np.concatenate([self.before, other.before]), np.concatenate([self.after, other.after])
        )

    def windows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first row, last row) of each row's paragraph window."""
        return rows - self.before[rows], rows + self.after[rows]


@dataclass
class Shelf:
    """Everything needed to answer questions on one collection, read-only once built."""

    collection: str
    dim: int
    sentence_ids: np.ndarray
    article_ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    vectors: np.ndarray
    counts: sp.csr_matrix
    vocab: Vocabulary
    texts: dict[int, str]
    titles: dict[int, str]
    title_terms: dict[int, frozenset[str]]
    passage_spans: dict[int, tuple[int, int, int]]  # passage id -> (article id, first ordinal, last ordinal)
    refs: dict[int, tuple[str | None, str | None]]
    facts: SentenceFacts
    paragraphs: Paragraphs
    passages: VectorIndex
    bm25: BM25 = field(init=False)
    article_base: dict[int, int] = field(init=False)
    lengths: np.ndarray = field(init=False)
    _article_terms: dict[int, frozenset[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._article_terms = {}
        self.bm25 = BM25(self.counts)
        self.lengths = self.bm25.lengths
        arts, first_rows = np.unique(self.article_ids, return_index=True)
        self.article_base = dict(zip(arts.tolist(), first_rows.tolist(), strict=True))

    def passage_sentences(self, passage_id: int) -> range:
        """Shelf rows of a passage's sentences (empty if the passage is gone)."""
        c = self.passage_spans.get(passage_id)
        if c is None or c[0] not in self.article_base:
            return range(0)
        base = self.article_base[c[0]]
        return range(base + c[1], base + c[2] + 1)

    @property
    def size(self) -> int:
        return len(self.sentence_ids)

    @classmethod
    def from_rows(cls, collection: str, dim: int, rows: ShelfRows, passages: VectorIndex) -> Shelf:
        vocab = Vocabulary()
        texts = _sentence_texts(rows)
        counts = term_matrix([terms(t) for t in texts], vocab)
        return cls(
            collection=collection,
            dim=dim,
            sentence_ids=rows.sentence_ids,
            article_ids=rows.article_ids,
            starts=rows.starts,
            ends=rows.ends,
            vectors=rows.vectors,
            counts=counts,
            vocab=vocab,
            texts=dict(rows.texts),
            titles=dict(rows.titles),
            title_terms={a: frozenset(terms(t)) for a, t in rows.titles.items()},
            passage_spans=dict(rows.passage_spans),
            refs=dict(rows.refs),
            facts=SentenceFacts.of(texts),
            paragraphs=Paragraphs.of(rows),
            passages=passages,
        )

    def with_rows(self, rows: ShelfRows) -> Shelf:
        """A new shelf with these (newer) articles appended; the vector index is shared."""
        vocab = Vocabulary()
        vocab.ids = dict(self.vocab.ids)
        texts_new = _sentence_texts(rows)
        new_counts = term_matrix([terms(t) for t in texts_new], vocab)
        old = self.counts.copy()
        old.resize((old.shape[0], max(1, len(vocab))))
        new_counts.resize((new_counts.shape[0], max(1, len(vocab))))
        texts = {**self.texts, **rows.texts}
        titles = {**self.titles, **rows.titles}
        title_terms = {**self.title_terms, **{a: frozenset(terms(t)) for a, t in rows.titles.items()}}
        shelf = Shelf(
            collection=self.collection,
            dim=self.dim,
            sentence_ids=np.concatenate([self.sentence_ids, rows.sentence_ids]),
            article_ids=np.concatenate([self.article_ids, rows.article_ids]),
            starts=np.concatenate([self.starts, rows.starts]),
            ends=np.concatenate([self.ends, rows.ends]),
            vectors=np.concatenate([self.vectors, rows.vectors]),
            counts=sp.vstack([old, new_counts], format="csr"),
            vocab=vocab,
            texts=texts,
            titles=titles,
            title_terms=title_terms,
            passage_spans={**self.passage_spans, **rows.passage_spans},
            refs={**self.refs, **rows.refs},
            facts=self.facts.plus(SentenceFacts.of(texts_new)),
            paragraphs=self.paragraphs.plus(Paragraphs.of(rows)),
            passages=self.passages,
        )
        # Terms of a whole article cost a pass over its text (seconds for a 10 MB article): keep them.
        shelf._article_terms.update((a, t) for a, t in self._article_terms.items() if a not in rows.texts)
        return shelf

    def without_articles(self, article_ids: set[int]) -> Shelf:
        keep = ~np.isin(self.article_ids, np.fromiter(article_ids, np.int64, len(article_ids)))
        idx = np.flatnonzero(keep)
        shelf = Shelf(
            collection=self.collection,
            dim=self.dim,
            sentence_ids=self.sentence_ids[idx],
            article_ids=self.article_ids[idx],
            starts=self.starts[idx],
            ends=self.ends[idx],
            vectors=self.vectors[idx],
            counts=self.counts[idx],
            vocab=self.vocab,
            texts={a: t for a, t in self.texts.items() if a not in article_ids},
            titles={a: t for a, t in self.titles.items() if a not in article_ids},
            title_terms={a: t for a, t in self.title_terms.items() if a not in article_ids},
            passage_spans={c: v for c, v in self.passage_spans.items() if v[0] not in article_ids},
            refs={a: r for a, r in self.refs.items() if a not in article_ids},
            facts=self.facts.take(idx),
            paragraphs=self.paragraphs.take(idx),
            passages=self.passages,
        )
        shelf._article_terms.update((a, t) for a, t in self._article_terms.items() if a not in article_ids)
        return shelf

    def article_terms(self, article_id: int) -> frozenset[str]:
        """Every term of an article (computed on first use, then cached)."""
        got = self._article_terms.get(article_id)
        if got is None:
            got = self._article_terms[article_id] = frozenset(terms(self.texts[article_id]))
        return got

    def neighbourhood(self, row: int) -> list[int]:
        """`row` with its previous and next sentence where they are of the same article, in order."""
        aid = int(self.article_ids[row])
        return [r for r in (row - 1, row, row + 1) if 0 <= r < self.size and int(self.article_ids[r]) == aid]

    def knows_no_word_of(self, text: str) -> bool:
        """No term of `text` occurs in the collection (".", "k", "yo yo yo"): nothing to quote."""
        return not self.vocab.lookup(terms(text))

    def nothing_to_quote(self, text: str) -> bool:
        """Declined before any model looks: no word of `text` is in the collection, or `text` is one
        word or phrase said over and over ("test test test test", "hi there hi there hi there")."""
        return self.knows_no_word_of(text) or said_over_and_over(text)

    def sentence_text(self, row: int) -> str:
        return self.texts[int(self.article_ids[row])][int(self.starts[row]) : int(self.ends[row])]


def _sentence_texts(rows: ShelfRows) -> list[str]:
    return [
        rows.texts[a][s:e]
        for a, s, e in zip(rows.article_ids.tolist(), rows.starts.tolist(), rows.ends.tolist(), strict=True)
    ]


def stored_passages(rows: ShelfRows) -> Iterable[PassageRow]:
    for cid, (article, first, last) in rows.passage_spans.items():
        yield PassageRow(cid, article, first, last)


def passage_vectors(
    rows: ShelfRows, passage_rows: Sequence[PassageRow], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Passage vectors as the normalised mean of their sentences' vectors (no second encoding pass)."""
    if not passage_rows:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    arts, first_rows = np.unique(rows.article_ids, return_index=True)
    base = dict(zip(arts.tolist(), first_rows.tolist(), strict=True))
    ids = np.empty(len(passage_rows), np.int64)
    out = np.empty((len(passage_rows), dim), np.float32)
    cums = np.vstack([np.zeros((1, dim), np.float64), np.cumsum(rows.vectors, axis=0, dtype=np.float64)])
    for i, (cid, aid, first, last) in enumerate(passage_rows):
        b = base[aid]
        ids[i] = cid
        out[i] = cums[b + last + 1] - cums[b + first]
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    return ids, out
