"""Dense + lexical candidate retrieval over one collection, and the features of each candidate.

A `Shelf` is the in-memory, read-only view of one collection that questions are answered from:
sentence offsets and vectors, a BM25 index over sentences, article texts and titles, and the
FAISS passage index. Changes produce a new `Shelf` (copy on write) that is swapped in whole, so a
question never sees half an update, and a reindex can build the next shelf while questions are
still answered from the current one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from index.search.lexical import BM25, Vocabulary, term_matrix, terms
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
    chunks: dict[int, tuple[int, int, int]]  # chunk id -> (article id, first ordinal, last ordinal)
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
    chunks: dict[int, tuple[int, int, int]]
    refs: dict[int, tuple[str | None, str | None]]
    facts: SentenceFacts
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

    def chunk_rows(self, chunk_id: int) -> range:
        """Shelf rows of a passage's sentences (empty if the passage is gone)."""
        c = self.chunks.get(chunk_id)
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
            collection,
            dim,
            rows.sentence_ids,
            rows.article_ids,
            rows.starts,
            rows.ends,
            rows.vectors,
            counts,
            vocab,
            dict(rows.texts),
            dict(rows.titles),
            {a: frozenset(terms(t)) for a, t in rows.titles.items()},
            dict(rows.chunks),
            dict(rows.refs),
            SentenceFacts.of(texts),
            passages,
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
            self.collection,
            self.dim,
            np.concatenate([self.sentence_ids, rows.sentence_ids]),
            np.concatenate([self.article_ids, rows.article_ids]),
            np.concatenate([self.starts, rows.starts]),
            np.concatenate([self.ends, rows.ends]),
            np.concatenate([self.vectors, rows.vectors]),
            sp.vstack([old, new_counts], format="csr"),
            vocab,
            texts,
            titles,
            title_terms,
            {**self.chunks, **rows.chunks},
            {**self.refs, **rows.refs},
            self.facts.plus(SentenceFacts.of(texts_new)),
            self.passages,
        )
        # Terms of a whole article cost a pass over its text (seconds for a 10 MB article): keep them.
        shelf._article_terms.update((a, t) for a, t in self._article_terms.items() if a not in rows.texts)
        return shelf

    def without_articles(self, article_ids: set[int]) -> Shelf:
        keep = ~np.isin(self.article_ids, np.fromiter(article_ids, np.int64, len(article_ids)))
        idx = np.flatnonzero(keep)
        shelf = Shelf(
            self.collection,
            self.dim,
            self.sentence_ids[idx],
            self.article_ids[idx],
            self.starts[idx],
            self.ends[idx],
            self.vectors[idx],
            self.counts[idx],
            self.vocab,
            {a: t for a, t in self.texts.items() if a not in article_ids},
            {a: t for a, t in self.titles.items() if a not in article_ids},
            {a: t for a, t in self.title_terms.items() if a not in article_ids},
            {c: v for c, v in self.chunks.items() if v[0] not in article_ids},
            {a: r for a, r in self.refs.items() if a not in article_ids},
            self.facts.take(idx),
            self.passages,
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

    def sentence_text(self, row: int) -> str:
        return self.texts[int(self.article_ids[row])][int(self.starts[row]) : int(self.ends[row])]


def _sentence_texts(rows: ShelfRows) -> list[str]:
    return [
        rows.texts[a][s:e]
        for a, s, e in zip(rows.article_ids.tolist(), rows.starts.tolist(), rows.ends.tolist(), strict=True)
    ]


# -- question analysis ---------------------------------------------------------------------------

_QTYPE_PATTERNS = (
    (
        "number",
        re.compile(
            r"\bhow (many|much|long|old|far|large|big|tall|high|deep|wide|often|fast|heavy|hot|cold|big)\b|"
            r"\bwhat (percentage|percent|number|amount|proportion|fraction|size|population|speed|temperature)\b|"
            r"\bhow (much|many)\b",
            re.I,
        ),
    ),
    (
        "date",
        re.compile(
            r"^\s*when\b|\bwhen (did|was|were|is|does|do|will|had|has)\b|"
            r"\b(what|which|in what|in which) (year|years|century|decade|date|month|day|era|period|time)\b|"
            r"\bhow long ago\b|\bsince when\b",
            re.I,
        ),
    ),
    (
        "person",
        re.compile(
            r"^\s*who\b|\bwho(m|se)?\b|\b(which|what) (person|people|man|woman|scientist|president|king|"
            r"queen|emperor|leader|author|writer|composer|artist|player|general|minister)\b",
            re.I,
        ),
    ),
    (
        "place",
        re.compile(
            r"^\s*where\b|\bwhere\b|\b(which|what) (country|city|state|region|place|continent|town|"
            r"river|island|location|area|province|nation)\b",
            re.I,
        ),
    ),
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|billion|trillion|dozen|half|third|quarter|several|many|few)\b",
    re.I,
)
_DATE = re.compile(
    r"\b(1\d{3}|20\d{2}|\d{1,2}(st|nd|rd|th) century|\d0s)\b|\b(january|february|march|april|may|june|july|august|"
    r"september|october|november|december|spring|summer|autumn|winter|century|decade|monday|tuesday|"
    r"wednesday|thursday|friday|saturday|sunday|year|years|ago|bc|ad|bce|ce)\b",
    re.I,
)
_CAPITALISED = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'’-]+")


