"""Candidate sentences for a question over one shelf: dense search over sentences (exact up to
`exhaustive_limit`), the FAISS passages' sentences and BM25, as one set of shelf rows."""

from __future__ import annotations

import numpy as np

from index.search.shelf import Shelf


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


def _passage_rows(shelf: Shelf, passage_ids: np.ndarray) -> np.ndarray:
    rows: list[int] = []
    for cid in passage_ids.tolist():
        if cid >= 0:
            rows.extend(shelf.passage_sentences(cid))
    return np.asarray(rows, np.int64)
