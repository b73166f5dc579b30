"""The ranking features of a question's candidate sentences, by name.

`FEATURES` names the columns of the matrix `featurize` returns; every column is computed under its
name and the matrix is assembled from the names (`columns`), so a feature added to the tuple but
not computed (or computed but not listed) fails at once instead of leaving a column of zeros. The
fitted weights (index/answering/answer_model.json, scorer.json) are stored by name too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.search.lexical import terms
from index.search.questions import question_type
from index.search.shelf import SentenceFacts, Shelf

FEATURES = (
    "dense",  # cosine(question, sentence)
    "dense_ctx",  # cosine(question, sentence with its neighbours)
    "dense_rel",  # dense - best dense among candidates
    "lex",  # idf-weighted share of question terms found in the sentence
    "lex_ctx",  # the same over the sentence and its neighbours
    "lex_rel",  # lex - best lex among candidates
    "dense_para",  # cosine(question, the sentence's paragraph window: Shelf.paragraphs)
    "dense_para_rel",  # dense_para - best dense_para among candidates
    "lex_para",  # idf-weighted share of question terms found in the paragraph window
    "bm25_rel",  # bm25 / best bm25 among candidates
    "title",  # idf-weighted share of question terms in the article title
    "lex_title",  # idf-weighted share of question terms in the sentence or its article's title
    "article_dense",  # best dense of any candidate of the same article - best overall
    "type_match",  # the sentence holds what the question type asks for (number, date, name)
    "novel",  # share of the sentence's terms that are not in the question
    "missing_key",  # idf of the rarest question term missing from sentence+context / max idf
    "log_len",  # log of the sentence length in terms
    "bias",
)


def columns(names: Sequence[str], values: Mapping[str, Any], n: int) -> np.ndarray:
    """A float32 matrix (n, len(names)) whose column i is `values[names[i]]` (a scalar or n values).
    A name without a value, or a value without a name, raises: no column is ever silently zero."""
    extra = set(values) - set(names)
    missing = [k for k in names if k not in values]
    if extra or missing:
        raise ValueError(
            f"feature values do not match their names: missing {missing}, unnamed {sorted(extra)}"
        )
    out = np.empty((n, len(names)), np.float32)
    for i, name in enumerate(names):
        out[:, i] = values[name]
    return out


def row(names: Sequence[str], values: Mapping[str, float]) -> np.ndarray:
    """One vector of named values, in `names`' order (the same check as `columns`)."""
    return columns(names, values, 1)[0]


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


def _terms_of_ids(shelf: Shelf, qset: frozenset[str], qids: list[int]) -> list[str]:
    """The question's terms in the order of their vocabulary ids `qids`."""
    by_id = {shelf.vocab.ids[t]: t for t in qset if t in shelf.vocab.ids}
    return [by_id[j] for j in qids]


@dataclass
class Candidates:
    """Candidate sentence rows of a shelf for one question, with their feature matrix."""

    rows: np.ndarray
    features: np.ndarray  # (len(rows), len(FEATURES))


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
    if n == 0:
        return Candidates(rows, np.zeros((0, len(FEATURES)), np.float32))
    qt = terms(question)
    qset = frozenset(qt)
    qids = sorted(set(shelf.vocab.lookup(qt)))
    idf = shelf.bm25.idf
    # Terms the collection has never seen weigh like the rarest known term.
    unseen = [t for t in qset if t not in shelf.vocab.ids]
    max_idf = float(idf.max()) if len(idf) else 1.0
    q_weight = float(idf[qids].sum()) + max_idf * len(unseen) if qids or unseen else 1.0

    art = shelf.article_ids[rows]
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

    # The paragraph window of each candidate (at most PARAGRAPH_REACH sentences either side):
    # `flat` lists every window's rows, window i starting at flat position seg[i].
    lo, hi = shelf.paragraphs.windows(rows)
    width = hi - lo + 1
    seg = np.r_[0, np.cumsum(width)[:-1]]
    flat = np.repeat(lo - seg, width) + np.arange(int(width.sum()))
    para = np.add.reduceat(vec[flat], seg, axis=0)
    para /= np.maximum(np.linalg.norm(para, axis=1, keepdims=True), 1e-9)
    dense_para = para @ qvec

    in_question = np.zeros(n, np.float32)
    lex_para = np.zeros(n, np.float32)
    if qids:
        # Term counts of the question's terms in the candidates, their neighbours and their
        # paragraph windows: one small dense block (row slicing a CSR matrix is cheap; column
        # slicing all of it is not).
        around_rows, where = np.unique(np.concatenate([rows, prev, nxt, flat]), return_inverse=True)
        block = shelf.counts[around_rows][:, qids].toarray()
        here_counts = block[where[:n]]
        here = here_counts > 0
        around = here | (block[where[n : 2 * n]] > 0) | (block[where[2 * n : 3 * n]] > 0)
        in_question = here_counts.sum(axis=1).astype(np.float32)
        w = idf[qids]
        lex = here @ w / q_weight
        lex_ctx = around @ w / q_weight
        in_para = np.maximum.reduceat(block[where[3 * n :]] > 0, seg, axis=0)
        lex_para = in_para @ w / q_weight
        missing = np.where(around, 0.0, w[None, :]).max(axis=1) if len(w) else np.zeros(n)
        # The title names what the article is about, so a sentence need not repeat it ("The show
        # is set in Taylor, Texas" under the title "Kevin (Probably) Saves the World").
        qid_terms = _terms_of_ids(shelf, qset, qids)
        arts, which = np.unique(art, return_inverse=True)
        in_title = np.array(
            [[t in shelf.title_terms.get(a, frozenset()) for t in qid_terms] for a in arts.tolist()], bool
        ).reshape(len(arts), len(qid_terms))
        lex_title = (here | in_title[which]) @ w / q_weight
        title = (in_title @ w / q_weight)[which]
    else:
        lex = np.zeros(n, np.float32)
        lex_title = np.zeros(n, np.float32)
        title = np.zeros(n, np.float32)
        lex_ctx = np.zeros(n, np.float32)
        missing = np.zeros(n, np.float32)
    if unseen:
        missing = np.maximum(missing, max_idf)
    bm = shelf.bm25.scores(qids)[rows] if qids else np.zeros(n, np.float32)
    lengths = shelf.lengths[rows]

    qtype = question_type(question)
    best_dense_by_article: dict[int, float] = {}
    for a, d in zip(art.tolist(), dense.tolist(), strict=True):
        best_dense_by_article[a] = max(best_dense_by_article.get(a, -1.0), d)
    best_dense = float(dense.max())

    values = {
        "dense": dense,
        "dense_ctx": dense_ctx,
        "dense_rel": dense - best_dense,
        "lex": lex,
        "lex_ctx": lex_ctx,
        "lex_rel": lex - float(lex.max()),
        "dense_para": dense_para,
        "dense_para_rel": dense_para - float(dense_para.max()),
        "lex_para": lex_para,
        "bm25_rel": bm / max(float(bm.max()), 1e-9),
        "title": title,
        "lex_title": lex_title,
        "article_dense": [best_dense_by_article[a] - best_dense for a in art.tolist()],
        "type_match": type_match(qtype, shelf.facts, rows, qset),
        "novel": np.where(lengths > 0, (lengths - in_question) / np.maximum(lengths, 1), 0.0),
        "missing_key": missing / max(max_idf, 1e-9),
        "log_len": np.log1p(lengths),
        "bias": 1.0,
    }
    f = columns(FEATURES, values, n)
    return Candidates(rows, f)
