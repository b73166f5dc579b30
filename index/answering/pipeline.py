"""One answer pipeline, batch first: questions -> candidates -> ranking -> reading -> rescoring ->
judging -> the three replies (a confident quote, "this may answer it", a decline).

`Library.ask` is a batch of one, `Library.ask_many` (eval, `ask --batch`) a batch of many, a
thread's follow-up (index.answering.followup) a batch of one restricted to one article, and the fit
script reads its training shortlists through `Pipeline.read`: what is fitted is what is served.

With the shipped reader (the bundled MiniLM): `read` ranks each question's candidates with the
linear ranker, reads the best `shortlist` with the reader; `AnswerModel` rescores them and its
judge gives the confidence. With another embedding model (no reader): the ranker and judges of
`index/answering/scorer.json` decide, the token alignment computed only where the lite judge is unsure.

Thread-safe: the only mutable state is the cache of reader inputs per sentence (under its lock)
and the lazily loaded reader.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

import numpy as np

from index.answering.alignment import ALIGNMENT, alignment_features
from index.answering.evidence import judge_evidence
from index.answering.model import AnswerModel, Read, StateCache
from index.answering.quotes import Quotes, whole_words
from index.answering.reader import (
    PAIR_FEATURES,
    QUESTION_TOKENS,
    READER_FILE,
    READER_MODEL_ID,
    SENTENCE_TOKENS,
    Reader,
    ReaderInput,
    shelf_context,
    shelf_rarity,
)
from index.answering.scorer import Ranked, Scorer, judge_features, with_alignment
from index.embedding import Embedder, TokenVectors
from index.errors import InputError
from index.search.candidates import candidate_rows
from index.search.features import FEATURES, Candidates, featurize
from index.search.lexical import terms
from index.search.shelf import Shelf
from index.settings import LibrarySettings
from index.types import Answer, Progress, Quote

Cutoffs = tuple[float, float]  # (quote confidently from, "this may answer it" from)


class Pipeline:
    """Answers questions over a shelf. `embedder`: the library's model (loaded on first call);
    `page_starts(collection, article_id)`: a PDF article's page start offsets (cached by the caller)."""

    def __init__(
        self,
        settings: LibrarySettings,
        embedder: Callable[[], Embedder],
        page_starts: Callable[[str, int], list[int]],
        *,
        scorer: Scorer | None = None,
        reader: Reader | None = None,
        answer_model: AnswerModel | None = None,
    ) -> None:
        self.settings = settings
        self._get_embedder = embedder
        self.quotes = Quotes(page_starts)
        self.scorer = scorer or Scorer.load()
        self.answer_model = answer_model or AnswerModel.load()
        self._reader: Reader | None = reader
        self._reader_checked = reader is not None
        self._reader_lock = threading.Lock()
        self._states = StateCache(settings.reader_cache_sentences)
        self._states_lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        return self._get_embedder()

    @property
    def reader(self) -> Reader | None:
        """The trained reader, when enabled, shipped, and fitted on this library's embedding model
        (a test's fake embedder gets the retrieval ranker and judge alone)."""
        if not self._reader_checked:
            embedder = self.embedder  # loads the model first (it takes _embedder_lock itself)
            with self._reader_lock:
                if not self._reader_checked:
                    # The shipped reader is fitted on the bundled model's token states; other
                    # embedders never load it (nor torch, whose import holds the interpreter).
                    fits = getattr(embedder, "model_id", None) == READER_MODEL_ID
                    if self.settings.reader and fits and READER_FILE.exists():
                        reader = Reader(READER_FILE)
                        if getattr(embedder, "model_id", None) == reader.model_id:
                            self._reader = reader
                    self._reader_checked = True
        return self._reader

    def warm_up(self) -> None:
        """Load the model and the reader and run each once now (start-up), not on a first question:
        imports and first passes hold the interpreter for a few hundred milliseconds."""
        self.embedder.encode(["warm-up"])
        reader = self.reader
        if reader is not None:
            enc = self.embedder.encode_states(["warm up"], max_tokens=QUESTION_TOKENS)
            q = reader.prepare("warm up", enc.states[0], enc.offsets[0], QUESTION_TOKENS)
            reader.read(q, [q], np.zeros((1, len(PAIR_FEATURES)), np.float32), lambda t: 1.0)

    @property
    def threshold(self) -> float:
        if self.settings.threshold is not None:
            return self.settings.threshold
        return self.answer_model.threshold if self.reader else self.scorer.threshold

    @property
    def may_threshold(self) -> float:
        """Below `threshold`, quotes from here on are shown as "this may answer it"."""
        if self.settings.may_threshold is not None:
            return min(self.settings.may_threshold, self.threshold)
        return min(self.answer_model.may_threshold, self.threshold) if self.reader else self.threshold

    def check_question(self, question: str) -> str:
        """The question as asked (whitespace collapsed), or InputError in words."""
        q = " ".join(question.split())
        if not q:
            raise InputError("Please ask a question.")
        try:
            q.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError("The question is not valid text (it holds a lone surrogate, not UTF-8).") from e
        if len(q) > self.settings.max_question_chars:
            raise InputError(
                f"That question is {len(q):,} characters long; please keep it under "
                f"{self.settings.max_question_chars:,}."
            )
        return q

    def cutoffs(self, threshold: float | None, may_threshold: float | None) -> tuple[float, float]:
        """(quote confidently from, "this may answer it" from) for one call."""
        t = self.threshold if threshold is None else float(threshold)
        m = self.may_threshold if may_threshold is None else float(may_threshold)
        return t, min(m, t)

    def answer(
        self,
        shelf: Shelf,
        questions: Sequence[str],
        *,
        alternatives: int = 0,
        cut: Cutoffs | None = None,
        progress: Progress | None = None,
        within: int | None = None,
    ) -> list[Answer]:
        """Answer checked questions (see `check_question`) with batched encoding passes; `within`:
        only that article's candidates are considered (a thread's follow-up)."""
        qs = list(questions)
        cut = cut or self.cutoffs(None, None)
        if self.reader is not None:
            return self._answer_read(shelf, qs, alternatives, progress, cut=cut, within=within)
        qvecs = self.embedder.encode(qs, batch_size=self.settings.batch_size)
        ranked = [self._rank(shelf, q, v, within) for q, v in zip(qs, qvecs, strict=True)]
        judged = [self._judge_lite(shelf, rk) if rk else None for rk in ranked]
        # The questions the lite judge is unsure of get the token alignment: their token vectors,
        # and each distinct sentence of their best candidates' neighbourhoods, in batches.
        unsure = [i for i, j in enumerate(judged) if j is not None and j[1] is None]
        rows = sorted({r for i in unsure for r in shelf.neighbourhood(ranked[i].best_row)})  # type: ignore[union-attr]
        sentence_tokens: dict[int, TokenVectors] = {}
        question_tokens: dict[int, TokenVectors] = {}
        if unsure:
            texts = [shelf.sentence_text(r) for r in rows]
            sentence_tokens.update(zip(rows, self.embedder.encode_tokens(texts), strict=True))
            question_tokens.update(
                zip(unsure, self.embedder.encode_tokens([qs[i] for i in unsure]), strict=True)
            )
        out = []
        for i, (q, rk, j) in enumerate(zip(qs, ranked, judged, strict=True)):
            if rk is None or j is None:
                out.append(Answer(q, None, 0.0))
            else:
                inputs, confidence = j
                if shelf.nothing_to_quote(q):
                    confidence = 0.0  # nothing to quote (as `Read.unanswerable` on the reader path)
                elif confidence is None:
                    ctx = [sentence_tokens[r] for r in shelf.neighbourhood(rk.best_row)]
                    confidence = self._judge_full(shelf, rk, inputs, question_tokens[i], ctx)
                out.append(self._decide(shelf, rk, confidence, alternatives, cut))
            if progress and (i % 200 == 0 or i == len(qs) - 1):
                progress(i + 1, len(qs))
        return out

    def read(
        self, shelf: Shelf, qs: list[str], progress: Progress | None = None, within: int | None = None
    ) -> list[Read | None]:
        """Each question's shortlist as the reader sees it (the fit script's view of `answer`)."""
        reader = self.reader
        assert reader is not None
        shortlist = self.answer_model.shortlist
        emb = self.embedder
        out: list[Read | None] = []
        step = 512  # questions per pass: bounds the sentence inputs held at once
        for k in range(0, len(qs), step):
            part = qs[k : k + step]
            enc = emb.encode_states(part, max_tokens=QUESTION_TOKENS, batch_size=self.settings.batch_size)
            ranked = [self._rank(shelf, q, v, within) for q, v in zip(part, enc.vectors, strict=True)]
            inputs = self._sentence_inputs(
                shelf, {int(rk.rows[i]) for rk in ranked if rk for i in rk.order[:shortlist]}
            )
            rarity = shelf_rarity(shelf)
            for i, (q, rk) in enumerate(zip(part, ranked, strict=True)):
                if rk is None:
                    out.append(None)
                    continue
                qin = reader.prepare(q, enc.states[i], enc.offsets[i], QUESTION_TOKENS)
                short = rk.order[:shortlist]
                rows = [int(rk.rows[j]) for j in short]
                pair = rk.features[short][:, _PAIR] if reader.uses_pair else None
                context = shelf_context(shelf, rows) if reader.uses_context else None
                readings = reader.read(qin, [inputs[r] for r in rows], pair, rarity, context)
                out.append(Read(q, rk, short, rows, readings, [inputs[r] for r in rows], qin))
            if progress:
                progress(min(k + step, len(qs)), len(qs))
        return out

    def candidates(self, shelf: Shelf, question: str, qvec: np.ndarray) -> Candidates | None:
        """The question's candidate sentences and their ranking features (None when the collection
        has none): what the ranker scores, and what the fit scripts fit it on."""
        st = self.settings
        qterm_ids = shelf.vocab.lookup(terms(question))
        rows = candidate_rows(
            shelf,
            qvec,
            qterm_ids,
            dense_k=st.dense_k,
            lexical_k=st.lexical_k,
            passage_k=st.passage_k,
            exhaustive_limit=st.exhaustive_limit,
        )
        if len(rows) == 0:
            return None
        return featurize(shelf, rows, question, qvec)

    def _rank(
        self, shelf: Shelf, question: str, qvec: np.ndarray, within: int | None = None
    ) -> Ranked | None:
        """The question's candidate sentences, ranked (None when the collection has none, or
        `within` that article has none among them)."""
        cands = self.candidates(shelf, question, qvec)
        if cands is None:
            return None
        weights = self.answer_model.ranker if self.reader is not None else None
        if weights is None:
            scores = self.scorer.rank(cands.features)
        else:
            with np.errstate(invalid="ignore", over="ignore"):  # spurious BLAS flags, see featurize
                scores = np.nan_to_num(cands.features @ weights, nan=-1e9)
        ranked = Ranked(question, qvec, cands.rows, cands.features, scores, np.argsort(-scores))
        return ranked if within is None else _only_article(shelf, ranked, within)

    def _sentence_inputs(self, shelf: Shelf, rows: set[int]) -> dict[int, ReaderInput]:
        """Reader inputs of these shelf rows: from the cache, the rest encoded in one batch."""
        reader = self.reader
        assert reader is not None
        got: dict[int, ReaderInput] = {}
        need: list[int] = []
        with self._states_lock:
            for r in sorted(rows):
                hit = self._states.get(int(shelf.sentence_ids[r]))
                if hit is None:
                    need.append(r)
                else:
                    got[r] = hit
        if need:
            texts = [shelf.sentence_text(r) for r in need]
            enc = self.embedder.encode_states(
                texts, max_tokens=SENTENCE_TOKENS, batch_size=self.settings.batch_size
            )
            fresh = {
                r: reader.prepare(t, st, off, SENTENCE_TOKENS)
                for r, t, st, off in zip(need, texts, enc.states, enc.offsets, strict=True)
            }
            got.update(fresh)
            with self._states_lock:
                for r, v in fresh.items():
                    self._states.put(int(shelf.sentence_ids[r]), v)
        return got

    def _answer_read(
        self,
        shelf: Shelf,
        qs: list[str],
        alternatives: int,
        progress: Progress | None = None,
        *,
        cut: Cutoffs,
        within: int | None = None,
    ) -> list[Answer]:
        out = []
        for q, rd in zip(qs, self.read(shelf, qs, progress, within), strict=True):
            if rd is None:
                out.append(Answer(q, None, 0.0))
                continue
            combined = self.answer_model.rescore(rd.combine_inputs(shelf))
            out.append(self._decide_read(shelf, rd, combined, alternatives, cut))
        return out

    def _decide_read(
        self, shelf: Shelf, rd: Read, combined: np.ndarray, alternatives: int, cut: tuple[float, float]
    ) -> Answer:
        """The three replies: a confident quote, a "this may answer it" quote, or a decline."""
        model = self.answer_model
        best = int(np.argmax(combined))
        confidence = (
            0.0 if rd.unanswerable(shelf) else model.confidence(rd.judge_inputs(shelf, combined, best))
        )
        order = [int(rd.short[i]) for i in np.argsort(-combined, kind="stable")]
        order += [int(i) for i in rd.ranked.order[len(rd.short) :]]
        rk = rd.ranked
        refs = self.quotes.refs(shelf, rk.rows[order[: max(1, alternatives + 1) + 4]])
        quotes = [
            self.quotes.quote(shelf, int(rk.rows[i]), float(rk.scores[i]), refs)
            for i in order[: alternatives + 1]
        ]
        reading, sentence = rd.readings[best], rd.sentences[best]
        top = quotes[0]
        guess = None
        if reading.span is not None:
            a, b = reading.span
            lo, hi = int(sentence.offsets[a][0]), int(sentence.offsets[b][1])
            if 0 <= lo < hi <= len(top.text):
                lo, hi = whole_words(top.text, lo, hi)
                guess = (top.start + lo, top.start + hi, reading.span_probability)
                if reading.span_probability >= model.span_from:
                    top = dataclasses.replace(top, answer_start=guess[0], answer_end=guess[1])
        answered = confidence >= cut[1]
        related = [] if answered else self.quotes.related(shelf, rk.qvec, refs)
        return Answer(
            rd.question,
            top if answered else None,
            confidence,
            top,
            quotes[1:],
            related,
            confident=confidence >= cut[0],
            answer_guess=guess,
        )

    def _judge_lite(self, shelf: Shelf, rk: Ranked) -> tuple[np.ndarray, float | None]:
        """The judge's inputs without the alignment, and the lite judge's confidence, or None when
        the full judge must decide (the lite one is unsure, or there is none)."""
        evidence = judge_evidence(shelf, rk.question, rk.best_row, rk.runner_up)
        inputs = judge_features(rk.features, rk.scores, evidence, np.zeros(len(ALIGNMENT), np.float32))
        lite = self.scorer.lite_confidence(inputs)
        return inputs, (None if lite is None or self.scorer.needs_alignment(lite, self.threshold) else lite)

    def _judge_full(
        self,
        shelf: Shelf,
        rk: Ranked,
        inputs: np.ndarray,
        question_tokens: TokenVectors,
        context_tokens: list[TokenVectors],
    ) -> float:
        sentence_tokens = context_tokens[shelf.neighbourhood(rk.best_row).index(rk.best_row)]
        alignment = alignment_features(question_tokens, sentence_tokens, context_tokens, rk.qvec)
        return self.scorer.full.probability(with_alignment(inputs, alignment))

    def _decide(self, shelf: Shelf, rk: Ranked, confidence: float, alternatives: int, cut: Cutoffs) -> Answer:
        """The three replies without the reader: a confident quote from `cut[0]`, a "this may answer
        it" quote from `cut[1]`, a decline below."""
        rows, order, scores = rk.rows, rk.order, rk.scores
        refs = self.quotes.refs(shelf, rows[order[: max(1, alternatives + 1) + 4]])
        quotes = [
            self.quotes.quote(shelf, int(rows[i]), float(scores[i]), refs) for i in order[: alternatives + 1]
        ]
        best = quotes[0]
        related: list[Quote] = []
        answered = confidence >= cut[1]
        if not answered:
            related = self.quotes.related(shelf, rk.qvec, refs)
        return Answer(
            rk.question,
            best if answered else None,
            confidence,
            best,
            quotes[1:],
            related,
            confident=confidence >= cut[0],
        )


_PAIR = [FEATURES.index(k) for k in PAIR_FEATURES]


def _only_article(shelf: Shelf, rk: Ranked, article_id: int) -> Ranked | None:
    """`rk` with the candidates of other articles removed (None when none of its candidates is left)."""
    keep = np.flatnonzero(shelf.article_ids[rk.rows] == article_id)
    if len(keep) == 0:
        return None
    scores = rk.scores[keep]
    return Ranked(rk.question, rk.qvec, rk.rows[keep], rk.features[keep], scores, np.argsort(-scores))
