"""Answer a question set and score the answers: what `quotebot eval` measures (bot/cli/eval.py prints it).

`read_sets` reads the questions (and the off-topic and odd-input sets that must be declined);
`answer_sets` ingests the articles into a throwaway library (or `reuse`s the configured one), asks
everything in one batch and times single asks on a sample; `score` turns the answers into outcomes,
the rule of `shared/eval/score.py` (index.evaluation.metrics); `predictions` and `details` are the
lines of `--out` and `--details`; `result` is the RESULT line's figures.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.errors import InputError
from index.evaluation.metrics import ODD_INPUTS, Outcome, best_threshold, exact_match, f1, hits, metrics
from index.evaluation.trainingdata import read_jsonl
from index.types import Answer

if TYPE_CHECKING:
    from index.settings import LibrarySettings

EVAL_COLLECTION = "eval"


def rate(xs: list[bool]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


@dataclass
class QuestionSets:
    """The questions (`{qid, question}`, scored when they say `answerable`), the off-topic questions
    and the odd chat input (`{kind, text}`): the last two must be declined."""

    questions: list[dict[str, Any]]
    offtopic: list[dict[str, Any]] = field(default_factory=list)
    odd: list[dict[str, Any]] = field(default_factory=list)

    def asked(self) -> list[str]:
        return (
            [q["question"] for q in self.questions]
            + [q["question"] for q in self.offtopic]
            + [o["text"] for o in self.odd]
        )


def read_sets(
    questions_path: Path,
    offtopic_paths: Sequence[Path] = (),
    odd_path: Path | None = None,
    *,
    no_odd: bool = False,
    limit: int = 0,
    offtopic_sample: int = 0,
) -> QuestionSets:
    """The question sets from their files (`odd_path` None: the shipped odd-input suite); `limit`: the
    first N questions of each file; `offtopic_sample`: N questions of each off-topic file, drawn
    at random with a fixed seed (the same N for the same file on every run)."""
    questions = read_jsonl(questions_path)
    for n, q in enumerate(questions, 1):
        if not {"qid", "question"} <= q.keys():
            raise InputError(f"{questions_path}:{n}: needs qid and question.")
    offtopic = [q for path in offtopic_paths for q in _sample(read_jsonl(path), offtopic_sample)]
    odd = [] if no_odd else read_jsonl(odd_path or ODD_INPUTS)
    if limit:
        questions, offtopic = questions[:limit], offtopic[:limit]
    return QuestionSets(questions, offtopic, odd)


def _sample(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """`n` of `rows` in their file order, drawn with a fixed seed; all of them when n is 0 or more."""
    if n <= 0 or n >= len(rows):
        return rows
    keep = sorted(random.Random(0).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


@dataclass
class Answered:
    """Every question set answered, with the timings and the thresholds the library answered with."""

    sets: QuestionSets
    main: list[Answer]
    offtopic: list[Answer]
    odd: list[Answer]
    n_asked: int
    ingest_s: float
    batch_s: float
    latencies_ms: list[float]  # single asks of a sample of the questions, sorted
    threshold: float
    may_threshold: float


def answer_sets(
    settings: LibrarySettings, articles: Path, sets: QuestionSets, *, reuse: bool = False
) -> Answered:
    """Ingest `articles` (into a throwaway data dir, unless `reuse` and already there), answer every
    question in one batch, and time single asks (warm) of up to 200 of the questions."""
    from index.library import Library

    questions = sets.questions
    asked = sets.asked()
    with tempfile.TemporaryDirectory(prefix="quotebot-eval-") as tmp:
        ls = settings if reuse else settings.model_copy(update={"data_dir": Path(tmp), "database_url": None})
        lib = Library(ls)
        t0 = time.perf_counter()
        if not (reuse and lib.count(EVAL_COLLECTION)):
            lib.add_file(EVAL_COLLECTION, articles)
        ingest_s = time.perf_counter() - t0
        lib.embedder.encode(["warm up"])
        t1 = time.perf_counter()
        answers = lib.ask_many(EVAL_COLLECTION, [_askable(q) for q in asked])
        batch_s = time.perf_counter() - t1
        # Single-question latency, as a user feels it (a sample, warm).
        sample = questions[:: max(1, len(questions) // 200)][:200]
        lat = []
        for q in sample:
            t = time.perf_counter()
            lib.ask(EVAL_COLLECTION, q["question"], alternatives=0)
            lat.append((time.perf_counter() - t) * 1000)
        threshold, may = lib.threshold, lib.may_threshold
        lib.close()
    n, n_off = len(questions), len(sets.offtopic)
    lat.sort()
    return Answered(
        sets,
        main=answers[:n],
        offtopic=answers[n : n + n_off],
        odd=answers[n + n_off :],
        n_asked=len(asked),
        ingest_s=ingest_s,
        batch_s=batch_s,
        latencies_ms=lat,
        threshold=threshold,
        may_threshold=may,
    )


def _best_article(a: Answer) -> str | None:
    best = a.best
    return (best.article.source_id or str(best.article.id)) if best else None


def predictions(run: Answered, *, as_answered: bool = False) -> list[dict[str, Any]]:
    """One line per question in score.py's format: the best quote with its calibrated confidence as
    the score, so that `score.py --threshold <may threshold>` applies the bot's decline rule, and
    without it shows the ranking (hit@1) and the best threshold on the file. `as_answered`: what the
    bot would say instead, no quote where it declines."""
    preds = []
    for q, a in zip(run.sets.questions, run.main, strict=True):
        best = a.best
        pred = {
            "qid": q["qid"],
            "quote": best.text if best else None,
            "article_id": _best_article(a),
            "score": round(a.confidence, 6),
            "answer": best.answer_phrase if best else None,
        }
        if as_answered and a.quote is None:
            pred = {**pred, "quote": None, "article_id": None, "answer": None}
        preds.append(pred)
    return preds


def details(run: Answered) -> list[dict[str, Any]]:
    """One line per question asked: its kind, confidence, reply and whether the best quote hit."""
    rows = []
    for q, a in zip(run.sets.questions, run.main, strict=True):
        kind = "answerable" if q.get("answerable", True) else "unanswerable"
        rows.append((kind, a, hits(a.best.text if a.best else None, q.get("answers", []))))
    rows += [("offtopic", a, False) for a in run.offtopic]
    rows += [
        ("odd:" + str(o.get("kind", "odd")), a, False) for o, a in zip(run.sets.odd, run.odd, strict=True)
    ]
    return [{"kind": k, "confidence": round(a.confidence, 6), "reply": a.kind, "hit": h} for k, a, h in rows]


@dataclass
class Scores:
    """The outcomes of the scored questions (those that say `answerable`), ranked (the best quote
    counts, declined or not) and as answered, and the answerable ones' shares and answer phrases."""

    ranked: list[Outcome] = field(default_factory=list)
    answered: list[Outcome] = field(default_factory=list)
    right: list[bool] = field(default_factory=list)
    wrong: list[bool] = field(default_factory=list)
    declined: list[bool] = field(default_factory=list)
    em: list[float] = field(default_factory=list)
    f1s: list[float] = field(default_factory=list)
    spans: list[bool] = field(default_factory=list)
    shown_f1: list[float] = field(default_factory=list)

    def best_threshold(self) -> tuple[float, float]:
        """The single threshold with the best accuracy on this file, and that accuracy."""
        return best_threshold(
            [o.score or 0.0 for o in self.ranked],
            [o.answerable for o in self.ranked],
            [o.hit for o in self.ranked],
        )