def question_type(question: str) -> str | None:
    for name, pat in _QTYPE_PATTERNS:
        if pat.search(question):
            return name
    return None


def type_match(
    qtype: str | None, facts: SentenceFacts, rows: np.ndarray, question_terms: frozenset[str]
) -> np.ndarray:
    """1 where a sentence holds the kind of thing the question asks for, 0 where it does not."""
    if qtype is None:
        return np.full(len(rows), 0.5, np.float32)
    if qtype == "number":
        return facts.has_number[rows].astype(np.float32)
    if qtype == "date":
        return facts.has_date[rows].astype(np.float32)
    # person / place: a capitalised word the question does not already contain
    return np.array([1.0 if facts.names[r] - question_terms else 0.0 for r in rows.tolist()], np.float32)


# -- candidates and their features ---------------------------------------------------------------

FEATURES = (
    "dense",  # cosine(question, sentence)
    "dense_ctx",  # cosine(question, sentence with its neighbours)
    "dense_rel",  # dense - best dense among candidates
    "lex",  # idf-weighted share of question terms found in the sentence
    "lex_ctx",  # the same over the sentence and its neighbours
    "lex_rel",  # lex - best lex among candidates
    "bm25_rel",  # bm25 / best bm25 among candidates
    "title",  # idf-weighted share of question terms in the article title
    "article_dense",  # best dense of any candidate of the same article - best overall
    "type_match",  # the sentence holds what the question type asks for (number, date, name)
    "novel",  # share of the sentence's terms that are not in the question
    "missing_key",  # idf of the rarest question term missing from sentence+context / max idf
    "log_len",  # log of the sentence length in terms
    "bias",
)


@dataclass
class Candidates:
    """Candidate sentence rows of a shelf for one question, with their feature matrix."""

    rows: np.ndarray
    features: np.ndarray  # (len(rows), len(FEATURES))


def candidate_rows(
    shelf: Shelf,
    qvec: np.ndarray,
    qterm_ids: list[int],
    *,
    dense_k: int,
    lexical_k: int,
    passage_k: int,
    exhaustive_limit: int,
) -> np.ndarray:
    """Union of dense (sentence or passage) and BM25 candidates, as shelf rows."""
    picks: list[np.ndarray] = []
    n = shelf.size
    if n == 0:
        return np.zeros(0, np.int64)
    if n <= exhaustive_limit:
        with np.errstate(invalid="ignore", over="ignore"):  # see featurize
            sims = np.nan_to_num(shelf.vectors @ qvec, nan=-1.0)
        k = min(dense_k, n)
        picks.append(np.argpartition(-sims, k - 1)[:k])
    # Passages found by FAISS contribute all their sentences.
    _, ids = shelf.passages.search(qvec, passage_k)
    if ids.size:
        picks.append(_passage_rows(shelf, ids[0]))
    bm = shelf.bm25.scores(qterm_ids)
    if bm.any():
        k = min(lexical_k, n)
        top = np.argpartition(-bm, k - 1)[:k]
        picks.append(top[bm[top] > 0])
    if not picks:
        return np.zeros(0, np.int64)
    return np.unique(np.concatenate(picks)).astype(np.int64)


def _passage_rows(shelf: Shelf, chunk_ids: np.ndarray) -> np.ndarray:
    rows: list[int] = []
    for cid in chunk_ids.tolist():
        if cid >= 0:
            rows.extend(shelf.chunk_rows(cid))
    return np.asarray(rows, np.int64)


