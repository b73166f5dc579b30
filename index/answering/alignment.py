"""Token alignment of a question with a candidate sentence: how closely each question word is
matched by some word of the sentence (and of its neighbours) in the model's contextual space.

Exact word overlap cannot tell a paraphrase ("purchased" for "bought": answerable) from a swap
("women" for "men", "two" for "three": SQuAD 2.0's unanswerable questions); contextual token vectors
can, a little: the weakest-matched question word is the judge's best clue that the sentence talks
about something else.
"""

from __future__ import annotations

import numpy as np

from index.embedding import TokenVectors
from index.search.lexical import STOPWORDS

ALIGNMENT = (
    "align_min",  # weakest match of a question word in the sentence itself
    "align_mean",  # mean match in the sentence
    "align_ctx_min",  # weakest match in the sentence and its neighbours
    "align_ctx_mean",
    "align_ctx_second",  # second weakest (one swapped word vs. two)
    "align_below_50",  # question words matched below 0.5
    "align_share_below_60",  # share of question words matched below 0.6
    "align_inexact_min",  # weakest match among question words absent word-for-word from the context
    "align_inexact_mean",
    "align_inexact",  # how many such words
    "window_dense",  # best similarity of the question to a window of the sentence's words (a clause)
)

WINDOW_TOKENS = 12

_WH = frozenset(["what", "which", "who", "whom", "whose", "when", "where", "why", "how"])


def content_rows(tokens: list[str]) -> list[int]:
    """Indexes of the tokens that carry meaning (no stop words, question words or punctuation)."""
    keep = []
    for i, t in enumerate(tokens):
        w = t[2:] if t.startswith("##") else t
        if w.isalnum() and t not in STOPWORDS and t not in _WH:
            keep.append(i)
    return keep


def window_dense(qvec: np.ndarray, sentence: TokenVectors) -> float:
    """Cosine of the question vector with the best window of WINDOW_TOKENS tokens of the sentence
    (mean of its token vectors): a long sentence's dense similarity is diluted by its other clauses."""
    n = len(sentence.tokens)
    if n == 0:
        return 0.0
    size = min(WINDOW_TOKENS, n)
    zero = np.zeros((1, sentence.vectors.shape[1]), np.float32)
    sums = np.cumsum(np.vstack([zero, sentence.vectors]), axis=0)
    starts = np.arange(0, n - size + 1, max(1, size // 3))
    windows = sums[starts + size] - sums[starts]
    windows /= np.maximum(np.linalg.norm(windows, axis=1, keepdims=True), 1e-9)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # see retrieve.featurize
        return float(np.nan_to_num(windows @ qvec).max())


def alignment_features(
    question: TokenVectors, sentence: TokenVectors, context: list[TokenVectors], qvec: np.ndarray
) -> np.ndarray:
    """The ALIGNMENT features of one question (its tokens, and its sentence vector `qvec`) against
    one sentence; `context` holds the sentence and its neighbours in the same article."""
    rows = content_rows(question.tokens)
    ctx = [c for c in context if len(c.tokens)] or [sentence]
    if not rows or not len(sentence.tokens):
        neutral = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]
        return np.array([*neutral, window_dense(qvec, sentence)], np.float32)
    q = question.vectors[rows]
    qtoks = [question.tokens[i] for i in rows]
    ctx_vecs = np.concatenate([c.vectors for c in ctx])
    ctx_tokens = {t for c in ctx for t in c.tokens}
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # see retrieve.featurize
        in_sentence = np.nan_to_num((q @ sentence.vectors.T).max(axis=1))
        in_context = np.nan_to_num((q @ ctx_vecs.T).max(axis=1))
    inexact = np.array([t not in ctx_tokens for t in qtoks])
    loose = in_context[inexact]
    ordered = np.sort(in_context)
    return np.array(
        [
            in_sentence.min(),
            in_sentence.mean(),
            ordered[0],
            in_context.mean(),
            ordered[1] if len(ordered) > 1 else ordered[0],
            float((in_context < 0.5).sum()),
            float((in_context < 0.6).mean()),
            loose.min() if len(loose) else 1.0,
            loose.mean() if len(loose) else 1.0,
            float(len(loose)),
            window_dense(qvec, sentence),
        ],
        np.float32,
    )