def score(run: Answered) -> Scores:
    s = Scores()
    for q, a in zip(run.sets.questions, run.main, strict=True):
        best = a.best
        if "answerable" in q:
            gold = q.get("answers", [])
            hit = hits(best.text if best else None, gold)
            art_ok = best is not None and _best_article(a) == q.get("article_id")
            s.ranked.append(Outcome(bool(q["answerable"]), best is None, hit, art_ok, a.confidence))
            said = a.quote is not None
            s.answered.append(
                Outcome(bool(q["answerable"]), not said, hit and said, art_ok and said, a.confidence)
            )
            if q["answerable"]:
                s.right.append(said and hit)
                s.wrong.append(said and not hit)
                s.declined.append(not said)
                if hit and best is not None:
                    # The reader's best phrase, shown in bold or not (shown when it is sure).
                    g = a.answer_guess
                    phrase = best.text[g[0] - best.start : g[1] - best.start] if g else ""
                    s.spans.append(best.answer_phrase is not None)
                    s.em.append(exact_match(phrase, gold))
                    s.f1s.append(f1(phrase, gold))
                    if best.answer_phrase is not None:
                        s.shown_f1.append(f1(best.answer_phrase, gold))
    return s


def declined_rate(answers: list[Answer]) -> float:
    return rate([a.quote is None for a in answers])


def odd_declined_by_kind(run: Answered) -> dict[str, float]:
    """The odd inputs' declined share per kind, by kind's name."""
    kinds: dict[str, list[bool]] = {}
    for o, a in zip(run.sets.odd, run.odd, strict=True):
        kinds.setdefault(str(o.get("kind", "odd")), []).append(a.quote is None)
    return {k: rate(v) for k, v in sorted(kinds.items())}


def median_ms(run: Answered) -> float:
    lat = run.latencies_ms
    return lat[len(lat) // 2] if lat else math.nan


def result(run: Answered, s: Scores) -> dict[str, float]:
    """The RESULT line's figures, in its order (NaN where there is nothing to measure)."""
    out: dict[str, float] = {}
    if s.ranked:
        r, m = metrics(s.ranked), metrics(s.answered)
        out.update(
            {
                "hit@1": r["hit@1"],
                "article@1": r["article@1"],
                "quoted_right": rate(s.right),
                "quoted_wrong": rate(s.wrong),
                "declined_ans": rate(s.declined),
                "declined_unans": m["decline_unans"],
                "span_em": rate([e > 0 for e in s.em]),
                "span_f1": mean(s.f1s),
                "span_shown": rate(s.spans),
                "span_f1_shown": mean(s.shown_f1),
                "acc": m["acc"],
            }
        )
    if run.sets.offtopic:
        out["offtopic_declined"] = declined_rate(run.offtopic)
    if run.sets.odd:
        out["odd_declined"] = declined_rate(run.odd)
    out["ask_median_ms"] = median_ms(run)
    out["threshold"], out["may_threshold"] = run.threshold, run.may_threshold
    return out


def _askable(text: str) -> str:
    """An eval text as a member could send it (Discord caps messages at 2,000 characters)."""
    text = " ".join(str(text).split())
    return (text or "?")[:2000]