def featurize(shelf: Shelf, rows: np.ndarray, question: str, qvec: np.ndarray) -> Candidates:
    """The feature matrix (see FEATURES) of candidate `rows` for one question."""
    # Some BLAS builds raise spurious floating-point flags in small float32 products ("invalid value
    # encountered in matmul" with finite inputs); the result is sanitised below instead.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        c = _featurize(shelf, rows, question, qvec)
    np.nan_to_num(c.features, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return c


def _featurize(shelf: Shelf, rows: np.ndarray, question: str, qvec: np.ndarray) -> Candidates:
    n = len(rows)
    f = np.zeros((n, len(FEATURES)), np.float32)
    if n == 0:
        return Candidates(rows, f)
    qt = terms(question)
    qset = frozenset(qt)
    qids = sorted(set(shelf.vocab.lookup(qt)))
    idf = shelf.bm25.idf
    # Terms the collection has never seen weigh like the rarest known term.
    unseen = [t for t in qset if t not in shelf.vocab.ids]
    max_idf = float(idf.max()) if len(idf) else 1.0
    q_weight = float(idf[qids].sum()) + max_idf * len(unseen) if qids or unseen else 1.0

    # Neighbouring rows of the same article, for context features.
    prev = np.clip(rows - 1, 0, shelf.size - 1)
    nxt = np.clip(rows + 1, 0, shelf.size - 1)
    prev = np.where(shelf.article_ids[prev] == shelf.article_ids[rows], prev, rows)
    nxt = np.where(shelf.article_ids[nxt] == shelf.article_ids[rows], nxt, rows)

    vec = shelf.vectors
    dense = vec[rows] @ qvec
    ctx = vec[rows] + vec[prev] + vec[nxt]
    ctx /= np.maximum(np.linalg.norm(ctx, axis=1, keepdims=True), 1e-9)
    dense_ctx = ctx @ qvec

    in_question = np.zeros(n, np.float32)
    if qids:
        # Term counts of the question's terms in the candidates and their neighbours: one small
        # dense block (row slicing a CSR matrix is cheap; column slicing all of it is not).
        around_rows, where = np.unique(np.concatenate([rows, prev, nxt]), return_inverse=True)
        block = shelf.counts[around_rows][:, qids].toarray()
        here_counts = block[where[:n]]
        here = here_counts > 0
        around = here | (block[where[n : 2 * n]] > 0) | (block[where[2 * n :]] > 0)
        in_question = here_counts.sum(axis=1).astype(np.float32)
        w = idf[qids]
        lex = here @ w / q_weight
        lex_ctx = around @ w / q_weight
        missing = np.where(around, 0.0, w[None, :]).max(axis=1) if len(w) else np.zeros(n)
    else:
        lex = np.zeros(n, np.float32)
        lex_ctx = np.zeros(n, np.float32)
        missing = np.zeros(n, np.float32)
    if unseen:
        missing = np.maximum(missing, max_idf)
    bm = shelf.bm25.scores(qids)[rows] if qids else np.zeros(n, np.float32)
    lengths = shelf.lengths[rows]

    qtype = question_type(question)
    art = shelf.article_ids[rows]
    title_share = {}
    for a in np.unique(art).tolist():
        tt = shelf.title_terms.get(a, frozenset())
        tw = sum(float(idf[j]) for t, j in ((t, shelf.vocab.ids.get(t)) for t in qset & tt) if j is not None)
        title_share[a] = tw / q_weight
    best_dense_by_article: dict[int, float] = {}
    for a, d in zip(art.tolist(), dense.tolist(), strict=True):
        best_dense_by_article[a] = max(best_dense_by_article.get(a, -1.0), d)
    best_dense = float(dense.max())

    f[:, 0] = dense
    f[:, 1] = dense_ctx
    f[:, 2] = dense - best_dense
    f[:, 3] = lex
    f[:, 4] = lex_ctx
    f[:, 5] = lex - float(lex.max())
    f[:, 6] = bm / max(float(bm.max()), 1e-9)
    f[:, 7] = [title_share[a] for a in art.tolist()]
    f[:, 8] = [best_dense_by_article[a] - best_dense for a in art.tolist()]
    f[:, 9] = type_match(qtype, shelf.facts, rows, qset)
    f[:, 10] = np.where(lengths > 0, (lengths - in_question) / np.maximum(lengths, 1), 0.0)
    f[:, 12] = np.log1p(lengths)
    f[:, 11] = missing / max(max_idf, 1e-9)
    f[:, 13] = 1.0
    return Candidates(rows, f)
