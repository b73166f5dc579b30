"""Follow-up questions: a question asked after an earlier answer (in a Discord thread) favours the
article that answer quoted.

"What did he say about the shipments?" after "Who is the National Security Council spokesman?"
means *that* article's "he": the follow-up is asked as it is (the article's own sentences say
"he" too, so putting the name in would only pull the earlier sentence back), once over the whole
collection and once over the previous article's candidates alone; the answer from the previous
article wins unless it is no answer at all, or clearly worse than an answer found elsewhere.

The restricted ask is the Library's own pipeline (ranker, reader, judge) over the same candidates,
only the other articles' rows removed, so its confidence means what the Library's does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.answering.model import combine_inputs
from index.answering.reader import QUESTION_TOKENS
from index.answering.scorer import Ranked
from index.library import _PAIR, Library, Read, _rarity
from index.search.shelf import Shelf
from index.types import Answer

# The previous article's answer is kept unless one from elsewhere is this much more confident.
PREFER_MARGIN = 0.25


@dataclass(frozen=True)
class Context:
    """What a thread was last answered with."""

    question: str
    article_id: int
    quote: str


def _only_article(shelf: Shelf, rk: Ranked | None, article_id: int) -> Ranked | None:
    """`rk` with the candidates of other articles removed (None when none of its candidates is left)."""
    if rk is None:
        return None
    keep = np.flatnonzero(shelf.article_ids[rk.rows] == article_id)
    if len(keep) == 0:
        return None
    scores = rk.scores[keep]
    return Ranked(rk.question, rk.qvec, rk.rows[keep], rk.features[keep], scores, np.argsort(-scores))


def ask_within(
    lib: Library,
    collection: str,
    question: str,
    article_id: int,
    *,
    alternatives: int = 3,
    threshold: float | None = None,
    may_threshold: float | None = None,
) -> Answer | None:
    """`Library.ask` over one article's candidates only; None when the article (no longer) has any."""
    q = lib._check_question(question)
    shelf = lib.shelf(collection)
    cut = lib._cutoffs(threshold, may_threshold)
    reader = lib.reader
    if reader is None:
        rk = _only_article(shelf, lib._rank(shelf, q, lib.embedder.encode([q])[0]), article_id)
        if rk is None:
            return None
        judged, confidence = lib._judge_lite(shelf, rk)
        if confidence is None:
            ctx_rows = shelf.neighbourhood(rk.best_row)
            tokens = lib.embedder.encode_tokens([q, *(shelf.sentence_text(r) for r in ctx_rows)])
            confidence = lib._judge_full(shelf, rk, judged, tokens[0], tokens[1:])
        return lib._decide(shelf, rk, confidence, alternatives, cut[0])
    enc = lib.embedder.encode_states([q], max_tokens=QUESTION_TOKENS, batch_size=lib.settings.batch_size)
    rk = _only_article(shelf, lib._rank(shelf, q, enc.vectors[0]), article_id)
    if rk is None:
        return None
    short = rk.order[: lib.answer_model.shortlist]
    rows = [int(rk.rows[j]) for j in short]
    inputs = lib._sentence_inputs(shelf, set(rows))
    qin = reader.prepare(q, enc.states[0], enc.offsets[0], QUESTION_TOKENS)
    pair = rk.features[short][:, _PAIR] if reader.uses_pair else None
    sentences = [inputs[r] for r in rows]
    readings = reader.read(qin, sentences, pair, _rarity(shelf))
    rd = Read(q, rk, short, rows, readings, sentences, qin)
    combined = lib.answer_model.rescore(combine_inputs(rd.readings, rk.scores[short]))
    return lib._decide_read(shelf, rd, combined, alternatives, cut)


def prefer(favoured: Answer | None, anywhere: Answer) -> Answer:
    """The previous article's answer unless it declines or one from elsewhere is clearly better."""
    if favoured is None or not favoured.answered:
        return anywhere
    if anywhere.answered and anywhere.confidence >= favoured.confidence + PREFER_MARGIN:
        return anywhere
    return favoured


def ask_follow_up(
    lib: Library,
    collection: str,
    question: str,
    context: Context,
    *,
    alternatives: int = 3,
    threshold: float | None = None,
    may_threshold: float | None = None,
) -> Answer:
    """Answer `question` asked after `context` (not logged: the caller logs what it shows)."""
    anywhere = lib.ask(
        collection, question, alternatives=alternatives, threshold=threshold, may_threshold=may_threshold
    )
    if anywhere.answered and anywhere.quote is not None and anywhere.quote.article.id == context.article_id:
        return anywhere
    favoured = ask_within(
        lib,
        collection,
        question,
        context.article_id,
        alternatives=alternatives,
        threshold=threshold,
        may_threshold=may_threshold,
    )
    return prefer(favoured, anywhere)


def log_answer(lib: Library, collection: str, answer: Answer, user_id: str | None) -> Answer:
    """Log an answered (or declined) question as `Library.ask(log_question=True)` does; the answer
    with its `question_id`."""
    import dataclasses

    from index.storage.models import Question

    q = answer.quote
    qid = lib.store.log_question(
        Question(
            collection=collection,
            user_id=user_id,
            text=answer.question[:2000],
            answered=q is not None,
            article_id=q.article.id if q else None,
            start=q.start if q else None,
            end=q.end if q else None,
            score=answer.confidence,
        )
    )
    return dataclasses.replace(answer, question_id=qid)
